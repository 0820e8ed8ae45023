"""The two classic initialisation experiments on the digits, measured with `cnnreg diagnose` and
`cnnreg run`.

1. He et al. 2015 ("Delving Deep into Rectifiers", Fig. 3): a 30-layer plain ReLU network (no
   batch normalisation, no shortcuts) learns with He's initialisation and stalls with Glorot's.
   The training runs use the Dense form (`plain_net:depth=30,width=128,conv=false`): the 3x3
   convolutional form (`--conv`, `plain_net:depth=30`, global average pooling over 8x8 digits)
   learns too slowly for 20 CPU epochs to show much (he_normal: validation accuracy 0.21 after 8
   epochs at lr 0.001, and divergence to chance at lr 0.01); both forms halve the variance per
   layer under Glorot's init, and `cnnreg diagnose` reports the conv form's ratios as well.  For ReLU with equal fan-in and fan-out, Glorot's
   variance 1/fan halves the activations' variance at every layer: the forward ratio (activation
   std of the last hidden layer over the first's) is about (1/sqrt 2)^29 = 4e-5; He's 2/fan keeps it.
2. Glorot & Bengio 2010: a deep tanh MLP (`plain_net:depth=5,width=1000,conv=false,activation=tanh`,
   the paper's five layers of 1000 units) with the then-standard U(-1/sqrt(n), 1/sqrt(n)) against
   their normalised initialisation U(-r, r), r = sqrt(6 / (fan_in + fan_out)) (`glorot_uniform`).
   The standard one is `variance_scaling:scale=1/3,mode=fan_in,distribution=uniform` (variance
   1/(3n)): each tanh layer then shrinks the activations' std by about 1/sqrt 3.

For each initialiser: `cnnreg diagnose` (forward and backward ratios, diagnose.png), then `cnnreg
run` with each seed (SGD with momentum 0.9, the same learning rate for both arms; the best epoch
by validation accuracy is tested).  It drives the real command line, printing every command, and
ends with a Markdown table.  The runs are on the digits at their own 8x8 (`--dataset`).

    python examples/he_2015_plain_net.py                     # both experiments, 3 seeds, 20 epochs
    python examples/he_2015_plain_net.py --only he --epochs 30 --seeds 0 1 2 3 4
    python examples/he_2015_plain_net.py --quick             # 1 seed, 1 epoch, shallow nets: a smoke test
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--out", type=Path, default=None, help="Folder for the runs and figures (default: runs/he-2015-<time>).")
parser.add_argument("--only", choices=("he", "glorot"), default=None, help="Run one of the two experiments.")
parser.add_argument("--dataset", default="digits:size=8", help="Dataset spec (default: the digits at 8x8).")
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--optimizer", default="sgd:momentum=0.9")
parser.add_argument("--lr", default="0.001",
                    help="Learning rate of every run (default 0.001: at 0.01 the 30-layer ReLU net is unstable even with He's init).")
parser.add_argument("--jobs", type=int, default=2, help="Runs at a time.")
parser.add_argument("--conv", action="store_true", help="Train the convolutional 30-layer net in the He experiment.")
parser.add_argument("--quick", action="store_true", help="One seed, one epoch, 6 and 3 layers: checks that it works.")
args = parser.parse_args()
if args.quick:
    args.seeds, args.epochs = [0], 1

STANDARD = "variance_scaling:scale=1/3,mode=fan_in,distribution=uniform"
EXPERIMENTS = {  # key: (title, architecture, [(label, init spec)])
    "he": ("He et al. 2015: plain ReLU net",
           ("plain_net:depth=6" if args.quick else "plain_net:depth=30")
           + ("" if args.conv else ",width=128,conv=false"),
           [("He normal", "he_normal"), ("Glorot uniform", "glorot_uniform")]),
    "glorot": ("Glorot & Bengio 2010: tanh MLP",
               "plain_net:depth=3,width=100,conv=false,activation=tanh" if args.quick
               else "plain_net:depth=5,width=1000,conv=false,activation=tanh",
               [("standard U(-1/√n, 1/√n)", STANDARD), ("normalised (Glorot uniform)", "glorot_uniform")]),
}
chosen = [args.only] if args.only else list(EXPERIMENTS)
out = (args.out or Path("runs") / time.strftime("he-2015-%Y%m%d-%H%M%S")).resolve()


def cnnreg(*argv: str) -> subprocess.CompletedProcess:
    """Run one cnnreg command as a user would type it (printed first); stop on a failure."""
    print("$ cnnreg " + shlex.join(argv), flush=True)
    proc = subprocess.run([sys.executable, "-m", "cnnreg", *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"`cnnreg {shlex.join(argv)}` failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


out.mkdir(parents=True, exist_ok=True)
diagnosed, jobs = {}, []
for key in chosen:
    title, arch, arms = EXPERIMENTS[key]
    inits = [option for _, init in arms for option in ("--init", init)]
    proc = cnnreg("diagnose", arch, *inits, "--dataset", args.dataset, "--json", "--out", str(out / key))
    diagnosed[key] = {r["init"]: r for r in json.loads(proc.stdout)["results"]}
    for line in proc.stderr.splitlines():
        print("  " + line)
    for label, init in arms:
        for seed in args.seeds:
            run_dir = out / key / f"{init.split(':')[0]}-seed{seed}"
            argv = ["run", arch, "--init", init, "--dataset", args.dataset, "--optimizer", args.optimizer, "--lr", args.lr,
                    "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--seed", str(seed), "--quiet",
                    "--run-dir", str(run_dir)]
            jobs.append((key, init, run_dir, argv))
with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
    list(pool.map(lambda job: cnnreg(*job[3]), jobs))


def outcome(run_dir: Path) -> tuple[float, float]:
    """Test accuracy (best epoch by validation) and the last epoch's training loss."""
    manifest = json.loads((run_dir / "run.json").read_text())
    last = (run_dir / "history.csv").read_text().strip().splitlines()
    header, row = last[0].split(","), last[-1].split(",")
    return manifest["test"]["accuracy"], float(row[header.index("loss")])


def cell(values: list[float], digits: int = 3) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


results = {}
for key, init, run_dir, _ in jobs:
    results.setdefault((key, init), []).append(outcome(run_dir))
print(f"\n{args.dataset}, {args.optimizer} lr {args.lr}, {args.epochs} epochs, batch {args.batch_size}, "
      f"seeds {' '.join(map(str, args.seeds))} (mean ± std); ratios at initialisation (seed 0)\n")
print("| experiment | initialiser | forward ratio | backward ratio | test accuracy | final training loss |")
print("|---|---|---|---|---|---|")
table = []
for key in chosen:
    title, arch, arms = EXPERIMENTS[key]
    for label, init in arms:
        stats = diagnosed[key][init]
        accuracy = [a for a, _ in results[key, init]]
        loss = [l for _, l in results[key, init]]
        print(f"| {title} (`{arch}`) | {label} (`{init}`) | {stats['forward_ratio']:.2g} | {stats['backward_ratio']:.2g} "
              f"| {cell(accuracy)} | {cell(loss)} |")
        table.append({"experiment": key, "architecture": arch, "init": init, "forward_ratio": stats["forward_ratio"],
                      "backward_ratio": stats["backward_ratio"], "test_accuracy": accuracy, "final_loss": loss})
(out / "results.json").write_text(json.dumps({"dataset": args.dataset, "optimizer": args.optimizer, "lr": args.lr,
                                              "epochs": args.epochs, "seeds": args.seeds, "results": table}, indent=2))
print(f"\nruns, diagnose.png per experiment and results.json in {out}")
