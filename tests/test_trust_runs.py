"""Issue 12, sections 2 and 3: nothing read back from a run directory is imported or executed,
and every fault of a run directory is one line that loses no finished epoch.

The runs are tiny (mlp_bn on 8x8 digits) and made once per module: a completed one, and one
interrupted after epoch 2 of 3 (Ctrl-C, as the loop sees it), with its two checkpoints.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cnnreg import files
from cnnreg.testing import run_cli
from cnnreg.training import loop, rundir

from runhelpers import history, interrupted_run, one_line  # noqa: E402

FAST = ["--dataset", "digits:size=8", "--batch-size", "64", "--quiet"]
def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def edit_manifest(run_dir: Path, **fields) -> None:
    data = manifest(run_dir)
    data.update(fields)
    (run_dir / "run.json").write_text(json.dumps(data))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A completed run, and one interrupted after epoch 2 of 3 with both its checkpoints."""
    root = tmp_path_factory.mktemp("runs")
    done = run_cli("run", "mlp_bn", "--epochs", "1", *FAST, "--run-dir", str(root / "completed"))
    assert done.exit_code == 0, done.output
    stopped = interrupted_run(root / "interrupted", "mlp_bn", "--epochs", "3", *FAST)
    assert stopped.exit_code == 130, stopped.output
    return root


@pytest.fixture
def completed(runs, tmp_path) -> Path:
    return Path(shutil.copytree(runs / "completed", tmp_path / "completed"))


@pytest.fixture
def interrupted(runs, tmp_path) -> Path:
    return Path(shutil.copytree(runs / "interrupted", tmp_path / "interrupted"))


@pytest.fixture
def image(tmp_path) -> Path:
    from PIL import Image

    path = tmp_path / "digit.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(path)
    return path


# --- 2. nothing read from a file is imported or executed ------------------------------------------


@pytest.mark.parametrize("value", ["os:system", "builtins:print", "this:s", "evilmod:run", 3])
def test_preprocess_named_in_run_json_is_refused(value, completed, interrupted, image):
    had_this = "this" in sys.modules
    for run_dir in (completed, interrupted):
        edit_manifest(run_dir, preprocess=value)
    for args in (["evaluate", str(completed)], ["predict", str(completed), str(image)], ["resume", str(interrupted)]):
        result = run_cli(*args)
        one_line(result, "field 'preprocess'", "refusing to import it", "architecture 'mlp_bn'")
        assert result.stdout == "", result.stdout  # builtins:print printed nothing
    assert had_this or "this" not in sys.modules
    assert len(history(interrupted)) == 2  # resume trained nothing


def test_preprocess_from_the_fixed_table_is_accepted(completed, image):
    edit_manifest(completed, preprocess="scale_0_1")
    result = run_cli("predict", str(completed), str(image), "--json")
    assert result.exit_code == 0, result.output


