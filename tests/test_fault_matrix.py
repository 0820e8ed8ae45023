"""The fault matrix: runs killed with kill -9 at seeded random moments (one during a checkpoint
write), then each file of the run directory deleted or cut short in turn, then ``evaluate``,
``predict``, ``resume`` and ``rerun``.  Counted: tracebacks (an exit status other than 0, 2 or 130,
or "Traceback" in the output) and silently lost epochs (after a resume, a history that is not
1..N once each, or an epoch that a surviving checkpoint had on record trained again).  Both must
be 0.  Each case is a test of its own, which any pytest-xdist worker can take; ``pytest -s`` prints
each case's counts.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnnreg.testing import run_cli

FAST = ["--dataset", "digits:size=8", "--batch-size", "64", "--quiet"]
EPOCHS = {"ckpt": 5, "random": 8, "early": 3}
SEED = 20261130
#: The faults after which evaluate and predict run: the other files are not theirs to read
#: (model.keras is a file of its own, the best epoch's model less the optimizer).
READ_BY_EVALUATE = ("", "run.json", "model.keras")
FILES = ("run.json", "checkpoint/state.json", "newest checkpoint", "older checkpoint", "history.csv", "model.keras")


def _kill(run_dir: Path, env: dict, *, moment: str, rng: random.Random) -> dict:
    """Start `cnnreg run` in a subprocess and kill -9 it: ``ckpt`` while a checkpoint is being
    written (its temporary file exists) from epoch 3 on, ``random`` a seeded random time after
    the first epoch went on record, ``early`` once run.json exists (no epoch on record yet)."""
    if moment == "ckpt":  # the background writer writes a checkpoint in microseconds: hold it there
        from cnnreg.training.writer import PAUSE_ENV

        env = dict(env, **{PAUSE_ENV: "0.5"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnreg", "run", "mlp_bn", "--epochs", str(EPOCHS[moment]), *FAST, "--run-dir", str(run_dir)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return {"proc": proc, "run_dir": run_dir, "moment": moment, "delay": rng.uniform(0.0, 1.5), "since": None}


def _poll(job: dict) -> bool:
    """Kill the job's process when its moment has come; True once it is dead."""
    proc, run_dir = job["proc"], job["run_dir"]
    if proc.poll() is not None:
        return True
    folder = run_dir / "checkpoint"
    done = _epochs_on_record(run_dir)
    if job["moment"] == "ckpt":
        writing = done >= 2 and folder.is_dir() and any(".tmp" in entry.name and entry.name.endswith(".keras")
                                                        for entry in os.scandir(folder))
        if not writing:
            return False
    elif job["moment"] == "early":
        if not (run_dir / "run.json").exists():
            return False
    else:
        if done < 1:
            return False
        job["since"] = job["since"] or time.perf_counter()
        if time.perf_counter() - job["since"] < job["delay"]:
            return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def _epochs_on_record(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "checkpoint" / "state.json").read_text())["epochs_done"]
    except (OSError, ValueError, KeyError):
        return 0


