"""`--checkpoint`: which epochs write the resumable checkpoint (cnnreg.training.loop.checkpoint_due).

Between checkpoints an epoch writes only history.csv and run.json and a better model waits in
memory; the next checkpoint (at the latest, the phase's end) writes it as model.keras.  A run
stopped between checkpoints ends where its last checkpoint is, which is where resume goes on."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

import cnnreg
from cnnreg import testing
from cnnreg.testing import run_cli

FAST = ["--dataset", "digits:size=8", "--batch-size", "64", "--quiet"]
#: Adam at 0.05 on mlp_bn: validation accuracy peaks before the last of 5 epochs (at 3 or 4)
NOT_LAST_BEST = ["mlp_bn", "--epochs", "5", "--lr", "0.05", *FAST]


def manifest(run_dir):
    return json.loads((run_dir / "run.json").read_text())


def history_rows(run_dir):
    return (run_dir / "history.csv").read_text().splitlines()[1:]


def weights_of(path):
    import keras

    return keras.models.load_model(path, compile=False).get_weights()


@pytest.mark.parametrize("value, seconds", [("auto", None), ("epoch", 0.0), ("300", 300.0), ("90s", 90.0), (0, 0.0)])
def test_checkpoint_values(value, seconds):
    from cnnreg.training.config import checkpoint_seconds

    assert checkpoint_seconds(value) == seconds


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "1e99"])
def test_a_bad_checkpoint_option_is_one_line(value):
    result = run_cli("run", "lenet5", "--checkpoint", value)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "--checkpoint must be auto, epoch or a number of seconds" in result.stderr


def test_a_best_epoch_between_checkpoints_is_the_model_every_epoch_would_have_written(tmp_path):
    """The same seeded run checkpointed every epoch and only at its end: the best epoch (not the
    last) waited in memory in the second and was written at the end, the same model.keras."""
    every, once = tmp_path / "every", tmp_path / "once"
    for run_dir, checkpoint in ((every, "epoch"), (once, "3600")):
        result = run_cli("run", *NOT_LAST_BEST, "--checkpoint", checkpoint, "--run-dir", str(run_dir))
        assert result.exit_code == 0, result.output
    a, b = manifest(every), manifest(once)
    assert a["best_epoch"] == b["best_epoch"] < 5 and a["epochs_done"] == b["epochs_done"] == 5
    assert a["config"]["checkpoint"] == "epoch" and b["config"]["checkpoint"] == "3600"
    assert a["test"]["accuracy"] == b["test"]["accuracy"]
    for x, y in zip(weights_of(every / "model.keras"), weights_of(once / "model.keras")):
        np.testing.assert_array_equal(x, y)
    assert not (once / "checkpoint").exists()  # completed: nothing left to resume


def _interrupting_plugin(after_epochs: int):
    """A regulariser whose callback raises KeyboardInterrupt (a Ctrl-C), once, when ``after_epochs``
    epochs ended."""
    from cnnreg.kinds.regularisers import Regulariser

    fired = []

    class Stop(Regulariser):
        def callbacks(self):
            import keras

            class Interrupt(keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None):
                    if epoch + 1 >= after_epochs and not fired:
                        fired.append(epoch)
                        raise KeyboardInterrupt

            return [Interrupt()]

    module = types.ModuleType("stopplug")

    @cnnreg.hookimpl
    def register_regularisers(registry):
        registry.add("stop_after", lambda: Stop())

    module.register_regularisers = register_regularisers
    return module


def test_a_run_stopped_between_checkpoints_ends_at_its_last_one_and_resumes_from_it(tmp_path, monkeypatch):
    """`--checkpoint auto` for a checkpoint over CHEAP_BYTES (here every checkpoint is) writes one
    per AUTO_SECONDS: Ctrl-C after 3 epochs of which none was checkpointed leaves the run at
    epoch 0, as resume sees it; resume trains the 3 epochs again and finishes."""
    from cnnreg.training import loop

    monkeypatch.setattr(loop, "CHEAP_BYTES", 0)
    monkeypatch.setattr(loop, "AUTO_SECONDS", 3600.0)
    run_dir = tmp_path / "run"
    metrics = run_dir / "logs" / "csv" / "metrics.csv"
    with testing.plugin(_interrupting_plugin(3), name="stopplug"):
        result = run_cli("run", "mlp_bn", "--epochs", "4", "--reg", "stop_after", *FAST, "--log", "csv",
                         "--run-dir", str(run_dir))
        assert result.exit_code == 130, result.output
        data = manifest(run_dir)
        assert data["status"] == "interrupted" and data["epochs_done"] == 0 and data["best_epoch"] is None
        assert not (run_dir / "history.csv").exists() and not (run_dir / "model.keras").exists()
        # a tracker gets an epoch once a checkpoint holds it: none did
        assert not metrics.exists() or "epoch" not in metrics.read_text(), metrics.read_text()
        resumed = run_cli("resume", str(run_dir))
    assert resumed.exit_code == 0, resumed.output
    data = manifest(run_dir)
    assert data["status"] == "completed" and data["epochs_done"] == 4 and (run_dir / "model.keras").exists()
    epochs = [line.split(",")[0] for line in metrics.read_text().splitlines()[1:] if line.split(",")[1]]  # (not the test row)
    assert epochs == ["1", "2", "3", "4"] and len(history_rows(run_dir)) == 4, metrics.read_text()


def test_checkpointed_every_epoch_a_stopped_run_keeps_every_epoch(tmp_path):
    run_dir = tmp_path / "run"
    with testing.plugin(_interrupting_plugin(3), name="stopplug"):
        result = run_cli("run", "mlp_bn", "--epochs", "4", "--reg", "stop_after", *FAST, "--checkpoint", "epoch",
                         "--run-dir", str(run_dir))
    assert result.exit_code == 130, result.output
    data = manifest(run_dir)
    assert data["status"] == "interrupted" and data["epochs_done"] == 3  # checkpointed before the Ctrl-C
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    assert state["epochs_done"] == 3 and state["checkpoint"] == "epoch-0003.keras"