def test_python_m_cnnreg_imports_nothing_from_the_current_folder(completed, image, tmp_path, subprocess_env):
    """A module named in run.json, or named like one cnnreg imports later (rich), is not taken
    from the folder `python -m cnnreg` is run in."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for name in ("evilmod", "rich"):
        (cwd / f"{name}.py").write_text(f"open({str(tmp_path / (name + '.ran'))!r}, 'w').close()\n"
                                        "def run(x):\n    return x\n")
    edit_manifest(completed, preprocess="evilmod:run")
    proc = subprocess.run([sys.executable, "-m", "cnnreg", "predict", str(completed), str(image)],
                          cwd=cwd, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "field 'preprocess' ('evilmod:run')" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not list(tmp_path.glob("*.ran")), "a module of the current folder was imported"


@pytest.mark.parametrize("name", ["../../../etc/passwd", "/etc/passwd", "epoch-0002.keras/../../run.json",
                                  "sub/epoch-0002.keras", "epoch-0002.h5", None])
def test_state_json_checkpoint_must_be_a_checkpoint_file_inside_the_folder(name, interrupted):
    path = interrupted / "checkpoint" / "state.json"
    state = json.loads(path.read_text())
    state["checkpoint"] = name
    path.write_text(json.dumps(state))
    one_line(run_cli("resume", str(interrupted)), "field 'checkpoint'", "refusing to follow it")


def test_state_json_checkpoints_list_is_checked_too(interrupted):
    path = interrupted / "checkpoint" / "state.json"
    state = json.loads(path.read_text())
    assert state["checkpoints"] == ["epoch-0001.keras", "epoch-0002.keras"]  # the last two are kept
    state["checkpoints"] = ["../../../etc/passwd"]
    path.write_text(json.dumps(state))
    one_line(run_cli("resume", str(interrupted)), "field 'checkpoints'")


def test_a_checkpoint_linked_out_of_the_folder_is_refused(interrupted, tmp_path):
    outside = tmp_path / "elsewhere.keras"
    shutil.copyfile(interrupted / "checkpoint" / "epoch-0002.keras", outside)
    (interrupted / "checkpoint" / "epoch-0002.keras").unlink()
    (interrupted / "checkpoint" / "epoch-0002.keras").symlink_to(outside)
    one_line(run_cli("resume", str(interrupted)), "leads outside the folder")


def _lambda_model(path: Path) -> None:
    import keras

    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(keras.layers.Lambda(lambda x: x * 2)(inputs)))
    keras.Model(inputs, outputs).save(path)


def test_a_lambda_layer_is_refused_in_one_line(completed, interrupted, image, tmp_path):
    _lambda_model(tmp_path / "lambda.keras")
    (completed / "model.keras").unlink()
    shutil.copyfile(tmp_path / "lambda.keras", completed / "model.keras")
    for args in (["evaluate", str(completed)], ["predict", str(completed), str(image)]):
        one_line(run_cli(*args), f"model.keras in {completed} contains a Lambda layer", "Keras safe mode")
    for name in ("epoch-0001.keras", "epoch-0002.keras"):
        shutil.copyfile(tmp_path / "lambda.keras", interrupted / "checkpoint" / name)
    one_line(run_cli("resume", str(interrupted)), "cannot resume", "contains a Lambda layer")


# --- 3. every fault is one line, no finished epoch is lost -----------------------------------------


def test_state_json_deleted_resumes_from_the_newest_checkpoint(interrupted):
    before = history(interrupted)
    (interrupted / "checkpoint" / "state.json").unlink()
    result = run_cli("resume", str(interrupted), "--quiet")
    assert result.exit_code == 0, result.output
    assert "state.json is missing" in result.stderr and "from checkpoint/epoch-0002.keras (epoch 2)" in result.stderr
    after = history(interrupted)
    assert [row["epoch"] for row in after] == ["1", "2", "3"]
    assert after[:2] == before  # epochs 1 and 2 kept, not trained again
    assert manifest(interrupted)["status"] == "completed"


def test_a_damaged_newest_checkpoint_falls_back_to_the_older_one(interrupted):
    before = history(interrupted)
    newest = interrupted / "checkpoint" / "epoch-0002.keras"
    newest.write_bytes(newest.read_bytes()[:1000])
    result = run_cli("resume", str(interrupted), "--quiet")
    assert result.exit_code == 0, result.output
    assert "epoch-0002.keras is damaged" in result.stderr and "File not found" not in result.output
    after = history(interrupted)
    assert [row["epoch"] for row in after] == ["1", "2", "3"] and after[0] == before[0]


def test_nothing_left_to_resume_from_refuses_and_restarts_nothing(interrupted):
    for name in ("state.json", "epoch-0001.keras", "epoch-0002.keras"):
        (interrupted / "checkpoint" / name).unlink()
    before = history(interrupted)
    one_line(run_cli("resume", str(interrupted)), "cannot resume", "cnnreg rerun")
    assert history(interrupted) == before


def test_a_run_killed_before_its_first_epoch_starts_again(interrupted):
    """Only when no epoch ever went on record does resume train from epoch 1."""
    shutil.rmtree(interrupted / "checkpoint")
    (interrupted / "history.csv").unlink()
    (interrupted / "model.keras").unlink()
    edit_manifest(interrupted, status="running", epochs_done=0)
    result = run_cli("resume", str(interrupted), "--quiet")
    assert result.exit_code == 0, result.output
    assert [row["epoch"] for row in history(interrupted)] == ["1", "2", "3"]


@pytest.mark.parametrize("content, why", [("[]", "not a JSON object"), ('{"status": "running"}', "no 'config'"),
                                          ('{"config": {"epochs": 3}}', "field 'config'"), ('{"conf', "is damaged")])
def test_a_damaged_run_json_is_one_line(content, why, interrupted, image):
    (interrupted / "run.json").write_text(content)
    for args in (["resume", str(interrupted)], ["evaluate", str(interrupted)], ["predict", str(interrupted), str(image)],
                 ["rerun", str(interrupted)]):
        one_line(run_cli(*args), f"run.json in {interrupted} is damaged", why)


def test_model_keras_cut_short_or_deleted(completed, image):
    model = completed / "model.keras"
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 3])
    for args in (["evaluate", str(completed)], ["predict", str(completed), str(image)]):
        one_line(run_cli(*args), f"model.keras in {completed} is damaged")
    model.unlink()
    one_line(run_cli("evaluate", str(completed)), f"model.keras in {completed} is missing")


def test_a_path_that_does_not_exist(tmp_path):
    for command in ("resume", "evaluate", "rerun"):
        one_line(run_cli(command, str(tmp_path / "run1")), f"'{tmp_path / 'run1'}' does not exist")


def test_run_dir_checks(completed, interrupted, tmp_path):
    (tmp_path / "file").write_text("x")
    one_line(run_cli("run", "mlp_bn", *FAST, "--run-dir", str(tmp_path / "file")), "is a file, not a directory")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "model.keras").write_text("mine")
    one_line(run_cli("run", "mlp_bn", *FAST, "--run-dir", str(tmp_path / "photos")),
             "is not empty and holds no cnnreg run; choose an empty or new --run-dir")
    assert (tmp_path / "photos" / "model.keras").read_text() == "mine"
    one_line(run_cli("run", "mlp_bn", *FAST, "--run-dir", str(completed)), "completed run", f"cnnreg rerun {completed}")
    one_line(run_cli("run", "mlp_bn", *FAST, "--run-dir", str(interrupted)), f"cnnreg resume {interrupted}")
    one_line(run_cli("resume", str(completed)), "already completed", "cnnreg rerun")


def _hold_lock(run_dir: Path) -> subprocess.Popen:
    """Another process holding the run directory's lock, as a training cnnreg process does."""
    script = ("import fcntl, os, socket, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
              "fcntl.flock(fd, fcntl.LOCK_EX); os.ftruncate(fd, 0); os.write(fd, f'{os.getpid()} {socket.gethostname()}\\n'.encode()); "
              "print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", script, str(run_dir / ".lock")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_directory_in_use_is_refused(interrupted, tmp_path):
    (tmp_path / "new").mkdir()
    for run_dir, args in ((interrupted, ["resume", str(interrupted)]),
                          (tmp_path / "new", ["run", "mlp_bn", *FAST, "--run-dir", str(tmp_path / "new")])):
        holder = _hold_lock(run_dir)
        try:
            one_line(run_cli(*args), f"{run_dir} is in use by another cnnreg process (pid {holder.pid} on {socket.gethostname()})")
            if args[0] == "resume":  # cnnreg runs: the process is there, the lock held: still running
                edit_manifest(run_dir, status="running", process={"pid": holder.pid, "host": socket.gethostname()})
                listing = json.loads(run_cli("runs", "--root", str(tmp_path), "--json").stdout)["runs"]
                assert [r["status"] for r in listing if r["run_dir"] == str(run_dir)] == ["running"]
        finally:
            holder.kill()
            holder.wait()
    assert len(history(interrupted)) == 2


def test_runs_shows_a_killed_run_as_interrupted(interrupted, tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    edit_manifest(interrupted, status="running", process={"pid": gone.pid, "host": socket.gethostname()})
    result = run_cli("runs", "--root", str(tmp_path), "--json")
    assert [r["status"] for r in json.loads(result.stdout)["runs"]] == ["interrupted"]
    # the pid exists (reused, here by this process) but nobody holds the lock
    edit_manifest(interrupted, process={"pid": os.getpid(), "host": socket.gethostname()})
    assert "interrupted" in run_cli("runs", "--root", str(tmp_path)).stdout
    result = run_cli("resume", str(interrupted), "--quiet")  # resume takes `running` whose process is gone
    assert result.exit_code == 0 and manifest(interrupted)["status"] == "completed", result.output


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "until-freed"])
def test_disk_full_mid_run_is_one_line_and_resumable(persistent, tmp_path, monkeypatch):
    write_atomic = files.write_atomic
    full = {"on": False}

    def disk_full_at_epoch_2(path, data):
        if Path(path).name == "state.json" and '"epochs_done": 2' in str(data):
            full["on"] = True
        if full["on"]:
            full["on"] = persistent
            raise OSError(errno.ENOSPC, "No space left on device")
        write_atomic(path, data)

    monkeypatch.setattr(files, "write_atomic", disk_full_at_epoch_2)
    run_dir = tmp_path / "full"
    result = run_cli("run", "mlp_bn", "--epochs", "3", *FAST, "--run-dir", str(run_dir))
    one_line(result, "No space left on device", "at epoch 2", f"cnnreg resume {run_dir}")
    monkeypatch.setattr(files, "write_atomic", write_atomic)  # space freed
    assert [row["epoch"] for row in history(run_dir)] == ["1"]
    data = manifest(run_dir)
    if persistent:  # run.json could not be written: `runs` tells the process is gone
        assert data["status"] == "running"
        assert json.loads(run_cli("runs", "--root", str(tmp_path), "--json").stdout)["runs"][0]["status"] == "interrupted"
    else:
        assert data["status"] == "failed" and "No space left on device" in data["message"]
    resumed = run_cli("resume", str(run_dir), "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert [row["epoch"] for row in history(run_dir)] == ["1", "2", "3"]
    assert manifest(run_dir)["status"] == "completed"


def test_an_unwritable_run_directory_is_refused_before_anything_loads(interrupted, tmp_path, monkeypatch):
    """Simulated (the tests may run as root, where chmod stops no write): every write fails."""
    from cnnreg.training import model as model_module
    from cnnreg.training import resume as resume_module

    def read_only(path, data):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    def never(*args, **kwargs):
        raise AssertionError("data loaded before the run directory was checked")

    monkeypatch.setattr(files, "write_atomic", read_only)
    monkeypatch.setattr(model_module, "prepare", never)
    monkeypatch.setattr(resume_module, "prepare", never)
    one_line(run_cli("run", "mlp_bn", *FAST, "--run-dir", str(tmp_path / "new")), "is not writable", "Permission denied")
    assert not (tmp_path / "new").exists()  # the directory it made is gone again
    one_line(run_cli("resume", str(interrupted)), f"{interrupted} is not writable")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes to read-only directories")
def test_a_read_only_run_directory_for_real(interrupted, tmp_path):
    os.chmod(interrupted, 0o555)
    (tmp_path / "ro").mkdir(mode=0o555)
    try:
        one_line(run_cli("resume", str(interrupted)), "is not writable")
        one_line(run_cli("run", "mlp_bn", *FAST, "--run-dir", str(tmp_path / "ro" / "run")), "cannot create the run directory")
    finally:
        os.chmod(interrupted, 0o755)
        os.chmod(tmp_path / "ro", 0o755)


def test_a_failed_run_resumes(interrupted):
    edit_manifest(interrupted, status="failed", message="loss became NaN")
    result = run_cli("resume", str(interrupted), "--quiet")
    assert result.exit_code == 0, result.output
    data = manifest(interrupted)
    assert data["status"] == "completed" and data["message"] == "" and data["epochs_done"] == 3
