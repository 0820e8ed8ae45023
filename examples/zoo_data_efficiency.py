"""The lecture's transfer-learning claim, measured: reuse of pre-trained layers "requires
significantly less training data".

1. pretrain ResNet-18 on the digits 0-4:   cnnreg run resnet18 --dataset digits:classes=0-4
2. publish it into a zoo folder:           cnnreg publish RUN ZOO --name resnet18.digits04
3. on the digits 5-9, with 5, 10 and 20 training images per class and 3 seeds, fine-tune from
   the entry (every layer; the head is new: other classes) against training from scratch on
   the same images:
       cnnreg run resnet18 --dataset digits:classes=5-9,per_class=N,split_seed=S --seed S --weights resnet18.digits04
       cnnreg run resnet18 --dataset digits:classes=5-9,per_class=N,split_seed=S --seed S
4. print the test accuracies (all test images of the digits 5-9), mean ± std of the 3 seeds.

A seed draws the images (``split_seed``: the split and the per-class draw) and the run's
initial head and shuffling (``--seed``); both arms of a row see the same images and train for
the same epochs, and each is tested with its best epoch by validation accuracy.  It drives the
real command line, printing every command, and runs ``--jobs`` commands at a time.

What it found (docs/transfer.md): with 5 images a class and 20 epochs the pretrained ResNet-18
is 25 points ahead, but from scratch it catches up with 40 epochs, and from 10 images a class
on there is no difference; LeNet-5 (``--arch lenet5``) gains nothing.  Five digit classes are
too narrow a pretraining to save data on the digits.

    python examples/zoo_data_efficiency.py                  # the table (~50 minutes on 2 busy CPU cores)
    python examples/zoo_data_efficiency.py --per-class 5 --epochs 40
    python examples/zoo_data_efficiency.py --arch lenet5 --pretrain-epochs 10 --epochs 30
    python examples/zoo_data_efficiency.py --quick          # LeNet-5, one seed, 5 per class, 2 epochs: a smoke test
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--out", type=Path, default=None, help="Folder for the runs and the zoo (default: runs/zoo-data-efficiency-<time>).")
parser.add_argument("--arch", default=None, help="The architecture: resnet18 (the default; lenet5 with --quick).")
parser.add_argument("--per-class", type=int, nargs="+", default=[5, 10, 20])
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
parser.add_argument("--pretrain-epochs", type=int, default=5)
parser.add_argument("--epochs", type=int, default=20, help="Epochs of every run on the digits 5-9 (the best by validation is tested).")
parser.add_argument("--batch-size", type=int, default=16)
parser.add_argument("--jobs", type=int, default=2, help="Runs at a time.")
parser.add_argument("--quick", action="store_true", help="LeNet-5, one seed, 5 images per class, 2 epochs: checks that it works.")
args = parser.parse_args()
if args.quick:
    args.per_class, args.seeds, args.pretrain_epochs, args.epochs = [5], [0], 2, 2

ARCH = args.arch or ("lenet5" if args.quick else "resnet18")
NAME = ARCH.split(":")[0] + ".digits04"
out = (args.out or Path("runs") / time.strftime("zoo-data-efficiency-%Y%m%d-%H%M%S")).resolve()
zoo = out / "zoo"
env = dict(os.environ, CNNREG_CACHE=str(out / "cache"))  # downloads of zoo entries stay in the output folder


def cnnreg(*argv: str) -> subprocess.CompletedProcess:
    """Run one cnnreg command as a user would type it (printed first); stop on a failure."""
    print("$ cnnreg " + shlex.join(argv), flush=True)
    proc = subprocess.run([sys.executable, "-m", "cnnreg", *argv], capture_output=True, text=True, env=dict(env))
    if proc.returncode != 0:
        sys.exit(f"`cnnreg {shlex.join(argv)}` failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def test_accuracy(run_dir: Path) -> float:
    return json.loads((run_dir / "run.json").read_text())["test"]["accuracy"]


out.mkdir(parents=True, exist_ok=True)
print(f"$ export CNNREG_CACHE={out / 'cache'}")
common = ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--quiet"]
cnnreg("run", ARCH, "--dataset", "digits:classes=0-4", "--epochs", str(args.pretrain_epochs), "--quiet",
       "--run-dir", str(out / "pretrain"))
print(f"  pretrained on the digits 0-4: test accuracy {test_accuracy(out / 'pretrain'):.3f}", flush=True)
cnnreg("publish", str(out / "pretrain"), str(zoo), "--name", NAME, "--license", "CC-BY-4.0")
print(f"$ export CNNREG_ZOO={zoo}")  # where `--weights lenet5.digits04` is found
env["CNNREG_ZOO"] = str(zoo)

jobs = []
for n in args.per_class:
    for seed in args.seeds:
        data = f"digits:classes=5-9,per_class={n},split_seed={seed}"
        for arm, extra in (("scratch", []), ("fine-tuned", ["--weights", NAME])):
            run_dir = out / f"{arm}-{n}-seed{seed}"
            argv = ["run", ARCH, "--dataset", data, "--seed", str(seed), *extra, *common, "--run-dir", str(run_dir)]
            jobs.append((n, arm, run_dir, argv))
with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
    list(pool.map(lambda job: cnnreg(*job[3]), jobs))

results: dict[tuple[int, str], list[float]] = {}
for n, arm, run_dir, _ in jobs:
    results.setdefault((n, arm), []).append(test_accuracy(run_dir))


def cell(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


print(f"\n{ARCH} on the digits 5-9, test accuracy, mean ± std of {len(args.seeds)} seed(s)")
print(f"{'images per class':>16}  {'from scratch':>15}  {'fine-tuned from ' + NAME:>31}")
for n in args.per_class:
    print(f"{n:>16}  {cell(results[n, 'scratch']):>15}  {cell(results[n, 'fine-tuned']):>31}")
table = [{"per_class": n, "arm": arm, "seeds": args.seeds, "test_accuracy": values} for (n, arm), values in results.items()]
(out / "results.json").write_text(json.dumps({"architecture": ARCH, "entry": NAME, "epochs": args.epochs, "results": table}, indent=2))
print(f"\nruns, zoo and results.json in {out}")
