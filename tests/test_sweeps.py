"""Sweeps on Optuna (issue 22): the search space from run options, one study for many workers on
a local SQLite file or a real PostgreSQL server started here, exact trial counts when workers
race, a killed worker's trial run again, pruning, and ``cnnreg sweep show``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import cnnreg
from cnnreg.errors import CnnregError
from cnnreg.sweeps.space import parse_space, run_options
from cnnreg.testing import run_cli

pytest.importorskip("optuna")

FAST = ["lenet5", "--dataset", "digits:size=8", "--batch-size", "64"]


# --- the search space ------------------------------------------------------------------------------


def test_lists_pipes_ranges_and_none():
    space = parse_space({
        "init": "he_normal,glorot_uniform", "reg": ["none,dropout=0.3", "l2:factor=1e-5..1e-3:log"],
        "optimizer": "sgd:momentum=0.9|adam", "lr": "1e-4..1e-1:log", "epochs": "5..20", "batch_size": "32,64",
        "dataset": "digits",
    }, "0,1,2")
    dims = {d.name: d for d in space.dimensions}
    assert dims["init"].choices == ("he_normal", "glorot_uniform")
    assert dims["reg"].choices == (None, "dropout=0.3")
    assert dims["optimizer"].choices == ("sgd:momentum=0.9", "adam")
    assert dims["batch_size"].choices == (32, 64)
    assert (dims["lr"].low, dims["lr"].high, dims["lr"].log, dims["lr"].integer) == (1e-4, 0.1, True, False)
    assert (dims["epochs"].low, dims["epochs"].high, dims["epochs"].integer) == (5, 20, True)
    assert dims["reg2.factor"].template == "l2:factor={}" and dims["reg2.factor"].log
    assert space.fixed == {"dataset": "digits"} and space.seeds == [0, 1, 2] and not space.all_lists
    options = run_options(space, {"init": "he_normal", "reg": None, "reg2.factor": 3e-4, "optimizer": "adam",
                                  "lr": 0.01, "epochs": 7, "batch_size": 64})
    assert options["reg"] == ["l2:factor=0.0003"] and options["epochs"] == 7 and options["init"] == "he_normal"


def test_a_grid_is_every_combination_in_order():
    space = parse_space({"init": "he_normal,glorot_uniform", "reg": ["none,dropout=0.3"]})
    assert space.grid() == [{"init": "he_normal", "reg": None}, {"init": "he_normal", "reg": "dropout=0.3"},
                            {"init": "glorot_uniform", "reg": None}, {"init": "glorot_uniform", "reg": "dropout=0.3"}]


@pytest.mark.parametrize("options, message", [
    ({"init": "he_normal,"}, "--init has an empty alternative"),
    ({"epochs": "5..x"}, "--epochs takes whole numbers"),
    ({"lr": "0..1:log"}, "a log range needs numbers > 0"),
    ({"lr": "1..0.1"}, "from a lower to a higher number"),
    ({"optimizer": "1..2"}, "--optimizer takes no range"),
    ({"dataset": "digits,synthetic"}, "--dataset takes one value in a sweep"),
    ({"batch_size": "32,32"}, "names the same alternative twice"),
])
def test_mistakes_in_values_are_one_line(options, message):
    with pytest.raises(CnnregError, match=message) as info:
        parse_space(options)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("args, message", [
    (["--init", "he_normal,glorot_uniform", "--sampler", "grd"], "did you mean 'grid'"),
    (["--lr", "1e-4..1e-1:log", "--sampler", "grid"], "--sampler grid needs lists of values; lr is a range"),
    (["--init", "he_normal,glorot_uniform", "--prune", "median", "--metric", "test_accuracy"], "measured once"),
    (["--init", "he_normal,glorot_uniform", "--trials", "3"], "more than the grid's 2 cells"),
    (["--init", "he_normal,glorot_uniformm"], "unknown initialiser 'glorot_uniformm'"),
    (["--init", "he_normal"], "nothing to sweep"),
    (["--init", "he_normal,glorot_uniform", "--metric", "val_acc"], "did you mean 'val_accuracy'"),
    (["--init", "he_normal,glorot_uniform", "--study", "a/b"], "--study 'a/b' must be letters"),
])
def test_mistakes_in_options_are_one_line_and_start_nothing(args, message, tmp_path):
    result = run_cli("sweep", *FAST, *args, "--root", str(tmp_path / "sweeps"))
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not list((tmp_path / "sweeps").glob("*/study.db"))


# --- one worker, the local store --------------------------------------------------------------------


def test_a_local_sweep_and_its_summary(tmp_path, monkeypatch):
    """The issue's first check: two trials with no server, and `sweep show --json` lists both
    with their run directories; each is an ordinary run (its manifest names the study)."""
    monkeypatch.chdir(tmp_path)
    result = run_cli("sweep", *FAST, "--epochs", "1", "--init", "he_normal,glorot_uniform", "--study", "local")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("trial ") >= 2 and "study local: 2 complete" in result.stdout
    shown = run_cli("sweep", "show", "local", "--json")
    data = json.loads(shown.stdout)
    trials = data["trials"]
    assert [t["state"] for t in trials] == ["complete", "complete"]
    assert {t["params"]["init"] for t in trials} == {"he_normal", "glorot_uniform"}
    assert data["best"]["number"] == trials[0]["number"] and trials[0]["value"] >= trials[1]["value"]
    for trial in trials:
        run_dir = Path(trial["run_dir"])
        manifest = json.loads((run_dir / "run.json").read_text())
        assert manifest["status"] == "completed" and manifest["config"]["init"] == trial["params"]["init"]
        assert manifest["sweep"]["study"] == "local" and manifest["sweep"]["trial"] == trial["number"]
    assert {Path(f).name for f in data["files"].values()} >= {"history.png"}
    assert run_cli("evaluate", trials[0]["run_dir"]).exit_code == 0
    again = run_cli("sweep", *FAST, "--epochs", "1", "--init", "he_normal,glorot_uniform", "--study", "local")
    assert again.exit_code == 0 and "study local: 2 complete" in again.stdout  # nothing left: it runs none
    other = run_cli("sweep", *FAST, "--epochs", "1", "--init", "he_normal,lecun_normal", "--study", "local")
    assert other.exit_code == 2 and "study 'local' exists with other options" in other.stderr


def test_seeds_replicate_and_pruning_keeps_the_run(tmp_path):
    """Three learning rates, two seeds each: a trial is the mean over its seeds; with median
    pruning after two trials, an absurdly small rate is pruned after its first epoch and keeps
    its run directory, marked pruned."""
    result = cnnreg.sweep("lenet5", dataset="digits:size=8", batch_size="64", epochs="3", lr="0.003,0.002,1e-7",
                          seed="0,1", prune="median", study="pruned", root=tmp_path, quiet=True)
    trials = {t["params"]["lr"]: t for t in result.trials}
    assert trials[0.003]["state"] == "complete" and len(trials[0.003]["values"]) == 2
    assert trials[0.003]["std"] is not None and trials[0.003]["value"] == pytest.approx(
        sum(trials[0.003]["values"]) / 2)
    pruned = trials[1e-7]
    assert pruned["state"] == "pruned", result.trials
    manifest = json.loads((Path(pruned["run_dir"]) / "run.json").read_text())
    assert manifest["status"] == "pruned" and manifest["epochs_done"] < 3 and "pruned" in manifest["message"]
    assert len(pruned["run_dirs"]) == 1  # the other seed never ran
    assert "seeds" in result.to_dict()["files"]


def test_a_sampler_runs_exactly_the_trials_asked_within_the_range(tmp_path):
    """Random sampling of a log range: exactly --trials trials, each value inside the range,
    the study's table best first; show reads the same study."""
    result = cnnreg.sweep("lenet5", dataset="digits:size=8", batch_size="64", epochs="1", lr="1e-4..1e-2:log",
                          sampler="random", trials=3, study="random", root=tmp_path, quiet=True)
    assert [t["state"] for t in result.trials] == ["complete"] * 3
    assert all(1e-4 <= t["params"]["lr"] <= 1e-2 for t in result.trials)
    values = [t["value"] for t in result.trials]
    assert values == sorted(values, reverse=True) and result.best["value"] == values[0]
    assert result.to_dict()["definition"]["sampler"] == "random"
    assert cnnreg.show_sweep("random", root=tmp_path).best == result.best


