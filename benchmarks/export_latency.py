"""Inference latency of the exported model in each runtime against Keras, on the same inputs.

For each architecture (default resnet18 and keras-mobilenetv3small, untrained, 224x224x3, 1000
classes): build it once, export it with cnnreg's exporters (ONNX, LiteRT, OpenVINO: the ones
installed), then time, at batch 1 and batch 32, in this one process with the same inputs:

- Keras on TensorFlow, ``model(x)`` (eager) and ``model.predict_on_batch(x)`` (compiled);
- onnxruntime (CPU), the LiteRT interpreter, OpenVINO (CPU, f32), on the exported files;
- Keras on JAX, ``model(x)`` and ``predict_on_batch(x)``, in a child process (a process has one
  Keras backend) that loads the same weights and inputs from a temporary .npz.

Each figure is the median of ``--repeats`` calls after two warm-up calls, one runtime at a time
with a pause before each (thread pools that spin after a call would take the cores from the
next); every runtime uses its default thread count (all cores).  The last column is Keras-TF ``predict_on_batch`` / the runtime.
Run by hand:

    KERAS_BACKEND=tensorflow python benchmarks/export_latency.py
    python benchmarks/export_latency.py --arch lenet5 --shape 32x32x1 --classes 10   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JAX_CHILD = r"""
import json, sys, time, statistics
import numpy as np, keras
args = json.loads(sys.argv[1])
data = np.load(args["npz"])
import cnnreg
model = cnnreg.build("architecture", args["arch"], input_shape=tuple(args["shape"]), num_classes=args["classes"])
model.load_weights(args["weights"])
out = {}
for batch in args["batches"]:
    x = data[f"x{batch}"]
    for how, call in (("call", lambda: np.asarray(model(x, training=False))), ("predict_on_batch", lambda: model.predict_on_batch(x))):
        call(); call()
        times = []
        for _ in range(args["repeats"][str(batch)]):
            start = time.perf_counter(); call(); times.append(time.perf_counter() - start)
        out[f"{how}/{batch}"] = statistics.median(times)
print(json.dumps(out))
"""


def median_seconds(call, repeats: int) -> float:
    call()
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", action="append", help="architecture spec (repeatable)")
    parser.add_argument("--shape", default="224x224x3")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30, help="timed calls at batch 1 (batch 32: a fifth, at least 3)")
    parser.add_argument("--no-jax", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import importlib.util

    import keras
    import numpy as np

    import cnnreg
    from cnnreg.training.export import FORMATS, export_model
    from cnnreg.training.exported import open_runtime

    shape = tuple(int(v) for v in args.shape.split("x"))
    repeats = {1: args.repeats, 32: max(3, args.repeats // 5)}
    archs = args.arch or ["resnet18", "keras-mobilenetv3small"]
    versions = {"keras": keras.__version__, "python": platform.python_version()}
    for module in ("tensorflow", "onnxruntime", "ai_edge_litert", "openvino", "jax"):
        if importlib.util.find_spec(module):
            versions[module] = getattr(__import__(module), "__version__", "?")
    print(f"# export_latency: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
          + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"# input {args.shape}, {args.classes} classes; median of {repeats[1]} calls at batch 1, {repeats[32]} at batch 32 (ms)")
    print(f"{'architecture':<24} {'runtime':<34} {'batch 1':>9} {'batch 32':>9} {'b1 speed-up':>11} {'b32 speed-up':>12}")
    rng = np.random.default_rng(0)
    inputs = {b: rng.uniform(0, 1, (b, *shape)).astype("float32") for b in (1, 32)}
    with tempfile.TemporaryDirectory(prefix="cnnreg-latency-") as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "x.npz", **{f"x{b}": x for b, x in inputs.items()})
        for arch in archs:
            model = cnnreg.build("architecture", arch, input_shape=shape, num_classes=args.classes)
            rows: dict[str, dict[int, float]] = {}
            parities, runtimes = {}, {}
            for fmt, runtime_module in (("onnx", "onnxruntime"), ("litert", "ai_edge_litert"), ("openvino", "openvino")):
                if importlib.util.find_spec(runtime_module) is None:
                    continue
                path = tmp / f"{arch}{FORMATS[fmt].suffix}"
                _, parity = export_model(model, FORMATS[fmt], path, inputs[32][:8])
                parities[fmt] = parity.max_abs_diff
                runtimes[f"{runtime_module.replace('ai_edge_litert', 'litert')} ({fmt})"] = open_runtime(fmt, path)
            # one runtime at a time, each after a pause: thread pools that spin after a call
            # (TensorFlow's, onnxruntime's) would otherwise take the cores from the next one
            for name, runtime in runtimes.items():
                time.sleep(1)
                rows[name] = {b: median_seconds(lambda x=x: runtime.predict_on_batch(x), repeats[b]) for b, x in inputs.items()}
            for how in ("call", "predict_on_batch"):
                time.sleep(1)
                rows[f"keras-tensorflow {how}"] = {
                    b: median_seconds((lambda x=x: np.asarray(model(x, training=False))) if how == "call"
                                      else (lambda x=x: model.predict_on_batch(x)), repeats[b])
                    for b, x in inputs.items()}
            if not args.no_jax and importlib.util.find_spec("jax"):
                weights = tmp / f"{arch}.weights.h5"
                model.save_weights(weights)
                child = {"npz": str(tmp / "x.npz"), "arch": arch, "shape": list(shape), "classes": args.classes,
                         "weights": str(weights), "batches": [1, 32], "repeats": {str(k): v for k, v in repeats.items()}}
                env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
                done = subprocess.run([sys.executable, "-c", JAX_CHILD, json.dumps(child)], capture_output=True,
                                      text=True, env=env, timeout=3600)
                if done.returncode == 0:
                    found = json.loads(done.stdout.strip().splitlines()[-1])
                    for how in ("call", "predict_on_batch"):
                        rows[f"keras-jax {how}"] = {b: found[f"{how}/{b}"] for b in (1, 32)}
                else:
                    print(f"# keras-jax failed: {done.stderr.strip().splitlines()[-1:]}")
            base = rows["keras-tensorflow predict_on_batch"]
            for name, times in rows.items():
                print(f"{arch:<24} {name:<34} {times[1] * 1e3:9.2f} {times[32] * 1e3:9.1f} "
                      f"{base[1] / times[1]:10.2f}x {base[32] / times[32]:11.2f}x")
            print(f"# {arch}: parity max |Δp| " + ", ".join(f"{k} {v:.1e}" for k, v in parities.items()))


if __name__ == "__main__":
    main()
