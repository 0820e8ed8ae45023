"""The README's main job end to end: the whole `cnnreg run` command against the same job as a
plain Keras script, each a fresh process timed from start to exit, in the same run.

The plain script is what a user would write: read the same digits (75/15/10 split, upsampled
to 32x32 by keras.ops.image.resize, pixels / 255), build the same ResNet-34, Adam with
clipnorm=1.0, fit with validation for the same epochs and batch, evaluate on the test split,
save the model once at the end.  `cnnreg run` does the same and also writes history and the
manifest every epoch, resumable checkpoints (model + Adam state; `--checkpoint auto`), the best
model, and at the end curves.png.  Runs alternate (cnnreg, plain, cnnreg, plain, ...) so that
both see the same machine; the medians and their ratio are printed (target <= 1.03), in wall
time and in CPU time (user + system of every thread: what a shared machine's noise changes least).

On TensorFlow, cnnreg feeds arrays to Keras through its own tf.data pipeline
(`cnnreg.datasets.pipeline.array_batches`: a new order each epoch, autotuning off), where Keras'
pipeline for arrays waits up to 5 s for tf.data's autotuning thread at the end of some epochs
(and, seeded, repeats its first order every epoch).  `--steady` also times the plain script fed
through that same pipeline by hand: against it, what is left is cnnreg's own bookkeeping.

    python benchmarks/end_to_end.py                      # resnet34, 10 epochs, 2 rounds
    python benchmarks/end_to_end.py --arch lenet5 --epochs 5 --rounds 3
    python benchmarks/end_to_end.py --rounds 3 --steady
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN = r"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import keras
from cnnreg.builtin.datasets import digits  # the same arrays: sklearn's digits, the same split
from cnnreg.builtin.architectures import lenet, resnet  # the same model definition

arch, epochs, batch, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
keras.utils.set_random_seed(0)
data = digits()

def prepared(split):
    x = keras.ops.convert_to_numpy(keras.ops.image.resize(split.x, (32, 32), interpolation="bilinear")) / 255.0
    return x.astype("float32"), keras.utils.to_categorical(split.y, 10)

(x, y), (vx, vy), (tx, ty) = prepared(data.train), prepared(data.validation), prepared(data.test)
build = getattr(resnet, arch, None) or getattr(lenet, arch)
model = build(input_shape=(32, 32, 1), num_classes=10)
model.compile(optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0), loss="categorical_crossentropy",
              metrics=["accuracy"])
if sys.argv[5:] == ["steady"]:  # cnnreg's input pipeline for arrays, by hand
    import math
    from cnnreg.datasets.pipeline import array_batches

    model.fit(array_batches(x, y, batch_size=batch, seed=0), steps_per_epoch=math.ceil(len(x) / batch), epochs=epochs,
              validation_data=array_batches(vx, vy, batch_size=batch), verbose=0)
    print("test", model.evaluate(array_batches(tx, ty, batch_size=batch), verbose=0))
else:
    model.fit(x, y, batch_size=batch, epochs=epochs, validation_data=(vx, vy), verbose=0)
    print("test", model.evaluate(tx, ty, verbose=0))
model.save(out)
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, every thread) of the command."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet34")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steady", action="store_true",
                        help="also the plain script fed through cnnreg's input pipeline for arrays: what is "
                             "left is cnnreg's own bookkeeping")
    args = parser.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    ours, plain, steady = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            run_dir = Path(tmp) / f"run{round_}"
            ours.append(timed([sys.executable, "-m", "cnnreg", "run", args.arch, "--init", "he_normal", "--clip",
                               "norm=1.0", "--epochs", str(args.epochs), "--batch-size", str(args.batch), "--quiet",
                               "--run-dir", str(run_dir)], env))
            plain.append(timed([sys.executable, "-c", PLAIN, args.arch, str(args.epochs), str(args.batch),
                                str(Path(tmp) / f"plain{round_}.keras")], env))
            line = (f"round {round_ + 1}: cnnreg run {ours[-1][0]:.1f} s ({ours[-1][1]:.1f} s CPU)   plain keras "
                    f"{plain[-1][0]:.1f} s ({plain[-1][1]:.1f} s CPU)   ratio {ours[-1][0] / plain[-1][0]:.3f} "
                    f"(CPU {ours[-1][1] / plain[-1][1]:.3f})")
            try:  # what the run reached (test accuracy), to read the speed against
                test = json.loads((run_dir / "run.json").read_text())["test"]
                line += f"   cnnreg test accuracy {test['accuracy']:.3f}"
            except (OSError, ValueError, KeyError, TypeError):
                pass
            if args.steady:
                steady.append(timed([sys.executable, "-c", PLAIN, args.arch, str(args.epochs), str(args.batch),
                                     str(Path(tmp) / f"steady{round_}.keras"), "steady"], env))
                line += f"   plain keras, cnnreg's pipeline {steady[-1][0]:.1f} s ({steady[-1][1]:.1f} s CPU)"
            print(line, flush=True)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end")
    print(f"{args.arch}, digits at 32x32, {args.epochs} epochs, batch {args.batch}, {args.rounds} rounds (median)")
    a, ca = _medians(ours)
    print(f"cnnreg run  : {a:.1f} s wall, {ca:.1f} s CPU")
    for name, times in (("plain keras", plain), ("plain keras, cnnreg's pipeline", steady)):
        if times:
            b, cb = _medians(times)
            print(f"{name} : {b:.1f} s wall, {cb:.1f} s CPU")
            print(f"ratio (cnnreg / {name}): {a / b:.3f} wall, {ca / cb:.3f} CPU (CPU time does not count a "
                  "noisy neighbour's share of the cores)")


def _medians(times: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(w for w, _ in times), statistics.median(c for _, c in times)


if __name__ == "__main__":
    main()
