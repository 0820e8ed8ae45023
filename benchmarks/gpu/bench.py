"""GPU benchmark for a device machine: cnnreg run vs plain Keras, FLOP/s, memory estimate.

Self-contained for a machine with JAX and no TensorFlow and no network (carry keras, namex,
optree and typer wheels; see docs/performance.md). On the JAX backend with synthetic data:

1. the card's bf16 matrix-multiply rate (8192³ products);
2. ResNet-50 at 224×224×3, 1000 classes, batch 256, mixed_bfloat16, SGD with momentum, trained
   through cnnreg's run machinery (the same code `cnnreg run` calls) and through a plain Keras
   script, in this process, one after the other; images/s of the steady-state epochs and their
   ratio, and of the training steps alone. cnnreg saves a resumable checkpoint every epoch, so
   the plain script does too (ModelCheckpoint) unless --plain-no-checkpoint;
3. achieved FLOP/s = cost-model MACs × 2 (FLOPs) × 3 (forward + backward) × images/s, as a
   fraction of the measured matmul rate;
4. benchmarks/memory_check.py (estimate vs measured peak), unless --skip-memory.

    KERAS_BACKEND=jax python benchmarks/gpu/bench.py --out results/
    KERAS_BACKEND=jax python benchmarks/gpu/bench.py --quick      # CPU smoke run, tiny sizes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import run_cnnreg, run_plain  # noqa: E402  (benchmarks/common.py)


def log(*args) -> None:
    print(*args, flush=True)


def matmul_rate(size: int, repeats: int = 10) -> float:
    """bf16 TFLOP/s of size³ products (mean of ``repeats`` after warm-up)."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), dtype=jnp.bfloat16)
    b = jax.random.normal(jax.random.PRNGKey(1), (size, size), dtype=jnp.bfloat16)
    f = jax.jit(lambda x, y: x @ y)
    for _ in range(3):
        f(a, b).block_until_ready()
    start = time.perf_counter()
    for _ in range(repeats):
        out = f(a, b)
    out.block_until_ready()
    seconds = (time.perf_counter() - start) / repeats
    return 2 * size**3 / seconds / 1e12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-bench"))
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=24, help="steps per epoch")
    parser.add_argument("--plain-no-checkpoint", action="store_true",
                        help="the plain Keras script saves no checkpoint per epoch (cnnreg always does)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--matmul", type=int, default=8192)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-args", default="--batches 64,128 --jobs 4 --steps 3")
    parser.add_argument("--quick", action="store_true", help="CPU smoke run: tiny model and sizes")
    args = parser.parse_args()
    if args.quick:
        args.arch, args.batch, args.steps, args.epochs, args.classes, args.size, args.matmul = "lenet5", 8, 2, 2, 10, 32, 256
        args.precision = "float32"
    args.shape = (args.size, args.size, 3)
    args.images = args.batch * args.steps
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "config": {
        k: v for k, v in vars(args).items() if k not in ("out",)}}
    results["config"]["shape"] = list(args.shape)

    def save():
        (args.out / "gpu-bench.json").write_text(json.dumps(results, indent=2, default=str) + "\n")

    import jax
    import keras

    results["device"] = [str(d.device_kind) for d in jax.devices()]
    results["versions"] = {"jax": jax.__version__, "keras": keras.__version__, "python": sys.version.split()[0]}
    log("devices:", results["device"], results["versions"])
    rate = matmul_rate(args.matmul)
    results["matmul_tflops_bf16"] = rate
    log(f"bf16 matmul {args.matmul}^3: {rate:.1f} TFLOP/s")
    save()
    plain = run_plain(args, None if args.plain_no_checkpoint else args.out)
    plain["checkpoint_per_epoch"] = not args.plain_no_checkpoint
    results["plain_keras"] = plain
    log(f"plain keras: {plain['images_per_s']:.1f} images/s ({plain['epoch_seconds']:.3f} s/epoch)")
    save()
    keras.backend.clear_session()
    ours = run_cnnreg(args, args.out)
    results["cnnreg"] = ours
    ratio = ours["images_per_s"] / plain["images_per_s"]
    results["ratio_cnnreg_over_plain"] = ratio
    results["step_ratio_cnnreg_over_plain"] = ours["step_images_per_s"] / plain["step_images_per_s"]
    flops = ours["macs_per_image"] * 2 * 3 * ours["step_images_per_s"]
    results["achieved_tflops"] = flops / 1e12
    results["fraction_of_matmul_rate"] = flops / 1e12 / rate
    log(f"cnnreg run: {ours['images_per_s']:.1f} images/s ({ours['epoch_seconds']:.3f} s/epoch); ratio {ratio:.3f}; "
        f"training steps alone {ours['step_images_per_s']:.1f} vs {plain['step_images_per_s']:.1f} images/s "
        f"(ratio {results['step_ratio_cnnreg_over_plain']:.3f})")
    log(f"achieved {flops / 1e12:.1f} TFLOP/s = {flops / 1e12 / rate:.1%} of the bf16 matmul rate "
        f"({ours['macs_per_image'] / 1e9:.2f} G MACs/image)")
    save()
    if not args.skip_memory:
        memory_json = args.out / "memory.json"
        command = [sys.executable, str(ROOT / "benchmarks" / "memory_check.py"), "--json", str(memory_json)]
        command += ["--quick"] if args.quick else args.memory_args.split()
        log("memory check:", " ".join(command[1:]))
        proc = subprocess.run(command, capture_output=True, text=True)
        log(proc.stdout[-6000:], proc.stderr[-3000:])
        if memory_json.exists():
            results["memory_check"] = json.loads(memory_json.read_text())
        save()
    log(json.dumps({k: v for k, v in results.items() if k != "memory_check"}, indent=2, default=str))


if __name__ == "__main__":
    main()