def test_an_unreachable_storage_is_one_line_within_15_s(tmp_path):
    port = _free_port()  # nothing listens there
    began = time.monotonic()
    result = run_cli("sweep", *FAST, "--epochs", "1", "--init", "he_normal,glorot_uniform", "--study", "x",
                     "--root", str(tmp_path),
                     "--storage", f"postgresql://cnnreg:secret@127.0.0.1:{port}/cnnreg")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "cannot reach the study storage postgresql://cnnreg:***@127.0.0.1" in result.stderr
    assert "secret" not in result.stderr and time.monotonic() - began < 15


# --- many workers -------------------------------------------------------------------------------------


def _workers(count: int, args: list[str], env: dict, cwd: Path) -> list[subprocess.Popen]:
    command = [sys.executable, "-m", "cnnreg", "sweep", *FAST, *args]
    return [subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(count)]


def _cells_ran_once(data: dict, cells: int) -> None:
    complete = [t for t in data["trials"] if t["state"] == "complete"]
    assert len(complete) == cells, data["trials"]
    assert len({json.dumps(t["params"], sort_keys=True) for t in complete}) == cells


def test_two_local_workers_share_the_grid(tmp_path, subprocess_env):
    """Two workers on the default SQLite store: each of the 4 cells exactly once between them,
    and no 'database is locked'."""
    args = ["--epochs", "1", "--init", "he_normal,glorot_uniform", "--reg", "none,dropout=0.3", "--study", "shared", "-q"]
    procs = _workers(2, args, subprocess_env, tmp_path)
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-2000:]
        assert "locked" not in err and "Traceback" not in err
    data = json.loads(run_cli("sweep", "show", "shared", "--root", str(tmp_path / "sweeps"), "--json").stdout)
    _cells_ran_once(data, 4)


