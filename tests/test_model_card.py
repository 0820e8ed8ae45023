"""The model card and the published model outside cnnreg: the card's front matter parsed with a
real YAML parser and held to the Hugging Face model card keys, its plain-Keras snippet run in a
Python where `import cnnreg` fails, its answers compared with `cnnreg predict`, and
``--with-preprocess``'s stock layers checked against cnnreg's own resizing and scaling.  Real
parts: a one-epoch lenet5 on 16x16 digits, published into tmp_path."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cnnreg.testing import run_cli

DIGITS = "digits:size=16"
#: Runs a script with every cnnreg module refused (a meta_path finder ahead of the installed one),
#: then checks that none was imported.
BLOCKED = """
import runpy, sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name == "cnnreg" or name.startswith("cnnreg."):
            raise ImportError(name + " is blocked")
        return None

sys.meta_path.insert(0, Blocked())
try:
    import cnnreg
except ImportError:
    pass
else:
    raise SystemExit("cnnreg was importable")
runpy.run_path(sys.argv[1], run_name="__main__")
assert not [m for m in sys.modules if m.split(".")[0] == "cnnreg"]
"""


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """A lenet5 run with training-only regularisers, published twice: plain with --license MIT,
    and with --with-preprocess under another name.  (run, zoo, publish result, its stderr)."""
    root = tmp_path_factory.mktemp("card")
    run = root / "run"
    result = run_cli("run", "lenet5", "--dataset", DIGITS, "--epochs", "1", "--batch-size", "64", "--quiet",
                     "--reg", "dropout=0.2", "--reg", "flip", "--reg", "adversarial:ratio=0.25", "--run-dir", str(run))
    assert result.exit_code == 0, result.output
    zoo = root / "zoo"
    plain = run_cli("publish", str(run), str(zoo), "--license", "MIT")
    assert plain.exit_code == 0, plain.output
    raw = run_cli("publish", str(run), str(zoo), "--name", "lenet5.raw", "--with-preprocess")
    assert raw.exit_code == 0, raw.output
    return run, zoo, raw


def front_matter(card: Path) -> dict:
    yaml = pytest.importorskip("yaml")
    text = card.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def nulls(value, where="") -> list[str]:
    if value is None:
        return [where]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in nulls(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in nulls(v, f"{where}[{i}]")]
    return []


def snippet(card: Path) -> str:
    (code,) = re.findall(r"^```python\n(.*?)^```$", card.read_text(), flags=re.S | re.M)
    return code


def image(path: Path, size=(23, 17)) -> Path:
    from PIL import Image

    Image.fromarray(np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8)).save(path)
    return path


def run_blocked(folder: Path, code: str, env: dict, picture: Path | None = None) -> str:
    """The last line the card's ``code`` prints, run in ``folder`` where cnnreg cannot be imported."""
    (folder / "snippet.py").write_text(code)
    (folder / "blocked.py").write_text(BLOCKED)
    env = {k: v for k, v in env.items() if k != "PYTHONPATH"}  # the worktree stays out of sys.path too
    proc = subprocess.run([sys.executable, "blocked.py", "snippet.py"], cwd=folder, capture_output=True, text=True,
                          env=env, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def predicted(run: Path, picture: Path) -> tuple[str, float]:
    result = run_cli("predict", str(run), str(picture), "--top", "1", "--json")
    assert result.exit_code == 0, result.output
    (top,) = json.loads(result.stdout)["predictions"][0]["top"]
    return top["class"], top["probability"]


# --- the card -------------------------------------------------------------------------------------

def test_front_matter_follows_the_hugging_face_model_card(zoo):
    run, folder, _ = zoo
    entry = json.loads((folder / "zoo.json").read_text())["entries"][0]
    front = front_matter(folder / "lenet5.digits" / "README.md")
    assert not nulls(front), nulls(front)
    assert front["license"] == "mit" and front["library_name"] == "keras"
    assert front["pipeline_tag"] == "image-classification" and front["datasets"] == ["digits"]
    assert {"cnnreg", "lenet5", "digits", "dropout", "flip", "adversarial", "adversarial-training"} <= set(front["tags"])
    assert front["metrics"] == ["accuracy"]
    (model,) = front["model-index"]
    assert model["name"] == "lenet5.digits"
    test, validation = model["results"]
    assert test["task"] == {"type": "image-classification", "name": "Image Classification"}
    assert test["dataset"] == {"type": "digits", "name": DIGITS, "split": "test"}
    assert [m["type"] for m in test["metrics"]] == ["accuracy", "top_5_accuracy"]
    assert [m["value"] for m in test["metrics"]] == [entry["metrics"][0]["top1"], entry["metrics"][0]["top5"]]
    assert validation["dataset"]["split"] == "validation" and validation["metrics"][0]["value"] == entry["metrics"][1]["top1"]
    own = front["cnnreg"]
    assert own["sha256"] == entry["files"]["model"]["hash"].split(":")[1] and own["input_shape"] == [16, 16, 1]
    assert own["license"] == "MIT" and own["resize"] == "stretch" and own["preprocess"].endswith("scale_0_1")


def test_the_body_gives_the_training_settings_and_how_inputs_are_prepared(zoo):
    _, folder, _ = zoo
    card = (folder / "lenet5.digits" / "README.md").read_text()
    for row in ("| epochs | 1 |", "| batch size | `64` |", "| seed | `0` |", "| optimizer | `adam:learning_rate=0.001` |",
                "`dropout:rate=0.2`", "`adversarial:ratio=0.25`", "| adversarial training | yes"):
        assert row in card, row
    assert "resized bilinearly to 16×16, stretched to it" in card and "`x = x / 255.0`" in card
    assert "## Use with plain Keras" in card and 'keras.saving.load_model("lenet5.digits.keras", safe_mode=True)' in card


@pytest.mark.parametrize("given, keys", [
    ("MIT", {"license": "mit"}), ("Apache-2.0", {"license": "apache-2.0"}), ("CC-BY-4.0", {"license": "cc-by-4.0"}),
    ("GPL-3.0-only", {"license": "gpl-3.0"}), ("My Lab License 1.0", {"license": "other", "license_name": "my-lab-license-1.0"}),
    (None, {"license": "unknown"}),
])
def test_license_ids_are_the_hubs(given, keys):
    from cnnreg.training.publish import hf_license

    assert hf_license(given) == keys


def test_without_a_license_a_folder_is_warned_about_and_the_hub_refused(zoo, tmp_path):
    run, _, raw = zoo
    warnings = [line for line in raw.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "no --license" in warnings[0] and "license: unknown" in warnings[0], raw.stderr
    assert front_matter(zoo[1] / "lenet5.raw" / "README.md")["license"] == "unknown"
    hub = run_cli("publish", str(run), "hf://someone/zoo")
    assert hub.exit_code == 2 and hub.stderr.count("\n") == 1 and "needs --license" in hub.stderr, hub.output


# --- outside cnnreg -------------------------------------------------------------------------------

def test_the_published_model_and_the_cards_snippet_run_with_plain_keras(zoo, tmp_path, subprocess_env):
    """Done when: keras.saving.load_model(path, safe_mode=True) in a Python where cnnreg cannot
    be imported, and its answer is cnnreg's."""
    run, folder, _ = zoo
    entry = folder / "lenet5.digits"
    assert (entry / "lenet5.digits.keras").read_bytes() == (run / "model.keras").read_bytes()
    work = tmp_path / "outside"
    work.mkdir()
    (work / "lenet5.digits.keras").write_bytes((entry / "lenet5.digits.keras").read_bytes())
    line = run_blocked(work, snippet(entry / "README.md"), subprocess_env, image(work / "image.png"))
    name, probability = line.rsplit(" ", 1)
    expected = predicted(run, work / "image.png")
    assert name == expected[0] and float(probability) == pytest.approx(expected[1], abs=1e-5)


def test_with_preprocess_raw_pixels_of_any_size_go_in(zoo, tmp_path, subprocess_env):
    run, folder, _ = zoo
    entry = folder / "lenet5.raw"
    record = json.loads((folder / "zoo.json").read_text())["entries"][1]
    assert record["files"]["raw"]["url"] == "lenet5.raw/lenet5.raw.raw.keras"
    card = (entry / "README.md").read_text()
    assert "- `Resizing(16, 16, bilinear)`" in card and "- `Rescaling(scale=0.00392157, offset=0)`" in card
    assert 'keras.saving.load_model("lenet5.raw.raw.keras", safe_mode=True)' in snippet(entry / "README.md")
    work = tmp_path / "outside"
    work.mkdir()
    (work / "lenet5.raw.raw.keras").write_bytes((entry / "lenet5.raw.raw.keras").read_bytes())
    for size in ((23, 17), (16, 16)):
        line = run_blocked(work, snippet(entry / "README.md"), subprocess_env, image(work / "image.png", size))
        name, probability = line.rsplit(" ", 1)
        expected = predicted(run, work / "image.png")
        assert name == expected[0] and float(probability) == pytest.approx(expected[1], abs=1e-5), size


# --- the stock layers ----------------------------------------------------------------------------

def test_preprocessing_as_stock_layers_matches_cnnreg_and_keras_applications():
    import keras

    from cnnreg.errors import CnnregError
    from cnnreg.kinds.architectures import identity, scale_0_1, scale_minus1_1
    from cnnreg.kinds.datasets import fit_images
    from cnnreg.training.publish import raw_model, stock_affine

    assert stock_affine(scale_0_1, 1) == ([[1 / 255]], [0.0])
    matrix, offset = stock_affine(scale_minus1_1, 3)
    np.testing.assert_allclose(matrix, np.eye(3) / 127.5, atol=1e-9) and np.testing.assert_allclose(offset, [-1.0] * 3)
    assert stock_affine(identity, 3) == (np.eye(3).tolist(), [0.0, 0.0, 0.0])
    with pytest.raises(CnnregError, match="not a fixed scale and offset per pixel"):
        stock_affine(lambda x: (x - x.mean()) / (x.std() + 1), 3)  # per-image standardisation
    caffe = keras.applications.resnet50.preprocess_input  # RGB to BGR and the ImageNet means: channels mix
    with pytest.raises(CnnregError, match="--with-preprocess"):
        stock_affine(caffe, 1)  # made for RGB: one line, not a traceback
    inputs = keras.Input((8, 8, 3))
    identity_net = keras.Model(inputs, keras.layers.Activation("linear")(inputs))
    x = np.random.default_rng(2).integers(0, 256, size=(2, 11, 6, 3)).astype("float32")
    for resize in ("stretch", "crop", "pad"):
        for preprocess in (caffe, scale_minus1_1):
            model, steps = raw_model(identity_net, (8, 8, 3), resize, preprocess)
            want = np.asarray(preprocess(fit_images(x, (8, 8, 3), resize=resize)))
            got = keras.ops.convert_to_numpy(model(x))
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)  # caffe's values reach ±150: float32
            assert steps[0].startswith("Resizing(8, 8, bilinear") and ("Conv2D" in steps[1]) == (preprocess is caffe)


def test_custom_objects_are_named_and_stock_models_have_none(zoo, tmp_path):
    import keras

    from cnnreg.training.publish import custom_objects

    run, _, _ = zoo
    assert custom_objects(run / "model.keras") == []

    @keras.saving.register_keras_serializable(package="cardtest", name="Double")
    class Double(keras.layers.Layer):
        def call(self, x):
            return x * 2

    inputs = keras.Input((3,))
    keras.Model(inputs, Double()(inputs)).save(tmp_path / "custom.keras")
    assert custom_objects(tmp_path / "custom.keras") == ["cardtest>Double"]


# --- the lock --------------------------------------------------------------------------------------

def test_publishers_take_turns_and_no_lock_file_is_left_in_the_zoo(zoo, tmp_path):
    fcntl = pytest.importorskip("fcntl")  # POSIX: publishers take turns through flock
    run, folder, _ = zoo
    assert sorted(p.name for p in folder.iterdir()) == ["lenet5.digits", "lenet5.raw", "zoo.json"]
    target = tmp_path / "zoo"
    target.mkdir()
    held = os.open(target, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)  # another publisher is writing
    results = []
    thread = threading.Thread(target=lambda: results.append(run_cli("publish", str(run), str(target), "--license", "MIT")))
    thread.start()
    try:
        time.sleep(1.0)
        assert not (target / "zoo.json").exists() and thread.is_alive()  # it waits for its turn
    finally:
        fcntl.flock(held, fcntl.LOCK_UN)
        os.close(held)
    thread.join(timeout=120)
    assert results and results[0].exit_code == 0, results
    assert sorted(p.name for p in target.iterdir()) == ["lenet5.digits", "zoo.json"]


def test_publish_says_each_step_that_takes_seconds(zoo, tmp_path):
    """publish(progress=...) is told the steps that load keras or export (the CLI shows them as a
    spinner and lines on a terminal): nothing for a plain copy, each step with --with-preprocess."""
    import cnnreg

    run, _, _ = zoo
    said: list[str] = []
    cnnreg.publish(run, tmp_path / "plain", license="MIT", progress=said.append)
    assert said == []
    cnnreg.publish(run, tmp_path / "raw", license="MIT", with_preprocess=True, progress=said.append)
    assert said == ["loading keras…", "lenet5.digits.raw.keras: the model behind its preprocessing…"]
