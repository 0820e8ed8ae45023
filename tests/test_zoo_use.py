"""Starting a run from pretrained weights, and evaluating or predicting with a weights entry.

`--weights` takes a run directory, a run's model.keras, a bare weights file or a registered
weights entry: every weight when the classes match, all but the head when they do not.  The
entries here are made by hand in a zoo folder (tmp_path) and registered by a test plugin; files
are fetched from that folder into a cache under tmp_path.  Tiny shapes, one epoch.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import types
from pathlib import Path

import numpy as np
import pytest

import cnnreg
from cnnreg import testing
from cnnreg.testing import run_cli

DIGITS = "digits:size=16"  # lenet5 at 16x16x1: its smallest input, seconds per epoch
OTHER = "synthetic:shape=16x16x1,classes=3,size=64"  # other classes: the head is replaced
FAST = ["--batch-size", "64", "--quiet"]


def one_line(result, *parts: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    for part in parts:
        assert part in result.stderr, result.stderr


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A completed lenet5 run on digits: the starting point of the tests."""
    run_dir = tmp_path_factory.mktemp("zoo-use") / "lenet5-digits"
    result = run_cli("run", "lenet5", "--dataset", DIGITS, "--epochs", "1", *FAST, "--run-dir", str(run_dir))
    assert result.exit_code == 0, result.output
    return run_dir


def kernel(model, name: str = "c1") -> np.ndarray:
    from cnnreg.training.pretrained import leaves

    return np.asarray(next(layer for layer in leaves(model) if layer.name == name).kernel)


def source_model(run_dir: Path):
    import keras

    return keras.models.load_model(run_dir / "model.keras", compile=False, safe_mode=True)


def planned(weights: str, dataset: str = DIGITS, arch: str = "lenet5"):
    """The model `cnnreg run ARCH --weights WEIGHTS` would train, and its plan (nothing trained)."""
    from cnnreg.training.config import RunConfig
    from cnnreg.training.model import prepare
    from cnnreg.training.config import resolve

    return prepare(resolve(RunConfig(arch, dataset=dataset, weights=weights, batch_size=64)))


# --- a run, its model.keras, a bare weights file ---------------------------------------------


def test_fine_tune_from_a_run_directory_in_two_phases(source, tmp_path):
    """Issue 14's failing case: a lenet5 run as the starting point, head first, then everything."""
    run_dir = tmp_path / "tuned"
    result = run_cli("run", "lenet5", "--dataset", DIGITS, "--weights", str(source), "--freeze-base", "--epochs", "1",
                     "--fine-tune-epochs", "1", *FAST, "--run-dir", str(run_dir))
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.stderr and "nested container" not in result.output, result.stderr
    manifest = json.loads((run_dir / "run.json").read_text())
    weights = manifest["weights"]
    assert weights["source"] == "run" and weights["run_dir"] == str(source.resolve())
    assert weights["sha256"] == hashlib.sha256((source / "model.keras").read_bytes()).hexdigest()
    assert weights["loaded"]["head"] == "loaded" and weights["loaded"]["layers"] == weights["loaded"]["of_layers"] == 5
    assert manifest["config"]["weights"] == str(source.resolve())  # rerun finds it from any folder
    assert manifest["input_shape"] == [16, 16, 1] and "input shape of the weights" in manifest["input_shape_reason"]
    with open(run_dir / "history.csv") as handle:
        assert [line.split(",")[1] for line in handle.read().splitlines()[1:]] == ["head", "fine-tune"]


def test_every_weight_when_the_classes_match(source):
    mine = planned(str(source))
    theirs = source_model(source)
    for name in ("c1", "c3", "c5", "f6", "predictions"):
        np.testing.assert_array_equal(kernel(mine.model, name), kernel(theirs, name))
    assert "all 5 layers" in mine.notes[-1] and "the head included" in mine.notes[-1]
    from cnnreg.training.model import set_base_trainable

    set_base_trainable(mine.model, False)  # --freeze-base: phase 1 trains the head alone
    assert {w.path.split("/")[0] for w in mine.model.trainable_weights} == {"predictions"}


