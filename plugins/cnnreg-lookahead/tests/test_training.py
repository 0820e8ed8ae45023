"""Through the real CLI, in this process: a run with Lookahead, its checkpoint in Keras' safe
mode (in a new process, where only importing the keras_objects module makes it loadable), and
the resume of an interrupted run."""

import contextlib
import csv
import json
import os
import subprocess
import sys

import pytest

from cnnreg import testing
from cnnreg.training import loop

import cnnreg_lookahead.plugin as plugin

RUN = ["run", "lenet5", "--optimizer", "lookahead:inner=adam,k=3", "--dataset", "digits:size=8", "--quiet"]
STEPS_PER_EPOCH = 43  # 1,347 training images, batch 32

LOAD = """
import sys, keras
path = sys.argv[1]
try:
    keras.models.load_model(path, compile=True, safe_mode=True)
    print("loaded without the plugin's module")
except Exception as exc:
    print("refused:", type(exc).__name__)
import cnnreg_lookahead.optimizer
model = keras.models.load_model(path, compile=True, safe_mode=True)
optimizer = model.optimizer
slow = [v for v in optimizer.variables if v.path.endswith("_slow")]
print(type(optimizer).__name__, type(optimizer.inner_optimizer).__name__, optimizer.k,
      int(optimizer.iterations), int(optimizer.inner_optimizer.iterations), len(slow), len(model.trainable_variables))
"""


def _stopped(*, after, args):
    """``cnnreg ARGS`` (a run or a resume) stopped by Ctrl-C once epoch ``after`` is on record
    (what the loop sees of a Ctrl-C between epochs), as cnnreg's own tests make one."""
    save_epoch = loop.save_epoch

    def stop(plan, target, model, state, epoch, **options):
        save_epoch(plan, target, model, state, epoch, **options)
        if len(state["history"]) == after:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "save_epoch", stop)
        return testing.run_cli(*args)


@contextlib.contextmanager
def _optimizer_steps_at_fit():
    """The optimizer's step count each time ``model.fit`` starts, in a list."""
    import keras

    fit, steps = keras.Model.fit, []

    def recording(model, *args, **kwargs):
        steps.append(int(keras.ops.convert_to_numpy(model.optimizer.iterations)))
        return fit(model, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras.Model, "fit", recording)
        yield steps


def test_run_with_lookahead_then_resume_an_interrupted_one(tmp_path):
    with testing.isolated(), testing.plugin(plugin, distribution="cnnreg-lookahead"):
        done = testing.run_cli(*RUN, "--epochs", "2", "--run-dir", str(tmp_path / "run"))
        assert done.exit_code == 0, done.output
        manifest = json.loads((tmp_path / "run" / "run.json").read_text())
        assert manifest["status"] == "completed", manifest
        with open(tmp_path / "run" / "history.csv", newline="") as handle:
            history = list(csv.DictReader(handle))
        assert [row["epoch"] for row in history] == ["1", "2"]
        assert float(history[1]["loss"]) < float(history[0]["loss"])  # measured 2.16 → 1.54

        # Ctrl-C after the first of two epochs, then `cnnreg resume`
        run_dir = tmp_path / "interrupted"
        with _optimizer_steps_at_fit() as steps:
            stopped = _stopped(after=1, args=[*RUN, "--epochs", "2", "--run-dir", str(run_dir)])
        assert stopped.exit_code == 130, stopped.output
        assert steps == [0]
        state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
        checkpoint = run_dir / "checkpoint" / state["checkpoint"]
        assert state["epochs_done"] == 1 and checkpoint.is_file()

        # A new process knows nothing of the plugin until the keras_objects module is imported.
        import keras

        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), KERAS_BACKEND=keras.backend.backend())
        loaded = subprocess.run([sys.executable, "-c", LOAD, str(checkpoint)], capture_output=True, text=True,
                                env=env, timeout=300)
        assert loaded.returncode == 0, loaded.stderr[-2000:]
        first, second = loaded.stdout.strip().splitlines()[-2:]
        assert first.startswith("refused"), first
        # Lookahead around Adam, k 3, an epoch of steps taken by both, a slow copy of each weight
        assert second.split() == ["Lookahead", "Adam", "3", str(STEPS_PER_EPOCH), str(STEPS_PER_EPOCH), "10", "10"]

        with _optimizer_steps_at_fit() as steps:
            resumed = testing.run_cli("resume", str(run_dir), "--quiet")
        assert resumed.exit_code == 0, resumed.output
        assert steps == [STEPS_PER_EPOCH]  # the checkpoint's optimizer state, not a new optimizer's
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "completed" and manifest["epochs_done"] == 2, manifest