def _rows(path: Path) -> list[dict]:
    """history.csv's rows up to the first one cut short."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []
    whole = [None not in row.values() and None not in row for row in rows]
    return rows[: whole.index(False)] if False in whole else rows


def _record(run_dir: Path) -> list[dict]:
    """The epochs on record before the fault: state.json's history, else history.csv's."""
    try:
        rows = json.loads((run_dir / "checkpoint" / "state.json").read_text())["history"]
        return [{k: str(v) for k, v in row.items()} for row in rows]
    except (OSError, ValueError, KeyError):
        return _rows(run_dir / "history.csv")


def _checkpoints(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "checkpoint").glob("epoch-*.keras"))


def _fault(run_dir: Path, name: str, action: str) -> Path | None:
    """Delete or cut short one file of the run directory; the path it hit (None: no such file)."""
    files = _checkpoints(run_dir)
    path = {"newest checkpoint": files[-1] if files else None, "older checkpoint": files[-2] if len(files) > 1 else None}.get(
        name, run_dir / name)
    if path is None or not path.exists():
        return None
    if action == "delete":
        path.unlink()
    else:
        data = path.read_bytes()
        path.unlink()  # a new file, as a write cut short leaves
        path.write_bytes(data[: len(data) // 2])
    return path


def _survivors(run_dir: Path, record: list[dict]) -> int:
    """The newest epoch that a whole checkpoint and an intact record still hold after the fault:
    resuming must not train it (or any before it) again."""
    try:
        state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
        on_record, committed = len(state["history"]), int(state["checkpoint"][6:10])
    except (OSError, ValueError, KeyError):
        on_record, committed = 0, None
    csv_rows = _rows(run_dir / "history.csv")
    on_record = max(on_record, len(csv_rows))
    best = 0
    for path in _checkpoints(run_dir):
        epoch = int(path.name[6:10])
        if zipfile.is_zipfile(path) and epoch <= on_record and (committed is None or epoch <= committed) and epoch <= len(record):
            best = max(best, epoch)
    return best


def _command(counts: dict, label: str, *args: str):
    try:
        result = run_cli(*args)
    except BaseException as exc:  # noqa: BLE001 - an escaped exception is what we count
        counts["tracebacks"] += 1
        counts["details"].append(f"{label}: {args[0]} raised {type(exc).__name__}: {exc}")
        return None
    if result.exit_code not in (0, 2, 130) or "Traceback" in result.output:
        counts["tracebacks"] += 1
        counts["details"].append(f"{label}: {args[0]} exit {result.exit_code}: {result.output[-500:]}")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    if result.exit_code == 2 and len(errors) != 1:
        counts["not_one_line"] += 1
        counts["details"].append(f"{label}: {args[0]} stderr: {result.stderr[-500:]}")
    return result


def _case(counts: dict, base: Path, work: Path, image: Path, name: str, action: str, *, rerun: bool) -> None:
    run_dir = work / f"{base.name}-{name.replace('/', '_').replace(' ', '_')}-{action}"
    shutil.copytree(base, run_dir)
    total = json.loads((run_dir / "run.json").read_text())["config"]["epochs"]
    record = _record(run_dir)
    hit = _fault(run_dir, name, action) if name else None
    if name and hit is None:
        return  # that file does not exist at this kill moment
    counts["cases"] += 1
    label = f"{run_dir.name}"
    survivors = _survivors(run_dir, record)
    if name in READ_BY_EVALUATE:  # evaluate and predict read run.json and model.keras alone
        _command(counts, label, "evaluate", str(run_dir), "--json")
        _command(counts, label, "predict", str(run_dir), str(image), "--json")
    resumed = _command(counts, label, "resume", str(run_dir), "--quiet")
    if resumed is not None and resumed.exit_code == 0:
        rows = _rows(run_dir / "history.csv")
        epochs = [int(row["epoch"]) for row in rows]
        kept = sum(1 for old, new in zip(record[:survivors], rows) if old["seconds"] == new["seconds"] and old["loss"] == new["loss"])
        lost = (survivors - kept) + (0 if epochs == list(range(1, total + 1)) else 1)
        if lost:
            counts["details"].append(f"{label}: lost {lost} (survivors {survivors}, kept {kept}, epochs {epochs})")
        counts["lost"] += lost
    elif resumed is not None and name != "run.json" and survivors:
        counts["refused"] += 1  # allowed, but not expected where a checkpoint survived
        counts["details"].append(f"{label}: resume refused: {resumed.stderr.strip()}")
    if rerun:
        _command(counts, label, "rerun", str(run_dir), "--set", "epochs=1", "--run-dir", str(run_dir) + "-rerun", "--quiet")


#: Every file of the run killed while writing a checkpoint, deleted or cut short; the runs killed
#: at the other moments as they are.  `rerun` reads run.json alone: it runs where that differs
#: (the cases of run.json, the first run) rather than 14 times on the same file.
CASES = [("ckpt", "", ""), *(("ckpt", name, action) for name in FILES for action in ("delete", "truncate")),
         ("random", "", ""), ("early", "", "")]


@pytest.fixture(scope="session")
def killed(tmp_path_factory) -> dict[str, Path]:
    """The killed runs by moment, made once a session: under pytest-xdist the first worker here
    makes them in the folder the workers share while any other waits on its lock (the cases copy
    them and never change them)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    root, done = shared / "fault-matrix", shared / "fault-matrix.done"
    with open(shared / "fault-matrix.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)
            # conftest's subprocess_env, which a session fixture cannot use
            _kill_all(root, dict(os.environ, CNNREG_LOAD_PLUGINS="", COLUMNS="200"))
            done.touch()
    return {moment: root / f"killed-{moment}" for moment in EPOCHS}


def _kill_all(root: Path, env: dict) -> None:
    rng = random.Random(SEED)
    # the kills run side by side: their start-up is most of their time
    jobs = [_kill(root / f"killed-{moment}", env, moment=moment, rng=rng) for moment in EPOCHS]
    deadline = time.time() + 240
    pending = list(jobs)
    while pending and time.time() < deadline:
        pending = [job for job in pending if not _poll(job)]
        time.sleep(0.002)
    for job in pending:
        job["proc"].kill()
    assert not pending, "the runs to kill did not get far enough"
    for job in jobs:
        assert job["proc"].returncode == -signal.SIGKILL, job["proc"].stderr.read().decode()[-2000:]
        assert json.loads((job["run_dir"] / "run.json").read_text())["status"] == "running"


def test_runs_lists_the_killed_runs_as_interrupted(killed):
    listing = run_cli("runs", "--root", str(killed["ckpt"].parent), "--json")
    assert {r["status"] for r in json.loads(listing.stdout)["runs"]} == {"interrupted"}, listing.output
    assert len(json.loads(listing.stdout)["runs"]) == len(EPOCHS), listing.output


@pytest.mark.parametrize(("moment", "name", "action"), CASES,
                         ids=[f"{m}-{n or 'as-killed'}-{a}".strip("-").replace(" ", "-") for m, n, a in CASES])
def test_fault_matrix(killed, tmp_path, moment, name, action):
    """One case of the matrix (together they take minutes: one pytest item each)."""
    from PIL import Image

    image = tmp_path / "digit.png"
    Image.fromarray(np.full((8, 8), 128, dtype=np.uint8)).save(image)
    counts = {"cases": 0, "tracebacks": 0, "lost": 0, "refused": 0, "not_one_line": 0, "details": []}
    _case(counts, killed[moment], tmp_path, image, name, action, rerun=moment == "ckpt" and name in ("", "run.json"))
    if not counts["cases"]:
        pytest.skip(f"the run killed at {moment!r} has no {name}")
    print(f"\nfault matrix: {counts['tracebacks']} tracebacks, {counts['lost']} silently lost epochs "
          f"({counts['refused']} refusals where a checkpoint survived, {counts['not_one_line']} errors longer than one line)")
    for line in counts["details"]:
        print("  " + line)
    assert counts["tracebacks"] == 0 and counts["lost"] == 0, counts["details"]
    assert counts["refused"] == 0 and counts["not_one_line"] == 0, counts["details"]
