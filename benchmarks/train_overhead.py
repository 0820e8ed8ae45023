"""Overhead of `cnnreg run` over a plain hand-written Keras script, in the same process run.

Same model, data (synthetic, digits-sized by default), batch size, epochs and optimizer (SGD
with momentum); prints the steady-state epoch time of both and their ratio (target ≤ 1.05),
and the same for the training steps alone (without what each loop does at an epoch's end:
cnnreg writes a checkpoint, history, curves and manifest).

    python benchmarks/train_overhead.py                    # resnet18, 32x32x3, 1347 images
    python benchmarks/train_overhead.py --arch lenet5 --epochs 6
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import run_cnnreg, run_plain  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--images", type=int, default=1347, help="training images (digits' train split: 1347)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args()
    args.shape = (args.size, args.size, args.channels)
    import keras

    plain = run_plain(args)
    keras.backend.clear_session()
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_cnnreg(args, Path(tmp))
    print(f"machine: {os.cpu_count()} cores; backend {keras.backend.backend()}; keras {keras.__version__}")
    print(f"{args.arch} at {args.size}x{args.size}x{args.channels}, {args.images} images, batch {args.batch}, "
          f"{args.epochs} epochs (first excluded)")
    print(f"plain keras : {plain['epoch_seconds']:.3f} s/epoch   {plain['step_seconds'] * 1000:.1f} ms/step")
    print(f"cnnreg run  : {ours['epoch_seconds']:.3f} s/epoch   {ours['step_seconds'] * 1000:.1f} ms/step")
    print(f"ratio (cnnreg / plain): epoch {ours['epoch_seconds'] / plain['epoch_seconds']:.3f}   "
          f"step {ours['step_seconds'] / plain['step_seconds']:.3f}")


if __name__ == "__main__":
    main()
