"""What logging to MLflow costs a run: the LeNet-5 job (`cnnreg run lenet5`, digits) with
``--log none`` and with ``--log mlflow:uri=...`` on a tracking server this script starts on
127.0.0.1 (SQLite store), alternated in one process (TensorFlow started once, so that its
start-up, which varies by seconds between processes on a shared machine, stays out).

Prints per run the training loop's time (run.json's ``seconds``: training, validation, the
test evaluation and the files written) and, for MLflow, the seconds the run waited for the
logger (run.json's ``trackers.SPEC.seconds``: every call, from creating the MLflow run to
uploading model.keras); then the medians, the ratio of the loops and the waited share (goal:
at most 5%).  Run by hand:

    python benchmarks/tracker_overhead.py --epochs 10 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from test_trackers import ENV, _start_server, _stop

    os.environ.update(ENV)
    import cnnreg

    with tempfile.TemporaryDirectory(prefix="cnnreg-tracker-") as tmp:
        tmp = Path(tmp)
        server, uri = _start_server(tmp / "server")
        spec = f"mlflow:uri={uri},experiment=bench"
        loops: dict[str, list[float]] = {"none": [], "mlflow": []}
        waited: list[float] = []
        try:
            cnnreg.run("lenet5", epochs=1, run_dir=tmp / "warm-up", quiet=True, log="none")
            for i in range(args.repeats):
                for name, log in (("none", "none"), ("mlflow", spec)):
                    run_dir = tmp / f"{name}{i}"
                    result = cnnreg.run("lenet5", epochs=args.epochs, run_dir=run_dir, quiet=True, log=log)
                    assert result.status == "completed", result.message
                    data = json.loads((run_dir / "run.json").read_text())
                    loops[name].append(data["seconds"])
                    extra = ""
                    if name == "mlflow":
                        (tracked,) = data["trackers"].values()
                        assert tracked["epochs"] == args.epochs, tracked
                        waited.append(tracked["seconds"])
                        extra = f", waited for MLflow {tracked['seconds']:.3f} s"
                    print(f"run {i + 1} --log {name:<6} training loop {data['seconds']:6.2f} s{extra}", flush=True)
        finally:
            _stop(server)
    none, mlflow = statistics.median(loops["none"]), statistics.median(loops["mlflow"])
    wait = statistics.median(waited)
    print(f"median training loop: --log none {none:.2f} s, --log mlflow {mlflow:.2f} s, ratio {mlflow / none:.3f}; "
          f"waited for MLflow {wait:.3f} s = {wait / none:.1%} of the loop ({args.epochs} epochs, {args.repeats} runs each)")


if __name__ == "__main__":
    main()