def test_a_killed_worker_trial_is_failed_and_run_again(tmp_path, subprocess_env):
    """kill -9 a worker in the middle of its trial: the next worker finds its heartbeat stale,
    fails it and runs its cell again; the completed total is exactly --trials."""
    args = ["--init", "he_normal,glorot_uniform", "--epochs", "20", "--study", "killed", "--heartbeat", "1", "-q"]
    (first,) = _workers(1, args, subprocess_env, tmp_path)
    history = tmp_path / "sweeps" / "killed" / "trial-0000-lenet5" / "history.csv"
    deadline = time.monotonic() + 240
    while not history.exists():  # an epoch of trial 0 on record: it is under way, 19 to go
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[1][-2000:]
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait()
    time.sleep(3)  # more than twice the heartbeat: its trial is stale
    (second,) = _workers(1, args, subprocess_env, tmp_path)
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err[-2000:]
    data = json.loads(run_cli("sweep", "show", "killed", "--root", str(tmp_path / "sweeps"), "--json").stdout)
    states = sorted(t["state"] for t in data["trials"])
    assert states == ["complete", "complete", "fail"], data["trials"]
    retried = [t for t in data["trials"] if t["retry_of"] is not None]
    assert len(retried) == 1 and retried[0]["retry_of"] == 0 and retried[0]["state"] == "complete"
    _cells_ran_once(data, 2)


# --- a real PostgreSQL server ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of this test's own: a new cluster in a temporary folder, listening on
    127.0.0.1 only, run as the postgres user (pg_ctl refuses root); removed at the end."""
    bindir = Path("/usr/lib/postgresql/15/bin")
    initdb = shutil.which("initdb") or str(bindir / "initdb")
    pg_ctl = shutil.which("pg_ctl") or str(bindir / "pg_ctl")
    if not Path(initdb).exists():
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg2")
    folder = Path(tempfile.mkdtemp(prefix="cnnreg-pg-", dir="/tmp"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    data = folder / "data"
    subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"], check=True,
                   capture_output=True, timeout=120)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}"
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        subprocess.run([*prefix, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                        "cnnreg"], check=True, capture_output=True, timeout=60)
        yield f"postgresql://postgres@127.0.0.1:{port}/cnnreg"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_on_postgresql_run_every_cell_once(postgres, tmp_path, subprocess_env):
    """The issue's second check: two workers started together on one PostgreSQL study."""
    args = ["--epochs", "1", "--init", "he_normal,glorot_uniform", "--reg", "none,dropout=0.3", "--sampler", "grid",
            "--trials", "4",
            "--study", "shared", "--storage", postgres, "-q"]
    procs = _workers(2, args, subprocess_env, tmp_path)
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    result = cnnreg.show_sweep("shared", storage=postgres, root=tmp_path / "sweeps")
    _cells_ran_once(result.to_dict(), 4)
    assert result.to_dict()["storage"] == postgres  # no password to hide here
