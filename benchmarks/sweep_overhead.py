"""What a sweep costs over the runs it is made of, and what a second worker buys on this machine.

Run by hand:  python benchmarks/sweep_overhead.py [--epochs 3] [--trials 4]

1. Overhead per trial (goal: at most 5% more than the run).  In one process, after a warm-up run
   (keras imported, the first graphs built), the same ``--trials`` configurations are trained
   as ``cnnreg.run`` calls (each timed) and as the trials of one ``cnnreg.sweep`` (local SQLite
   study; each trial's time as the study records it, from taking the trial to its result), in
   alternation; the medians, their ratio, and what a worker spends once (creating or joining
   the study, checking the options, the plots) are printed.
2. Throughput.  The same grid of ``--trials`` cells is run by one worker, then by two worker
   processes started together on one study, each way with the TensorFlow thread settings given
   (``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS``); trials per minute are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def overhead(epochs: int, trials: int, repeats: int) -> None:
    import cnnreg

    inits = ["he_normal", "glorot_uniform", "lecun_normal", "he_uniform", "glorot_normal", "lecun_uniform"][:trials]
    common = dict(dataset="digits", epochs=epochs, batch_size=32, quiet=True)
    folder = Path(tempfile.mkdtemp(prefix="cnnreg-sweep-bench-"))
    try:
        cnnreg.run("lenet5", init=inits[0], run_dir=folder / "warm-up", **common)  # imports, first graphs
        runs, trial_times, fixed = [], [], []
        for repeat in range(repeats):
            for init in inits:
                began = time.perf_counter()
                cnnreg.run("lenet5", init=init, run_dir=folder / f"run-{repeat}-{init}", **common)
                runs.append(time.perf_counter() - began)
            began = time.perf_counter()
            result = cnnreg.sweep("lenet5", init=",".join(inits), study=f"bench{repeat}", root=folder / "sweeps",
                                  dataset="digits", epochs=str(epochs), batch_size="32", quiet=True, warn=lambda _: None)
            wall = time.perf_counter() - began
            seconds = [t["seconds"] for t in result.trials]
            trial_times += seconds
            fixed.append(wall - sum(seconds))
        run_time = statistics.median(runs)
        trial_time = statistics.median(trial_times)
        print(f"overhead: lenet5 on digits, {epochs} epochs, {len(inits)} initialisers x {repeats} repeats, medians")
        print(f"  a cnnreg.run call        {run_time:6.2f} s")
        print(f"  a trial of cnnreg.sweep  {trial_time:6.2f} s   ratio {trial_time / run_time:.3f}")
        print(f"  once per worker          {statistics.median(fixed):6.2f} s   (the study's tables, checks, plots)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def throughput(epochs: int, trials: int, settings: list[tuple[int, int, int]]) -> None:
    inits = ["he_normal", "glorot_uniform", "lecun_normal", "he_uniform", "glorot_normal", "lecun_uniform"]
    regs = ["none", "dropout=0.3"]
    cells = [(i, r) for i in inits for r in regs][:trials]
    init_values = ",".join(sorted({c[0] for c in cells}, key=inits.index))
    reg_values = ",".join(sorted({c[1] for c in cells}, key=regs.index))
    print(f"throughput: a grid of {trials} cells of lenet5 on digits, {epochs} epochs each, {os.cpu_count()} cores")
    for workers, intra, inter in settings:
        folder = Path(tempfile.mkdtemp(prefix="cnnreg-sweep-bench-"))
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_NUM_INTRAOP_THREADS=str(intra),
                   TF_NUM_INTEROP_THREADS=str(inter), CNNREG_LOAD_PLUGINS="")
        command = [sys.executable, "-m", "cnnreg", "sweep", "lenet5", "--init", init_values, "--reg", reg_values,
                   "--trials", str(trials), "--epochs", str(epochs), "--study", "bench", "--root", str(folder), "-q"]
        began = time.perf_counter()
        procs = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for _ in range(workers)]
        for proc in procs:
            _, err = proc.communicate()
            if proc.returncode:
                raise SystemExit(err[-2000:])
        seconds = time.perf_counter() - began
        print(f"  {workers} worker{'s' if workers > 1 else ' '} x {intra} intra-op / {inter} inter-op threads: "
              f"{seconds:6.1f} s, {60 * trials / seconds:5.2f} trials a minute")
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    overhead(args.epochs, args.trials, args.repeats)
    cores = os.cpu_count() or 2
    throughput(args.epochs, args.trials, [(1, cores, cores), (1, 1, 1), (2, 1, 1), (2, cores, cores)])


if __name__ == "__main__":
    main()