def test_all_but_the_head_from_model_keras_with_other_classes(source):
    plan = planned(str(source / "model.keras"), dataset=OTHER)
    theirs = source_model(source)
    np.testing.assert_array_equal(kernel(plan.model), kernel(theirs))
    np.testing.assert_array_equal(kernel(plan.model, "f6"), kernel(theirs, "f6"))
    assert kernel(plan.model, "predictions").shape == (84, 3)
    note = plan.notes[-1]
    assert "4 of 5 layers" in note and "the head (predictions) is re-initialised: 10 classes there, 3 here" in note
    assert plan.source.record["loaded"]["head"] == "re-initialised"


def test_a_bare_weights_file_with_the_same_and_with_other_classes(source, tmp_path):
    weights = tmp_path / "lenet5.weights.h5"
    source_model(source).save_weights(weights)
    same = planned(str(weights))
    np.testing.assert_array_equal(kernel(same.model, "predictions"), kernel(source_model(source), "predictions"))
    assert same.source.record["loaded"]["head"] == "loaded"
    other = planned(str(weights), dataset=OTHER)
    np.testing.assert_array_equal(kernel(other.model, "c3"), kernel(source_model(source), "c3"))
    assert "10 classes there, 3 here" in other.notes[-1]
    assert other.source.record["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_rerun_starts_from_the_same_file_and_says_when_it_changed(source, tmp_path):
    weights = tmp_path / "start.weights.h5"
    model = source_model(source)
    model.save_weights(weights)
    result = run_cli("run", "lenet5", "--dataset", DIGITS, "--weights", str(weights), "--epochs", "1", *FAST,
                     "--run-dir", str(tmp_path / "first"))
    assert result.exit_code == 0, result.output
    model.get_layer("c1").kernel.assign(np.zeros(model.get_layer("c1").kernel.shape, dtype="float32"))
    model.save_weights(weights)
    again = run_cli("rerun", str(tmp_path / "first"), "--run-dir", str(tmp_path / "again"), "--quiet")
    assert again.exit_code == 0, again.output
    assert f"--weights {weights} changed since the run this one replays" in again.stderr
    assert json.loads((tmp_path / "again" / "run.json").read_text())["weights"]["path"] == str(weights)


def test_a_model_keras_outside_its_run_still_loads_in_safe_mode(source, tmp_path):
    loose = tmp_path / "loose.keras"
    shutil.copy(source / "model.keras", loose)
    plan = planned(str(loose))
    assert plan.input_shape == (16, 16, 1)  # read from the file's config, as data
    np.testing.assert_array_equal(kernel(plan.model), kernel(source_model(source)))


@pytest.mark.parametrize("args, message", [
    (["mlp_bn", "--weights", "{run}"], "trained architecture 'lenet5', not 'mlp_bn'"),
    (["lenet5:batchnorm=true", "--weights", "{run}"], "does not match lenet5:batchnorm=true at 16x16x1: 5 layers with weights there, 9 here"),
    (["lenet5", "--weights", "{run}", "--input-shape", "20x20x1"], "layer c5 (Dense) has a 64x120 kernel here, 16x120 in the weights"),
    (["lenet5", "--weights", "{tmp}/nothing.h5"], "--weights file {tmp}/nothing.h5 does not exist"),
    (["lenet5", "--weights", "lenet5.nosuch"], "unknown weights 'lenet5.nosuch'"),
    (["lenet5", "--weights", "{tmp}"], "is not a cnnreg run directory"),
    (["lenet5", "--freeze-base"], "--freeze-base and --fine-tune-epochs need pretrained weights"),
])
def test_weights_that_do_not_fit_are_one_line(source, tmp_path, args, message):
    args = [a.format(run=source, tmp=tmp_path) for a in args]
    result = run_cli("run", *args, "--dataset", DIGITS, "--dry-run")
    one_line(result, message.format(tmp=tmp_path))


def test_resume_keeps_the_checkpoint_and_needs_no_source(source, tmp_path, monkeypatch):
    """The starting weights are where the run began; a resumed run goes on from its checkpoint,
    even when the run it started from is gone."""
    from runhelpers import interrupted_run

    start = Path(shutil.copytree(source, tmp_path / "start"))
    run_dir = tmp_path / "tuned"
    result = interrupted_run(run_dir, "lenet5", "--dataset", DIGITS, "--weights", str(start), "--epochs", "2", *FAST, after=1)
    assert result.exit_code == 130, result.output
    shutil.rmtree(start)
    from cnnreg.training import pretrained

    def never(*args, **kwargs):
        raise AssertionError("resume loaded the starting weights")

    monkeypatch.setattr(pretrained, "load_into", never)
    resumed = run_cli("resume", str(run_dir), "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((run_dir / "run.json").read_text())["epochs_done"] == 2


# --- weights entries ---------------------------------------------------------------------------


def _entry_plugin(*entries):
    module = types.ModuleType("zoo_use_entries")

    @cnnreg.hookimpl
    def register_weights(registry):
        for entry in entries:
            registry.add(entry.name, "cnnreg.zoo.cache:fetch_entry", summary="a test entry", **entry.to_metadata())

    module.register_weights = register_weights
    return module


def _file(folder: Path, path: Path, name: str):
    from cnnreg.kinds.weights import WeightsFile

    shutil.copy(path, folder / name)
    digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    return WeightsFile(url=name, hash=f"sha256:{digest}", filename=name, size=(folder / name).stat().st_size)


@pytest.fixture
def zoo(source, tmp_path, monkeypatch):
    """``lenet5.test``: the source run published by hand into a zoo folder, registered by a plugin."""
    from cnnreg.kinds.weights import WeightsEntry

    folder = tmp_path / "zoo"
    folder.mkdir()
    monkeypatch.setenv("CNNREG_CACHE", str(tmp_path / "cache"))
    manifest = json.loads((source / "run.json").read_text())
    entry = WeightsEntry(
        name="lenet5.test", architecture="lenet5", num_classes=10, input_shape=(16, 16, 1),
        files={"model": _file(folder, source / "model.keras", "lenet5.test.keras")},
        class_names=tuple(manifest["class_names"]), dataset=DIGITS, manifest=manifest, zoo=str(folder),
    )
    with testing.plugin(_entry_plugin(entry), name="zoo_use_entries"):
        yield entry


def test_fine_tune_from_an_entry(zoo, source, tmp_path):
    run_dir = tmp_path / "from-entry"
    result = run_cli("run", "lenet5", "--weights", "lenet5.test", "--dataset", OTHER, "--freeze-base", "--epochs", "1",
                     *FAST, "--run-dir", str(run_dir))
    assert result.exit_code == 0, result.output
    weights = json.loads((run_dir / "run.json").read_text())["weights"]
    assert weights["source"] == "entry" and weights["name"] == "lenet5.test" and weights["file"] == "model"
    assert weights["hash"] == zoo.files["model"].hash and weights["sha256"] == zoo.files["model"].hash.split(":")[1]
    assert weights["loaded"]["head"] == "re-initialised" and weights["loaded"]["layers"] == 4
    assert Path(weights["path"]).parent == tmp_path / "cache"  # fetched into the cache, verified
    plan = planned("lenet5.test")
    np.testing.assert_array_equal(kernel(plan.model, "predictions"), kernel(source_model(source), "predictions"))


def test_an_entry_for_another_architecture_is_one_line(zoo):
    one_line(run_cli("run", "mlp_bn", "--weights", "lenet5.test", "--dry-run"),
             "--weights lenet5.test is for architecture 'lenet5', not 'mlp_bn'")


def test_evaluate_and_predict_straight_from_an_entry(zoo, source, tmp_path):
    from PIL import Image

    evaluation = run_cli("evaluate", "lenet5.test", "--json")  # the entry's own dataset
    assert evaluation.exit_code == 0, evaluation.output
    data = json.loads(evaluation.stdout)["evaluation"]
    expected = json.loads(run_cli("evaluate", str(source), "--json").stdout)["evaluation"]
    assert data["examples"] == expected["examples"] and data["accuracy"] == pytest.approx(expected["accuracy"])
    assert data["confusion_png"] is None  # an entry has no run directory to write into
    image = tmp_path / "digit.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(image)
    from_entry = run_cli("predict", "lenet5.test", str(image), "--top", "3", "--json")
    from_run = run_cli("predict", str(source), str(image), "--top", "3", "--json")
    assert from_entry.exit_code == 0, from_entry.output
    assert json.loads(from_entry.stdout)["predictions"] == json.loads(from_run.stdout)["predictions"]
    one_line(run_cli("evaluate", "lenet5.test", "--dataset", OTHER), "the model predicts 10 classes, dataset", "has 3")
    one_line(run_cli("predict", "lenet5.tset", str(image)), "'lenet5.tset' is neither a run directory nor a weights name",
             "did you mean 'lenet5.test'")


def test_keras_application_entry_top_for_predict_notop_for_fine_tuning(tmp_path, monkeypatch):
    """A keras.applications-style entry made offline: ``top`` and ``notop`` files of a small
    keras-mobilenetv3small at 32x32, with class names; predict uses the classifier, a run with
    other classes puts the base under its own head."""
    import keras
    from PIL import Image

    from cnnreg.builtin.architectures import applications
    from cnnreg.kinds.weights import WeightsEntry

    folder = tmp_path / "zoo"
    folder.mkdir()
    monkeypatch.setenv("CNNREG_CACHE", str(tmp_path / "cache"))
    whole = applications.keras_mobilenetv3small(input_shape=(32, 32, 3), num_classes=4)
    whole.save_weights(tmp_path / "top.weights.h5")
    base = applications.keras_mobilenetv3small(input_shape=(32, 32, 3), include_top=False)
    base.save_weights(tmp_path / "notop.weights.h5")
    image = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 30, 3), 128, dtype=np.uint8)).save(image)
    expected = whole.predict(keras.applications.mobilenet_v3.preprocess_input(np.full((1, 32, 32, 3), 128.0)), verbose=0)[0]
    entry = WeightsEntry(
        name="keras-mobilenetv3small.tiny", architecture="keras-mobilenetv3small", num_classes=4, input_shape=(32, 32, 3),
        files={"top": _file(folder, tmp_path / "top.weights.h5", "tiny_top.weights.h5"),
               "notop": _file(folder, tmp_path / "notop.weights.h5", "tiny_notop.weights.h5")},
        class_names=("cat", "dog", "fox", "owl"), dataset="imagenet", zoo=str(folder),
    )
    with testing.plugin(_entry_plugin(entry), name="zoo_use_keras"):
        predicted = run_cli("predict", "keras-mobilenetv3small.tiny", str(image), "--top", "3", "--json")
        assert predicted.exit_code == 0, predicted.output
        top = json.loads(predicted.stdout)["predictions"][0]["top"]
        assert [t["class"] for t in top] == [entry.class_names[i] for i in np.argsort(-expected)[:3]]
        assert top[0]["probability"] == pytest.approx(float(expected.max()), rel=1e-4)
        dry = run_cli("run", "keras-mobilenetv3small", "--weights", "keras-mobilenetv3small.tiny", "--dataset",
                      "synthetic:shape=32x32x3,classes=3,size=32", "--freeze-base", "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert "pretrained base from keras-mobilenetv3small.tiny" in " ".join(dry.stdout.replace("│", " ").split())
    keras.backend.clear_session()


def test_publish_serve_fine_tune_and_predict_over_http(source, tmp_path, monkeypatch):
    """The whole way with real parts: a run published into a zoo folder, served on 127.0.0.1,
    found through CNNREG_ZOO, fine-tuned from and predicted with (its file fetched once)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from PIL import Image

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CNNREG_CACHE", str(tmp_path / "cache"))
    published = run_cli("publish", str(source), str(tmp_path / "zoo"), "--name", "lenet5.served")
    assert published.exit_code == 0, published.output
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path / "zoo")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("CNNREG_ZOO", f"http://127.0.0.1:{server.server_address[1]}/zoo.json")
        tuned = run_cli("run", "lenet5", "--weights", "lenet5.served", "--dataset", OTHER, "--freeze-base", "--epochs", "1",
                        *FAST, "--run-dir", str(tmp_path / "tuned"))
        assert tuned.exit_code == 0, tuned.output
        weights = json.loads((tmp_path / "tuned" / "run.json").read_text())["weights"]
        assert weights["name"] == "lenet5.served" and weights["loaded"]["layers"] == 4
        image = tmp_path / "digit.png"
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(image)
        predicted = run_cli("predict", "lenet5.served", str(image), "--top", "3", "--json")
        assert predicted.exit_code == 0, predicted.output
        expected = run_cli("predict", str(source), str(image), "--top", "3", "--json")
        assert json.loads(predicted.stdout)["predictions"] == json.loads(expected.stdout)["predictions"]
    finally:
        server.shutdown()
        server.server_close()
