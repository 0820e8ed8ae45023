"""Szegedy et al.'s observation, measured on the digits: small perturbations flip a trained
CNN's predictions, and adversarial training buys some of the accuracy back.

1. train each architecture on the digits, plainly and with adversarial training:
       cnnreg run lenet5 --dataset digits --epochs E --seed 0
       cnnreg run lenet5 --dataset digits --epochs E --seed 0 --reg adversarial:eps=0.1,attack=fgsm,ratio=0.5
2. attack every run's best model on the whole test split with FGSM and PGD (L∞):
       cnnreg attack RUN --attack fgsm --eps 0,2/255,4/255,8/255,16/255,0.1 --json
       cnnreg attack RUN --attack pgd:steps=10 --eps 0,2/255,4/255,8/255,16/255,0.1 --json
3. print one Markdown table: clean accuracy, then robust accuracy per attack and eps
   (docs/adversarial.md has the one measured on 2 CPU cores).

It drives the real command line, printing every command, and runs ``--jobs`` commands at a time.

    python examples/adversarial_digits.py                   # the table (lenet5 and resnet18; 44 min on 2 busy CPU cores)
    python examples/adversarial_digits.py --arch lenet5     # one architecture
    python examples/adversarial_digits.py --quick           # LeNet-5, 1 epoch, 60 test images: a smoke test
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

EPS = ["2/255", "4/255", "8/255", "16/255", "0.1"]

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--out", type=Path, default=None, help="Folder for the runs (default: runs/adversarial-digits-<time>).")
parser.add_argument("--arch", nargs="+", default=["lenet5", "resnet18"])
parser.add_argument("--epochs", type=int, default=None, help="Epochs per run (default: lenet5 20, resnet18 8).")
parser.add_argument("--train-reg", default="adversarial:eps=0.1,attack=fgsm,ratio=0.5",
                    help="The adversarial-training regulariser of the second run of each architecture.")
parser.add_argument("--pgd", default="pgd:steps=10", help="The PGD spec of the evaluation.")
parser.add_argument("--limit", type=int, default=None, help="Test images attacked (default: all).")
parser.add_argument("--jobs", type=int, default=2, help="Commands at a time.")
parser.add_argument("--quick", action="store_true", help="LeNet-5, 1 epoch, 60 test images: checks that it works.")
args = parser.parse_args()
if args.quick:
    args.arch, args.epochs, args.limit = ["lenet5"], 1, 60

DEFAULT_EPOCHS = {"lenet5": 20, "resnet18": 8}
out = (args.out or Path("runs") / time.strftime("adversarial-digits-%Y%m%d-%H%M%S")).resolve()


def cnnreg(*words: str) -> str:
    command = [sys.executable, "-m", "cnnreg", *words]
    print("$ cnnreg " + " ".join(shlex.quote(w) for w in words), flush=True)
    proc = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): cnnreg {' '.join(words)}\n{proc.stderr[-3000:]}")
    return proc.stdout


def train(arch: str, adversarial: bool) -> Path:
    run = out / f"{arch}-{'adversarial' if adversarial else 'plain'}"
    epochs = args.epochs or DEFAULT_EPOCHS.get(arch, 10)
    words = ["run", arch, "--dataset", "digits", "--epochs", str(epochs), "--seed", "0", "--run-dir", str(run), "--quiet"]
    if adversarial:
        words += ["--reg", args.train_reg]
    cnnreg(*words)
    return run


def attack(run: Path, spec: str) -> dict:
    words = ["attack", str(run), "--attack", spec, "--eps", ",".join(["0", *EPS]), "--json"]
    if args.limit:
        words += ["--limit", str(args.limit)]
    return json.loads(cnnreg(*words))


started = time.time()
out.mkdir(parents=True, exist_ok=True)
arms = [(arch, adversarial) for arch in args.arch for adversarial in (False, True)]
with ThreadPoolExecutor(args.jobs) as pool:
    runs = dict(zip(arms, pool.map(lambda arm: train(*arm), arms)))
    jobs = [(arm, spec) for arm in arms for spec in ("fgsm", args.pgd)]
    results = dict(zip(jobs, pool.map(lambda job: attack(runs[job[0]], job[1]), jobs)))

header = "| model | training | clean | " + " | ".join(f"{name} {e}" for name in ("FGSM", "PGD") for e in EPS) + " |"
print()
print(f"Robust test accuracy on the digits ({time.time() - started:.0f} s in all; runs in {out})")
print()
print(header)
print("|" + "---|" * (3 + 2 * len(EPS)))
for arch, adversarial in arms:
    fgsm, pgd = results[((arch, adversarial), "fgsm")], results[((arch, adversarial), args.pgd)]
    clean = fgsm["results"][0]["accuracy"]
    cells = [f"{r['accuracy']:.3f}" for r in fgsm["results"][1:]] + [f"{r['accuracy']:.3f}" for r in pgd["results"][1:]]
    training = args.train_reg if adversarial else "plain"
    print(f"| {arch} | {training} | {clean:.3f} | " + " | ".join(cells) + " |")
