"""Backends and distribution: --backend, --distribute, multi-process argument handling.

Each run is a subprocess: a process picks its Keras backend once, before keras is imported.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys

import pytest

from cnnreg.testing import run_cli

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
FAST = ["mlp_bn", "--dataset", "digits:size=8", "--epochs", "1", "--batch-size", "64", "--quiet"]


def cnnreg(*args, env, timeout=300):
    return subprocess.run([sys.executable, "-m", "cnnreg", *args], capture_output=True, text=True, env=env, timeout=timeout)


@needs_jax
def test_run_and_evaluate_on_jax_without_tensorflow(tmp_path, subprocess_env):
    """`run --backend jax` then `evaluate` in one new process (one start-up for both checks)."""
    script = (
        "import sys\n"
        "from cnnreg.cli import main\n"
        "for args in (['run', 'lenet5', '--backend', 'jax', '--epochs', '1', '--dataset', 'digits:size=8',\n"
        "              '--batch-size', '64', '--quiet', '--run-dir', sys.argv[1]], ['evaluate', sys.argv[1]]):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        "print('tensorflow imported' if 'tensorflow' in sys.modules else 'no tensorflow')\n"
    )
    env = {k: v for k, v in subprocess_env.items() if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("no tensorflow"), done.stdout[-500:]
    assert "oneDNN" not in done.stderr and "I0000" not in done.stderr, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["environment"]["backend"] == "jax" and manifest["status"] == "completed"
    assert manifest["config"]["backend"] == "jax"


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_run_and_evaluate_on_torch(tmp_path, subprocess_env):
    proc = cnnreg("run", *FAST, "--backend", "torch", "--run-dir", str(tmp_path / "torch"), env=subprocess_env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "torch" / "run.json").read_text())
    assert manifest["environment"]["backend"] == "torch" and manifest["status"] == "completed"
    assert manifest["environment"]["versions"]["torch"].startswith("2."), manifest["environment"]
    proc = cnnreg("evaluate", str(tmp_path / "torch"), env=subprocess_env)  # on the run's own backend
    assert proc.returncode == 0 and "accuracy" in proc.stdout, proc.stderr[-2000:]


@needs_jax
def test_data_parallel_on_two_jax_cpu_devices(tmp_path, subprocess_env):
    env = dict(subprocess_env, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    proc = cnnreg("run", *FAST, "--backend", "jax", "--distribute", "data-parallel", "--run-dir", str(tmp_path / "dp"), env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "dp" / "run.json").read_text())
    assert manifest["distribution"]["mode"] == "data-parallel" and len(manifest["distribution"]["devices"]) == 2
    # 1,347 / 271 / 179 examples trimmed to multiples of 2 so that every batch splits evenly
    assert manifest["data"] == {"train": 1346, "validation": 270, "test": 178}


def test_mirrored_on_two_tensorflow_cpu_devices(tmp_path, subprocess_env):
    env = dict(subprocess_env, CNNREG_LOGICAL_CPUS="2")
    proc = cnnreg("run", *FAST, "--distribute", "mirrored", "--run-dir", str(tmp_path / "mirrored"), env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "mirrored" / "run.json").read_text())
    assert manifest["distribution"]["mode"] == "mirrored" and len(manifest["distribution"]["devices"]) == 2


def test_mirrored_with_an_image_folder(tmp_path, subprocess_env):
    from test_datasets import make_folder

    root = make_folder(tmp_path / "shapes", {"a": 13, "b": 12, "c": 12}, broken=True)
    env = dict(subprocess_env, CNNREG_LOGICAL_CPUS="2")
    proc = cnnreg("run", "lenet5", "--dataset", f"folder:{root}", "--input-shape", "16x16x3", "--epochs", "1",
                  "--batch-size", "8", "--reg", "flip", "--quiet", "--run-dir", str(tmp_path / "run"), env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["distribution"]["mode"] == "mirrored" and manifest["status"] == "completed"
    assert manifest["data"] == {"train": 28, "validation": 6, "test": 2} and manifest["test"]["examples"] == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "jaxx"], "unknown backend 'jaxx'; did you mean 'jax'?"),
        (["--backend", "torch"], "backend 'torch' is not installed: pip install torch"),
        (["--distribute", "mirrored", "--backend", "jax"], "--distribute mirrored needs the tensorflow backend"),
        (["--distribute", "sideways"], "unknown --distribute 'sideways'"),
        (["--backend", "jax", "--num-processes", "2"], "--num-processes 2 or more needs --coordinator HOST:PORT"),
        (["--backend", "jax", "--num-processes", "2", "--coordinator", "localhost"], "--coordinator must be HOST:PORT"),
        (["--backend", "jax", "--num-processes", "2", "--coordinator", "localhost:1234", "--process-id", "2"], "--process-id must be in 0..1"),
    ],
)
def test_bad_backend_and_distribution_options(args, message):
    if "torch" in args and importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here")
    if "jax" in args and importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    result = run_cli("run", "mlp_bn", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch_two(command: list[str], env: dict, cwd) -> list[subprocess.Popen]:
    port = _free_port()
    return [subprocess.Popen([sys.executable, "-m", "cnnreg", *command, "--coordinator", f"127.0.0.1:{port}",
                              "--num-processes", "2", "--process-id", str(i)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
            for i in (0, 1)]


def _wait_two(procs: list[subprocess.Popen]) -> list[tuple[str, str]]:
    """Both processes' (stdout, stderr), once both exited 0."""
    try:
        outputs = [proc.communicate(timeout=300) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert all(proc.returncode == 0 for proc in procs), outputs[0][1][-2000:] + outputs[1][1][-2000:]
    return outputs


@needs_jax
def test_two_processes_train_exactly_like_one_process_on_two_devices(tmp_path, subprocess_env):
    """Each process feeds its part of every global batch, so two processes with one device each
    reproduce one process with two devices (an image folder: the cached tf.data path)."""
    from test_datasets import make_folder

    root = make_folder(tmp_path / "shapes", {"a": 13, "b": 12, "c": 12}, broken=True)
    args = ["lenet5", "--backend", "jax", "--dataset", f"folder:{root}", "--input-shape", "16x16x3", "--epochs", "2",
            "--batch-size", "8", "--quiet"]
    env = dict(subprocess_env, JAX_PLATFORMS="cpu", TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    one = cnnreg("run", *args, "--run-dir", str(tmp_path / "one"), env=dict(env, XLA_FLAGS="--xla_force_host_platform_device_count=2"))
    assert one.returncode == 0, one.stderr[-2000:]
    outputs = _wait_two(_launch_two(["run", *args, "--run-dir", str(tmp_path / "two")], env, tmp_path))
    manifests = [json.loads((tmp_path / name / "run.json").read_text()) for name in ("one", "two")]
    assert manifests[1]["status"] == "completed" and manifests[1]["distribution"]["processes"] == 2
    assert manifests[1]["test"]["examples"] == 2
    assert "process 1 of 2: completed after 2 epochs" in outputs[1][0]
    # only process 0 wrote a run directory; process 1's scratch copy is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "shapes", "tmp", "two"]
    assert not list((tmp_path / "tmp").glob("cnnreg-process*"))
    # 37 files, 3 broken: 34 images in 28 / 6 / 3 splits, trimmed to multiples of 2
    assert manifests[0]["data"] == manifests[1]["data"] == {"train": 28, "validation": 6, "test": 2}
    histories = [list(csv.DictReader((tmp_path / name / "history.csv").open())) for name in ("one", "two")]
    for a, b in zip(*histories, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert float(a[key]) == pytest.approx(float(b[key]), abs=1e-5), (key, a, b)


@needs_jax
def test_streamed_folder_with_broken_files_on_two_jax_devices(tmp_path, subprocess_env):
    """Not cached: batches short of broken files are cut to a multiple of the devices."""
    from test_datasets import make_folder

    root = make_folder(tmp_path / "shapes", {"a": 13, "b": 12, "c": 12}, broken=True)
    script = ("import sys; import cnnreg.datasets.pipeline as p; p.CACHE_FRACTION = 0.0; "
              "from cnnreg.cli import main; sys.argv[0] = 'cnnreg'; main()")
    env = dict(subprocess_env, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    proc = subprocess.run(
        [sys.executable, "-c", script, "run", "lenet5", "--backend", "jax", "--dataset", f"folder:{root}",
         "--input-shape", "16x16x3", "--epochs", "2", "--batch-size", "8", "--quiet", "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["status"] == "completed" and manifest["distribution"]["mode"] == "data-parallel"
    assert manifest["epochs_done"] == 2 and manifest["test"]["examples"] % 2 == 0
    assert "ran out of data" not in proc.stderr  # Keras' warning at the end of every streamed split


@needs_jax
def test_two_process_run_killed_then_resumed_by_two_processes(tmp_path, subprocess_env):
    import os
    import signal
    import time

    # killed once 2 epochs are on record, 4 before the end: far more than the 0.05 s poll below
    # can miss, and few for the two processes to train again in lockstep after the resume
    epochs = 6
    env = dict(subprocess_env, JAX_PLATFORMS="cpu")
    run_dir = tmp_path / "run"
    procs = _launch_two(["run", "mlp_bn", "--dataset", "digits:size=8", "--epochs", str(epochs), "--batch-size", "64",
                         "--backend", "jax", "--quiet", "--run-dir", str(run_dir)], env, tmp_path)
    state = run_dir / "checkpoint" / "state.json"
    deadline = time.time() + 180
    try:
        while time.time() < deadline:
            if state.exists() and json.loads(state.read_text())["epochs_done"] >= 2:
                break
            assert all(proc.poll() is None for proc in procs), procs[0].stderr.read()[-2000:]
            time.sleep(0.05)
    finally:
        for proc in procs:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
    done = json.loads(state.read_text())["epochs_done"]
    assert 2 <= done < epochs and json.loads((run_dir / "run.json").read_text())["status"] == "running"
    outputs = _wait_two(_launch_two(["resume", str(run_dir), "--quiet"], env, tmp_path))
    rows = list(csv.DictReader((run_dir / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "completed" and manifest["epochs_done"] == epochs
    assert manifest["distribution"]["processes"] == 2
    assert f"process 1 of 2: completed after {epochs} epochs" in outputs[1][0]
    assert not list(run_dir.rglob("*.tmp*"))


def test_num_processes_needs_data_parallel():
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    result = run_cli("run", "mlp_bn", "--backend", "jax", "--distribute", "none", "--num-processes", "2",
                     "--coordinator", "localhost:1234", "--process-id", "0")
    assert result.exit_code == 2 and "use --distribute auto or data-parallel, not none" in result.stderr


@needs_jax
def test_unreachable_coordinator_fails_in_bounded_time(subprocess_env):
    import time

    start = time.time()
    proc = cnnreg("run", *FAST, "--backend", "jax", "--num-processes", "2", "--coordinator", "127.0.0.1:1",
                  "--process-id", "1", "--coordinator-timeout", "1", env=subprocess_env, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "cannot join the JAX coordinator at 127.0.0.1:1 within 1 s" in proc.stderr
    assert time.time() - start < 60


def test_distribute_names_each_backends_engine():
    from cnnreg.errors import CnnregError
    from cnnreg.training.distribute import check_args

    with pytest.raises(CnnregError, match=r"mirrored needs the tensorflow backend \(on jax use data-parallel\)"):
        check_args("mirrored", "jax")
    with pytest.raises(CnnregError, match=r"data-parallel needs the jax backend \(on tensorflow use mirrored\)"):
        check_args("data-parallel", "tensorflow")
    with pytest.raises(CnnregError, match=r"Keras' torch backend trains on one device: use none"):
        check_args("data-parallel", "torch")


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torch_warns_when_gpus_go_unused(monkeypatch):
    import torch

    from cnnreg.training.distribute import _torch_note

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert _torch_note().startswith("4 GPUs, but Keras' torch backend trains on one; --backend jax")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert _torch_note() == ""


def test_each_process_feeds_its_part_of_every_global_batch():
    """Array splits with two processes: the parts of a batch put together are the one-process
    batch, and the validation shares cover the split once."""
    import numpy as np

    from cnnreg.training.distribute import Distribution
    from cnnreg.training.batches import held_out, make_batches
    from test_datasets import plan_for

    plan = plan_for("digits:size=8", batch_size=10)
    x, y = plan.arrays["train"]
    plan.arrays["train"] = (x[:44], y[:44])  # 4 full batches and one of 4
    whole = make_batches(plan)
    parts, shares = [], []
    for rank in (0, 1):
        plan.distribution = Distribution("data-parallel", ["cpu:0", "cpu:1"], processes=2, process_index=rank)
        parts.append(make_batches(plan))
        shares.append(held_out(plan, "validation", shard=True))
    assert len(whole) == len(parts[0]) == len(parts[1]) == 5
    for index in range(5):
        images, labels = whole[index]
        (a, la), (b, lb) = parts[0][index], parts[1][index]
        assert len(a) == len(b) == len(images) // 2
        order = np.lexsort(images.reshape(len(images), -1).T)
        joined = np.concatenate([a, b])
        assert np.array_equal(joined[np.lexsort(joined.reshape(len(joined), -1).T)], images[order])
        assert np.array_equal(np.concatenate([la, lb]).sum(axis=0), labels.sum(axis=0))
    xv, _ = held_out(plan, "validation")  # unsharded: the whole split
    assert np.array_equal(np.concatenate([shares[0][0], shares[1][0]]), xv[: len(shares[0][0]) * 2])


AUGMENT_ON_BACKEND = """
import numpy as np, keras, cnnreg
from cnnreg.plugins import get_host
x = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
names = []
for component in get_host().registry.components("regulariser"):
    layers = cnnreg.build("regulariser", component.name).augmentation(seed=1)
    if layers:
        out = keras.ops.convert_to_numpy(keras.Sequential(layers)(x, training=True))
        assert out.shape == x.shape, (component.name, out.shape)
        names.append(component.name)
print(keras.backend.backend(), len(names), " ".join(names))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_augmentation_runs_on_the_other_backends(backend, subprocess_env):
    """The suites run on TensorFlow; a layer that only TensorFlow can trace (crop once) fails here."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    proc = subprocess.run([sys.executable, "-c", AUGMENT_ON_BACKEND], capture_output=True, text=True,
                          env=dict(subprocess_env, KERAS_BACKEND=backend), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith(f"{backend} 7 ") and " crop " in proc.stdout, proc.stdout


LEAN = """
import sys
from cnnreg.backends import OPTIONAL_AT_IMPORT, lean_imports, load_keras, select
select("tensorflow")
lean_imports()
load_keras()
import keras
loaded = [name for name in OPTIONAL_AT_IMPORT if name in sys.modules]
assert not loaded, loaded
assert keras.ops.convert_to_numpy(keras.ops.ones((2,))).sum() == 2
import matplotlib.figure, sklearn  # still importable afterwards
print("lean ok")
"""


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None or importlib.util.find_spec("matplotlib") is None,
                    reason="needs scikit-learn and matplotlib installed, to show they are not loaded")
def test_the_cli_loads_keras_without_what_only_keras_tries(subprocess_env):
    """What the CLI's commands never use is not imported with Keras (seconds of its start-up:
    docs/performance.md, "Attacks"), and can still be imported afterwards."""
    proc = subprocess.run([sys.executable, "-c", LEAN], capture_output=True, text=True,
                          env=dict(subprocess_env, KERAS_BACKEND="tensorflow"), timeout=300)
    assert proc.returncode == 0 and "lean ok" in proc.stdout, proc.stderr[-3000:]
