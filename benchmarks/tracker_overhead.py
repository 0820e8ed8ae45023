"""What logging to MLflow costs a run: the LeNet-5 job (`cnnreg run lenet5`, digits) with
``--log none`` and with ``--log mlflow:uri=...`` on a tracking server this script starts on
127.0.0.1 (SQLite store), alternated, in fresh processes, the same seed.

Prints the wall time of each run (the whole ``cnnreg run`` process, as a user waits for it),
the medians and their ratio (goal: at most 1.05).  Run by hand:

    python benchmarks/tracker_overhead.py --epochs 10 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from test_trackers import ENV, _start_server, _stop

    with tempfile.TemporaryDirectory(prefix="cnnreg-tracker-") as tmp:
        tmp = Path(tmp)
        server, uri = _start_server(tmp / "server")
        env = {**os.environ, **ENV}
        times: dict[str, list[float]] = {"none": [], "mlflow": []}
        try:
            for i in range(args.repeats):
                for name, log in (("none", "none"), ("mlflow", f"mlflow:uri={uri},experiment=bench")):
                    started = time.perf_counter()
                    done = subprocess.run([sys.executable, "-m", "cnnreg", "run", "lenet5", "--epochs", str(args.epochs),
                                           "--quiet", "--run-dir", str(tmp / f"{name}{i}"), "--log", log],
                                          capture_output=True, text=True, env=env)
                    seconds = time.perf_counter() - started
                    if done.returncode != 0 or "warning" in done.stderr:
                        raise SystemExit(f"{name}: {done.stderr[-1000:]}")
                    times[name].append(seconds)
                    print(f"run {i + 1} --log {name:<6} {seconds:7.2f} s", flush=True)
        finally:
            _stop(server)
    none, mlflow = statistics.median(times["none"]), statistics.median(times["mlflow"])
    print(f"median: --log none {none:.2f} s, --log mlflow {mlflow:.2f} s, ratio {mlflow / none:.3f} "
          f"({args.epochs} epochs, {args.repeats} runs each)")


if __name__ == "__main__":
    main()
