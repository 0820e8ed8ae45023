"""Issue 13, runs: a best model without optimizer state, no stale checkpoint folder, history.csv's
column order, the resume header and whole-run ETA, the BatchNorm line of the header, a fixed-width
summary.txt, canonical run directory names, no TensorFlow on the JAX backend, `cnnreg runs` at 80
and 60 columns, and --dry-run as the help and the docs describe it.

The runs are tiny (mlp_bn on 8x8 digits) and made once per module where they can be shared.
"""

from __future__ import annotations

import io
import json
import os
import types
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnnreg.testing import run_cli
from cnnreg.training import loop, rundir
from cnnreg.training.model import SUMMARY_WIDTH

from runhelpers import interrupted_run  # noqa: E402

FAST = ["--dataset", "digits:size=8", "--batch-size", "64", "--quiet"]
DOCS = Path(__file__).resolve().parent.parent / "docs"


def _interrupted_after_two(run_dir: Path, epochs: int = 4):
    """`cnnreg run` stopped by Ctrl-C (as the loop sees it) once epoch 2 is on record."""
    return interrupted_run(run_dir, "mlp_bn", "--epochs", str(epochs), *FAST[:-1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    stopped = _interrupted_after_two(root / "interrupted")
    assert stopped.exit_code == 130, stopped.output
    return root, stopped


@pytest.fixture
def interrupted(runs, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(runs[0] / "interrupted", tmp_path / "interrupted"))


# --- the best model without optimizer state; checkpoint/ gone once completed ----------------------


def _weights_groups(path: Path) -> list[str]:
    import h5py

    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
        return sorted(weights.keys())


def test_best_model_is_the_checkpoint_without_its_optimizer(interrupted):
    import keras

    checkpoint, best = interrupted / "checkpoint" / "epoch-0002.keras", interrupted / "model.keras"
    assert json.loads((interrupted / "run.json").read_text())["best_epoch"] == 2
    assert "optimizer" in _weights_groups(checkpoint) and "optimizer" not in _weights_groups(best)
    with zipfile.ZipFile(best) as archive:
        assert "compile_config" not in json.loads(archive.read("config.json"))
    assert best.stat().st_size < checkpoint.stat().st_size / 2  # Adam keeps two slots per weight
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Skipping variable loading for optimizer"
        model = keras.models.load_model(best, safe_mode=True)
    assert not model.compiled
    reference = keras.models.load_model(checkpoint, safe_mode=True, compile=False)
    for mine, theirs in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    from cnnreg.training.saved import load_run_model

    assert load_run_model(interrupted).count_params() == reference.count_params()


def test_completed_run_keeps_no_checkpoint_folder_and_evaluates(interrupted, tmp_path):
    from PIL import Image

    resumed = run_cli("resume", str(interrupted), "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert not (interrupted / "checkpoint").exists()  # state.json went with the checkpoints
    assert "optimizer" not in _weights_groups(interrupted / "model.keras")
    image = tmp_path / "digit.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(image)
    assert run_cli("evaluate", str(interrupted), "--json").exit_code == 0
    assert run_cli("predict", str(interrupted), str(image), "--json").exit_code == 0
    again = run_cli("resume", str(interrupted))
    assert again.exit_code == 2 and "already completed" in again.stderr
    listing = json.loads(run_cli("runs", "--root", str(interrupted.parent), "--json").stdout)["runs"]
    assert [r["status"] for r in listing] == ["completed"]


# --- history.csv, the resume header, the ETA, the interrupted line ---------------------------------


HEADER = "epoch,phase,lr,loss,accuracy,val_loss,val_accuracy,seconds"


def test_history_columns_keep_their_order():
    rows = [{"val_loss": 1.0, "seconds": 2.0, "accuracy": 0.5, "lr": 0.1, "epoch": 1, "phase": "train",
             "loss": 3.0, "val_accuracy": 0.4, "top5": 0.9, "val_top5": 0.8}]
    assert rundir.history_columns(rows) == ["epoch", "phase", "lr", "loss", "accuracy", "top5", "val_loss",
                                            "val_accuracy", "val_top5", "seconds"]


def test_resume_looks_like_run(runs, interrupted):
    stopped = runs[1]
    assert "status      interrupted: resume with: cnnreg resume" in stopped.stdout
    assert "interrupted: interrupted" not in stopped.stdout
    assert (interrupted / "history.csv").read_text().splitlines()[0] == HEADER
    result = run_cli("resume", str(interrupted))
    assert result.exit_code == 0, result.output
    assert "cnnreg resume mlp_bn" in result.stdout and "after epoch 2 of 4" in result.stdout
    assert "BatchNorm momentum 0.9" in result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["3/4", "4/4"]
    assert "; run 0:" in lines[0] and "left)" in lines[0] and "left" not in lines[1]  # the whole run's ETA
    assert (interrupted / "history.csv").read_text().splitlines()[0] == HEADER  # not alphabetical


def test_progress_eta_counts_every_epoch_to_come():
    from rich.console import Console

    from cnnreg.training.progress import make_progress

    progress = make_progress("plain", Console(file=io.StringIO()), 10)
    progress.set_phase("fine-tune", 5)
    progress.set_run(before=3, total=8)  # 3 head epochs, then 5 of fine-tuning
    progress._epochs = [9.0, 2.0, 2.0]
    assert progress.left(1) == 2.0 * 3  # fine-tuning epoch 2 done: 3 more at 2 s (the first also compiled)


# --- the header's BatchNorm line -------------------------------------------------------------------


@pytest.mark.parametrize("architecture, mentioned", [("lenet5", False), ("mlp_bn", True)])
def test_header_mentions_batchnorm_only_where_there_is_some(architecture, mentioned):
    from rich.console import Console

    from cnnreg.cli.runview import header
    from cnnreg.training.config import RunConfig
    from cnnreg.training.model import prepare
    from cnnreg.training.config import resolve

    plan = prepare(resolve(RunConfig(architecture, dataset="digits:size=8", batch_size=64)))
    console = Console(file=io.StringIO(), width=200)
    console.print(header(plan))
    assert ("BatchNorm" in console.file.getvalue()) is mentioned
    assert (plan.bn_momentum is not None) is mentioned


# --- summary.txt ---------------------------------------------------------------------------------


def test_summary_txt_does_not_depend_on_the_terminal(tmp_path, monkeypatch):
    import keras

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", name="a_rather_long_convolution_name")(inputs)
    x = keras.layers.Add()([x, keras.layers.Conv2D(4, 1, name="shortcut")(inputs)])
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    texts = []
    for columns in ("80", "200"):
        monkeypatch.setenv("COLUMNS", columns)
        loop._write_summary(types.SimpleNamespace(model=model), tmp_path)
        texts.append((tmp_path / "summary.txt").read_text())
        assert os.environ["COLUMNS"] == columns  # put back
    assert texts[0] == texts[1]
    assert "Connected to" in texts[0] and "a_rather_long_convolution_name" in texts[0]
    assert max(len(line) for line in texts[0].splitlines()) == SUMMARY_WIDTH


# --- names, backends, `cnnreg runs`, --dry-run ----------------------------------------------------


def test_run_directory_takes_the_canonical_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("run", "MLP_BN", "--epochs", "1", "--dataset", "Digits:size=8", "--batch-size", "64", "--quiet")
    assert result.exit_code == 0, result.output
    [made] = (tmp_path / "runs").iterdir()
    assert made.name.endswith("-mlp_bn-digits"), made.name


def _fake_run(root: Path, name: str, status: str, best: float | None, arch: str = "resnet34") -> None:
    data = {"status": status, "config": {"architecture": arch, "dataset": "digits:size=8", "epochs": 30},
            "best": {"val_accuracy": best}, "test": {"accuracy": 0.9711}, "epochs_done": 30 if status == "completed" else 7,
            "seconds": 1234.5}
    (root / name).mkdir(parents=True)
    (root / name / "run.json").write_text(json.dumps(data))


@pytest.mark.parametrize("columns", [200, 80, 60])
def test_runs_cuts_no_name_and_no_number(tmp_path, monkeypatch, columns):
    names = ["20261130-034016-resnet34-digits", "20261130-041500-architecture_with_a_long_name-digits", "short"]
    _fake_run(tmp_path, names[0], "completed", 0.987654)
    _fake_run(tmp_path, names[1], "failed", None, arch="architecture_with_a_long_name")
    _fake_run(tmp_path, names[2], "interrupted", 0.5)
    monkeypatch.setenv("COLUMNS", str(columns))
    result = run_cli("runs", "--root", str(tmp_path))
    assert result.exit_code == 0, result.output
    lines = result.stdout.rstrip("\n").splitlines()
    assert "…" not in result.stdout
    for name in names:
        assert any(line.startswith(name + " ") or line.rstrip() == name for line in lines), result.stdout
    if len(max(names, key=len)) + 3 + len("interrupted") <= columns:
        assert max(len(line.rstrip()) for line in lines) <= columns, result.stdout
        assert "interrupted" in result.stdout
    if columns >= 80:
        assert "0.9877" in result.stdout and "0.5000" in result.stdout
    if columns >= 200:
        assert "architecture_with_a_long_name " in result.stdout and "1234 s" in result.stdout and "30/30" in result.stdout


def test_dry_run_is_the_header_and_the_layer_summary(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("run", "lenet5", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "cnnreg run lenet5" in result.stdout and "Total params" in result.stdout
    assert not (tmp_path / "runs").exists()
    import typer

    from cnnreg.cli import make_app

    command = typer.main.get_command(make_app(with_plugins=False)).commands["run"]
    [dry_run] = [param for param in command.params if param.name == "dry_run"]
    assert "print the header and the layer summary; train and write nothing" in dry_run.help
    assert "--reg dropout=0.5 --reg crop --optimizer sgd:momentum=0.9" in command.help  # no mirrored digits
    training = " ".join((DOCS / "training.md").read_text().split())
    assert "print the header and the layer summary, train and write nothing" in training
    assert "header only" not in training


def test_runs_counts_the_epochs_of_both_phases():
    from cnnreg.api.runs import total_epochs as _total_epochs

    assert _total_epochs({"epochs": 3, "fine_tune_epochs": 3}) == 6  # `cnnreg runs` said 6/3
    assert _total_epochs({"epochs": 3, "fine_tune_epochs": 0}) == 3
    assert _total_epochs({"epochs": 3, "fine_tune_epochs": "3"}) == 3  # a hand-edited manifest: as written
