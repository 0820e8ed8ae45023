"""Every file cnnreg reads because a user, a manifest or a zoo names it is a regular file of a
bounded size and nesting: a FIFO, a folder or a device in its place, or a file too large or nested
too deeply, is one line, at once (issue 25 item 6).  A FIFO would block a plain read forever, so
each case runs in a subprocess with a timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cnnreg import files
from cnnreg.errors import CnnregError

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")


def cnnreg(*args: str, env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnreg", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=60)


def test_read_bounded_takes_regular_files_only(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "small.json").write_text('{"a": [1, 2]}')
    (tmp_path / "deep.json").write_text("[" * 100 + "]" * 100)
    (tmp_path / "deeper.json").write_text("[" * 100_000 + "]" * 100_000)
    cases = {"fifo": r"is a FIFO \(named pipe\), not a regular file", ".": "is a folder",
             "nothere": "does not exist", "/dev/zero": "is a character device"}
    for name, words in cases.items():
        with pytest.raises(files.NotRegular, match=words):
            files.read_bounded(tmp_path / name, "it", limit=1 << 20)
    assert files.read_json(tmp_path / "small.json", "it") == {"a": [1, 2]}
    with pytest.raises(files.NotRegular, match="13 bytes, more than the 12"):
        files.read_json(tmp_path / "small.json", "it", limit=12)
    with pytest.raises(CnnregError, match="nests more than 64 levels"):
        files.read_json(tmp_path / "deep.json", "it")
    with pytest.raises(CnnregError, match="nested too deeply"):
        files.read_json(tmp_path / "deeper.json", "it")
    with pytest.raises(files.NotRegular, match="FIFO"):
        files.sha256_of(tmp_path / "fifo")


def test_a_fifo_or_device_named_by_a_user_a_run_or_a_zoo_is_one_line(tmp_path, subprocess_env):
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / "run.json")  # a hostile run directory
    os.mkfifo(tmp_path / "image.png")
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    os.mkfifo(zoo / "zoo.json")
    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / "run.json").write_text(json.dumps({"config": {}, "x": json.loads("[" * 80 + "]" * 80)}))

    shown = cnnreg("evaluate", str(run), env=subprocess_env, cwd=tmp_path)
    assert shown.returncode == 2 and shown.stderr.strip() == f"error: run.json in {run} is a FIFO (named pipe), not a regular file; refused"
    nested = cnnreg("evaluate", str(deep), env=subprocess_env, cwd=tmp_path)
    assert nested.returncode == 2 and "nests more than 64 levels deep; refused" in nested.stderr
    image = cnnreg("predict", "lenet5.digits", str(tmp_path / "image.png"), env=subprocess_env, cwd=tmp_path)
    assert image.returncode == 2 and len(image.stderr.splitlines()) == 1  # no such entry: no image is read
    listed = cnnreg("runs", "--root", str(tmp_path), env=subprocess_env, cwd=tmp_path)
    assert listed.returncode == 0 and listed.stderr == ""  # a run that cannot be read is not listed
    env = dict(subprocess_env, CNNREG_ZOO=str(zoo))
    weights = cnnreg("list", "weights", "--json", env=env, cwd=tmp_path)
    assert weights.returncode == 0, weights.stderr
    assert f"zoo {zoo}: zoo.json is a FIFO (named pipe), not a regular file; refused" in weights.stderr


def test_an_image_that_is_not_a_regular_file_is_refused(tmp_path):
    from cnnreg.images import ImageError, read_image

    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(ImageError, match="not a regular file"):
        read_image(tmp_path / "pipe.png", 3)
    with pytest.raises(ImageError, match="Is a directory"):
        read_image(tmp_path, 3)


def test_a_dataset_that_cannot_fit_at_the_asked_shape_is_refused_before_it_is_allocated(tmp_path):
    from cnnreg.testing import run_cli

    run_dir = tmp_path / "run"
    result = run_cli("run", "lenet5", "--input-shape", "20000x20000x1", "--epochs", "1", "--run-dir", str(run_dir))
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: dataset 'digits' at 20000x20000x1 would take 2.88 TB in memory "
                                            "(1,797 images as float32), more than ")
    assert result.stderr.strip().endswith("choose a smaller --input-shape") and not run_dir.exists()


@pytest.mark.parametrize("command", [["summary", "vgg16", "--input-shape", "2048x2048x3"],
                                     ["estimate", "vgg16", "--input-shape", "2048x2048x3", "--device-memory", "16GiB"],
                                     ["compare", "resnet18", "vgg16", "--input-shape", "2048x2048x3"]])
def test_a_model_too_big_to_build_is_refused_before_its_weights_are_allocated(command):
    """VGG-16 at 2048x2048x3 is 8.6 billion parameters (34 GB of float32 weights): counted from a
    build in which no weight is allocated, and refused in one line."""
    from cnnreg.testing import run_cli

    result = run_cli(*command)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith("error: vgg16 at 2048x2048x3 has 8,625,531,688 parameters: 34.50 GB of weights, "
                                    "more than "), result.stderr


def test_the_size_check_builds_nothing_and_leaves_layer_names_as_they_were(monkeypatch):
    """check_buildable counts the weights of a build in which none is allocated, refuses more than
    half of the machine's memory (here, made 200 bytes) and leaves Keras' automatic layer names
    and the random generators as if it had not built anything."""
    import keras

    from cnnreg.errors import CnnregError
    from cnnreg.training import model as built

    def mlp():
        inputs = keras.Input((8,))
        return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(4)(inputs)))

    mlp()  # the counters exist
    before = dict(built._name_counters())
    assert built.check_buildable(mlp, "an MLP") == (8 * 4 + 4 + 4 * 3 + 3) * 4
    assert dict(built._name_counters()) == before
    # none of its variables waits to be initialised when the next StatelessScope ends
    assert not built._deferred_variables()
    with keras.StatelessScope():
        pass
    # and the model built next starts from the weights it would have had without the check
    keras.utils.set_random_seed(1)
    alone = mlp().get_weights()
    keras.utils.set_random_seed(1)
    built.check_buildable(mlp, "an MLP")
    for a, b in zip(alone, mlp().get_weights()):
        assert (a == b).all()
    monkeypatch.setattr("cnnreg.datasets.pipeline.memory_bytes", lambda: 200)
    with pytest.raises(CnnregError, match=r"^an MLP has 51 parameters: 204 B of weights, more than 100 B"):
        built.check_buildable(mlp, "an MLP")


def test_a_run_whose_model_cannot_fit_is_refused_before_it_is_built(tmp_path, monkeypatch):
    """On a machine made 20 MB: digits at 32x32 fits (7.4 MB), ResNet-34's 85 MB of weights do not."""
    from cnnreg.testing import run_cli

    monkeypatch.setattr("cnnreg.datasets.pipeline.memory_bytes", lambda: 20 * 10**6)
    result = run_cli("run", "resnet34", "--epochs", "1", "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith("error: resnet34 at 32x32x1 has 21,3"), result.stderr
