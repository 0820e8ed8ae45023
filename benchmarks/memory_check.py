"""Compare cnnreg's training-memory estimate with XLA's compiled plan and the measured peak on a GPU.

Each configuration (model × batch × precision) runs in a fresh subprocess, because the peak
counters are process-wide. It builds a keras.applications model (weights=None, 224×224×3,
1000 classes), trains a few steps on synthetic data with ``train_on_batch`` and reads the peak:

* JAX: ``jax.devices()[0].memory_stats()['peak_bytes_in_use']``
* TensorFlow: ``tf.config.experimental.get_memory_info('GPU:0')['peak']``
* PyTorch: ``torch.cuda.max_memory_allocated()``

On JAX the compiled column is XLA's memory plan of the same training step, compiled on abstract
shapes (``cnnreg.analysis.compiled``: arguments + outputs + temporaries - aliased); on a CPU it is
the CPU's plan, and the measured column is n/a (``--no-train`` skips the training steps there).
Needs only keras, numpy and the backend (no network).

    KERAS_BACKEND=jax python benchmarks/memory_check.py --json memory.json
    python benchmarks/memory_check.py --backend jax --no-train --batches 32 --precisions float32 \
        --models resnet50,vgg16,mobilenet_v2,densenet121,xception   # analytic against compiled, CPU
    python benchmarks/memory_check.py --quick          # CPU smoke run: batch 2, one step
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_STATS: dict = {}  # the backend's full memory statistics, when it has them
MODELS = {"resnet50": "ResNet50", "vgg16": "VGG16", "mobilenet_v2": "MobileNetV2"}
#: Also accepted by --models, for checks outside the models the constants were fitted on.
MORE_MODELS = {"resnet101": "ResNet101", "xception": "Xception", "densenet121": "DenseNet121",
               "inception_v3": "InceptionV3", "efficientnet_b0": "EfficientNetB0", "resnet50_v2": "ResNet50V2",
               "vgg19": "VGG19", "mobilenet": "MobileNet", "convnext_tiny": "ConvNeXtTiny"}
ALL_MODELS = {**MODELS, **MORE_MODELS}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma-separated (default: the first three): " + ", ".join(ALL_MODELS))
    p.add_argument("--batches", default="32,64", help="comma-separated batch sizes (default 32,64)")
    p.add_argument("--precisions", default="float32,mixed_bfloat16", help="float32, mixed_float16, mixed_bfloat16")
    p.add_argument("--optimizer", default="adam", help="sgd, momentum or adam (default adam)")
    p.add_argument("--steps", type=int, default=3, help="training steps per configuration (default 3)")
    p.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "jax"), help="jax (default), tensorflow, torch")
    p.add_argument("--no-train", action="store_true", help="estimate and compiled plan only (no training steps, "
                   "no measured peak): for a CPU")
    p.add_argument("--quick", action="store_true", help="CPU smoke run: batch 2, float32, one step")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--jobs", type=int, default=1, help="configurations run at once (each in its own process; "
                   "peaks are per process, so several fit on one large GPU)")
    p.add_argument("--timeout", type=int, default=900, help="seconds per configuration (default 900)")
    p.add_argument("--child", help=argparse.SUPPRESS)  # model,batch,precision: run one configuration
    return p


def _optimizer(keras, name: str):
    if name == "sgd":
        return keras.optimizers.SGD(0.01)
    if name == "momentum":
        return keras.optimizers.SGD(0.01, momentum=0.9)
    return keras.optimizers.get(name)


def _peak_bytes(backend: str):
    """Peak device bytes of this process, or None on a CPU."""
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "cpu":
            return None
        stats = device.memory_stats()
        _STATS.update(stats)
        return int(stats["peak_bytes_in_use"])
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            return None
        return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
    if backend == "torch":
        import torch

        return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None
    return None


def run_one(model_name: str, batch: int, precision: str, optimizer: str, steps: int, backend: str) -> dict:
    """Build, estimate, train ``steps`` steps and measure one configuration (in this process)."""
    import keras
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from cnnreg.analysis import summarize, training_budget

    keras.mixed_precision.set_global_policy(precision)
    model = getattr(keras.applications, ALL_MODELS[model_name])(weights=None, input_shape=(224, 224, 3), classes=1000)
    start = time.perf_counter()
    summary = summarize(model, precision=precision)
    analyse_s = time.perf_counter() - start
    budget = training_budget(summary, batch_size=batch, precision=precision, optimizer=optimizer)
    result = {"model": model_name, "batch": batch, "precision": precision, "optimizer": optimizer, "backend": backend,
              "estimate_bytes": budget.total_bytes, "measured_bytes": None, "ratio": None, "compiled": None,
              "terms": {t.name: t.bytes for t in budget.terms}, "analyse_s": analyse_s}
    if steps:
        model.compile(optimizer=_optimizer(keras, optimizer), loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.random((batch, 224, 224, 3), dtype=np.float32)
        y = rng.integers(0, 1000, size=(batch,))
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        measured = _peak_bytes(backend)
        result.update(measured_bytes=measured, ratio=budget.total_bytes / measured if measured else None,
                      step_s=(time.perf_counter() - start) / steps,
                      memory_stats={k: v for k, v in _STATS.items() if isinstance(v, (int, float))})
    if backend == "jax":  # XLA's plan of the same step; after the peak is read (a GPU compile autotunes on buffers)
        from cnnreg.analysis.compiled import compiled_plan

        result["compiled"] = compiled_plan(model, batch_size=batch, optimizer=_optimizer(keras, optimizer)).to_dict()
    return result


def _child(args) -> None:
    model, batch, precision = args.child.split(",")
    result = run_one(model, int(batch), precision, args.optimizer, args.steps, args.backend)
    print("RESULT " + json.dumps(result), flush=True)


def _spawn(args, model: str, batch: int, precision: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=args.backend, XLA_PYTHON_CLIENT_PREALLOCATE="false",
               TF_CPP_MIN_LOG_LEVEL="3", TF_FORCE_GPU_ALLOW_GROWTH="true")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", f"{model},{batch},{precision}",
           "--optimizer", args.optimizer, "--steps", str(args.steps), "--backend", args.backend]
    base = {"model": model, "batch": batch, "precision": precision, "optimizer": args.optimizer,
            "backend": args.backend, "estimate_bytes": None, "measured_bytes": None, "ratio": None}
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {**base, "error": f"timed out after {args.timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {**base, "error": " | ".join(tail) or f"exit status {proc.returncode}"}


def _gib(n) -> str:
    return "n/a" if n is None else f"{n / 2**30:.2f} GiB"


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        _child(args)
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in ALL_MODELS]
    if unknown:
        print(f"unknown model(s) {', '.join(unknown)} (valid: {', '.join(ALL_MODELS)})", file=sys.stderr)
        return 2
    batches = [2] if args.quick else [int(b) for b in args.batches.split(",")]
    precisions = ["float32"] if args.quick else [p.strip() for p in args.precisions.split(",")]
    if args.quick:
        args.steps = 1
    if args.no_train:
        args.steps = 0
    header = (f"{'model':<15} {'batch':>5} {'precision':<15} {'estimate':>11} {'compiled':>11} {'est/comp':>8} "
              f"{'measured':>11} {'est/meas':>8}")
    print(header)
    print("-" * len(header))
    configs = [(m, b, p) for m in models for p in precisions for b in batches]
    results = []
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = [pool.submit(_spawn, args, *c) for c in configs]
        for future in as_completed(futures):  # print and save each result as it arrives
            r = future.result()
            results.append(r)
            ratio = "n/a" if r.get("ratio") is None else f"{r['ratio']:.3f}"
            compiled = (r.get("compiled") or {}).get("total_bytes")
            by_plan = f"{r['estimate_bytes'] / compiled:.3f}" if compiled and r.get("estimate_bytes") else "n/a"
            line = (f"{r['model']:<15} {r['batch']:>5} {r['precision']:<15} {_gib(r.get('estimate_bytes')):>11} "
                    f"{_gib(compiled):>11} {by_plan:>8} {_gib(r.get('measured_bytes')):>11} {ratio:>8}")
            print(line + (f"  error: {r['error']}" if r.get("error") else ""), flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps({"results": results}, indent=2))
    ratios = [r["ratio"] for r in results if r.get("ratio")]
    if ratios:
        print(f"ratio estimate/measured: min {min(ratios):.3f}, max {max(ratios):.3f}, "
              f"mean {sum(ratios) / len(ratios):.3f} (goal: 0.85-1.15)")
    if args.json:
        print(f"wrote {args.json}")
    return 1 if any(r.get("error") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
