"""`cnnreg export`: every format written by Keras' exporters, loaded in its own runtime and
checked against the Keras model; exports used as models by predict and evaluate; the sidecar
read as data; publish --format.

One LeNet-5 run (1 epoch on the embedded digits) is trained per module.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import cnnreg
from cnnreg.errors import CnnregError
from cnnreg.testing import run_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("export") / "lenet5"
    result = run_cli("run", "lenet5", "--epochs", "1", "--batch-size", "64", "--quiet", "--run-dir", str(run_dir))
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture(scope="module")
def images(trained) -> tuple[np.ndarray, np.ndarray]:
    """The run's first 16 test images, preprocessed, and the Keras model's probabilities."""
    from cnnreg.training.export import check_inputs
    from cnnreg.training.saved import trained_run

    model_of = trained_run(trained)
    x, inputs, notes = check_inputs(model_of, 16)
    assert inputs == "test images of digits" and not notes and x.shape == (16, 32, 32, 1)
    return x, np.asarray(model_of.load_model().predict_on_batch(x))


def _image(path: Path, digit: int = 7) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    Image.fromarray((load_digits().images[digit] * 16).astype("uint8")).resize((32, 32)).save(path)
    return path


def test_onnx_export_parity_dynamic_batch_and_json(trained, images, tmp_path):
    import onnxruntime

    out = tmp_path / "m.onnx"
    result = run_cli("export", str(trained), "--format", "onnx", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    parity = data["parity"]
    assert data["format"] == "onnx" and data["path"] == str(out) and data["quantize"] is None
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-4 and parity["top1_agreement"] == 1.0
    assert parity["examples"] == 100 and parity["batches"] == [1, 7] and parity["inputs"] == "test images of digits"
    from cnnreg.files import sha256_of

    assert data["files"] == {"m.onnx": sha256_of(out)} and data["size"] == out.stat().st_size
    # onnxruntime on the file, by itself: the run's model.keras within 1e-4 at batches 1 and 7
    x, expected = images
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for batch in (1, 7):
        got = session.run(None, {name: x[:batch]})[0]
        assert got.shape == (batch, 10) and np.abs(got - expected[:batch]).max() <= 1e-4
    sidecar = json.loads((tmp_path / "m.onnx.cnnreg.json").read_text())
    assert sidecar["parity"] == parity and sidecar["class_names"] == [str(d) for d in range(10)]
    assert sidecar["component"] == {"provider": "cnnreg", "name": "lenet5"} and sidecar["input_shape"] == [32, 32, 1]
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # temporary names are gone
    text = run_cli("export", str(trained), "--format", "onnx", "--out", str(out))
    assert text.exit_code == 0 and "parity ok: onnx vs keras on 100 test images of digits" in text.stdout


def test_predict_and_evaluate_take_the_export(trained, tmp_path):
    out = tmp_path / "m.onnx"
    assert run_cli("export", str(trained), "--out", str(out)).exit_code == 0
    image = _image(tmp_path / "seven.png")
    from_run = json.loads(run_cli("predict", str(trained), str(image), "--top", "3", "--json").stdout)["predictions"][0]
    from_onnx = run_cli("predict", str(out), str(image), "--top", "3", "--json")
    assert from_onnx.exit_code == 0, from_onnx.output
    from_onnx = json.loads(from_onnx.stdout)["predictions"][0]
    assert [t["class_id"] for t in from_onnx["top"]] == [t["class_id"] for t in from_run["top"]]
    for a, b in zip(from_onnx["top"], from_run["top"]):
        assert abs(a["probability"] - b["probability"]) <= 1e-4
    run_eval = cnnreg.evaluate(trained).evaluation
    onnx_eval = cnnreg.evaluate(out).evaluation
    assert onnx_eval["examples"] == run_eval["examples"] and onnx_eval["accuracy"] == run_eval["accuracy"]
    assert onnx_eval["confusion"] == run_eval["confusion"] and onnx_eval["confusion_png"] is None


def test_saved_model_loads_in_tensorflow(trained, images, tmp_path):
    import tensorflow as tf

    out = tmp_path / "sm"
    result = cnnreg.export(trained, format="saved_model", out=out)
    assert result.passed and result.parity.max_abs_diff <= 1e-4 and (out / "saved_model.pb").is_file()
    assert (tmp_path / "sm.cnnreg.json").is_file() and "saved_model.pb" in result.exported.files
    x, expected = images
    loaded = tf.saved_model.load(str(out))
    for batch in (1, 7):
        assert np.abs(loaded.serve(x[:batch]).numpy() - expected[:batch]).max() <= 1e-4
    # a second export replaces the folder whole
    again = cnnreg.export(trained, format="savedmodel", out=out)
    assert again.passed and sorted(again.exported.files) == sorted(result.exported.files)


@pytest.mark.parametrize("fmt, suffix, quantize", [
    ("litert", ".tflite", None), ("litert", ".tflite", "int8"), ("openvino", ".xml", None),
    ("openvino", ".xml", "float16"), ("onnx", ".onnx", "int8"),
])
def test_litert_openvino_and_quantised(trained, tmp_path, fmt, suffix, quantize):
    out = tmp_path / f"m{suffix}"
    result = cnnreg.export(trained, format=fmt, out=out, quantize=quantize, images=50)
    parity = result.parity
    assert result.passed and parity.examples == 50, parity
    if quantize:
        assert parity.tolerance is None and parity.min_agreement == 0.99 and parity.top1_agreement >= 0.99
    else:
        assert parity.tolerance == 1e-3 and parity.max_abs_diff <= 1e-3
    if fmt == "openvino":
        assert sorted(result.exported.files) == ["m.bin", "m.xml"] and (tmp_path / "m.bin").is_file()
    size = sum((tmp_path / name).stat().st_size for name in result.exported.files)
    assert result.exported.size == size
    predicted = cnnreg.predict(out, _image(tmp_path / "three.png", 3), top=1).predictions[0]["top"][0]
    assert 0 <= predicted["class_id"] < 10


def test_quantised_exports_are_smaller(trained, tmp_path):
    full = cnnreg.export(trained, format="litert", out=tmp_path / "f.tflite", images=8).exported.size
    small = cnnreg.export(trained, format="litert", out=tmp_path / "q.tflite", quantize="float16", images=8).exported.size
    assert small < 0.6 * full


def test_mistakes_are_one_line(trained, tmp_path):
    cases = [
        (["--format", "onxx"], "unknown export format 'onxx'; did you mean 'onnx'?"),
        (["--format", "onnx", "--out", str(tmp_path / "m.tflite")], "--out for onnx is a .onnx file"),
        (["--format", "onnx", "--out", str(tmp_path)], "is a .onnx file"),
        (["--format", "onnx", "--quantize", "float16"], "--quantize float16 is not offered for onnx (it offers: int8)"),
        (["--format", "saved_model", "--quantize", "int8"], "is not offered for saved_model"),
        (["--images", "0"], "--images must be >= 1"),
        (["--backend", "jaks"], "unknown backend 'jaks'"),
    ]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    cases.append((["--format", "saved_model", "--out", str(tmp_path / "notes")], "holds something other than a SavedModel"))
    for args, expected in cases:
        result = run_cli("export", str(trained), *args)
        assert result.exit_code == 2, (args, result.output)
        assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    result = run_cli("export", str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert (tmp_path / "notes" / "a.txt").read_text() == "mine"


def test_a_missing_package_names_the_pip_command(trained, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(CnnregError, match=r"needs onnxruntime, which is not installed: pip install 'cnnreg\[export\]'"):
        cnnreg.export(trained, format="onnx")


def test_failed_parity_exits_1_and_the_export_is_refused(trained, tmp_path, monkeypatch):
    from cnnreg.training import export as exporting

    monkeypatch.setattr(exporting, "QUANTISED_AGREEMENT", 1.01)  # no export can agree on more than all
    out = tmp_path / "q.onnx"
    result = run_cli("export", str(trained), "--format", "onnx", "--quantize", "int8", "--out", str(out), "--images", "20")
    assert result.exit_code == 1, result.output
    assert "parity FAILED" in result.stdout and "does not give the model's answers" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    sidecar = json.loads((tmp_path / "q.onnx.cnnreg.json").read_text())
    assert sidecar["parity"]["passed"] is False and out.is_file()  # kept for inspection, marked failed
    refused = run_cli("predict", str(out), str(_image(tmp_path / "seven.png")))
    assert refused.exit_code == 2 and "failed its parity check" in refused.stderr


def _sidecar_case(tmp_path: Path, trained: Path, change) -> str:
    out = tmp_path / "m.onnx"
    if not out.exists():
        assert cnnreg.export(trained, out=out, images=8).passed
    path = tmp_path / "m.onnx.cnnreg.json"
    original = path.read_text()
    data = json.loads(original)
    change(data, out)
    path.write_text(json.dumps(data))
    try:
        result = run_cli("evaluate", str(out))
        assert result.exit_code == 2, result.output
        assert len(result.stderr.strip().splitlines()) == 1
        return result.stderr
    finally:
        path.write_text(original)


def test_the_sidecar_is_data(trained, tmp_path):
    """Nothing the sidecar names is imported; its files stay inside the folder and match their hashes."""
    def hostile_preprocess(data, out):
        data["preprocess"] = "os:system"

    assert "refusing to import it" in _sidecar_case(tmp_path, trained, hostile_preprocess)

    def escape(data, out):
        data["files"] = {"../lenet5/model.keras": data["files"]["m.onnx"]}

    assert "not a plain path inside the export" in _sidecar_case(tmp_path, trained, escape)

    def other_arch(data, out):
        data["component"] = {"provider": "cnnreg", "name": "resnet35"}

    assert "did you mean 'resnet34'" in _sidecar_case(tmp_path, trained, other_arch)

    def other_file(data, out):
        data["path"] = "other.onnx"

    assert "the sidecar of another export" in _sidecar_case(tmp_path, trained, other_file)
    out = tmp_path / "m.onnx"
    original = out.read_bytes()
    out.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    assert "does not match the sha256" in _sidecar_case(tmp_path, trained, lambda data, out: None)
    out.write_bytes(original)
    (tmp_path / "m.onnx.cnnreg.json").unlink()
    result = run_cli("predict", str(out), str(_image(tmp_path / "seven.png")))
    assert result.exit_code == 2 and "has no m.onnx.cnnreg.json beside it" in result.stderr


def test_publish_adds_a_checked_onnx_file(trained, tmp_path):
    from cnnreg.files import sha256_of

    zoo = tmp_path / "zoo"
    result = run_cli("publish", str(trained), str(zoo), "--license", "MIT", "--format", "onnx", "--json")
    assert result.exit_code == 0, result.output
    published = json.loads(result.stdout)["published"]
    onnx = zoo / "lenet5.digits" / "lenet5.digits.onnx"
    assert published["exports"][0]["parity"]["passed"] and published["exports"][0]["file"] == onnx.name
    entry = json.loads((zoo / "zoo.json").read_text())["entries"][0]
    assert entry["files"]["onnx"]["hash"] == sha256_of(onnx) and entry["files"]["onnx"]["url"] == "lenet5.digits/lenet5.digits.onnx"
    assert entry["files"]["onnx"]["size"] == onnx.stat().st_size
    card = (zoo / "lenet5.digits" / "README.md").read_text()
    assert "## Exports" in card and sha256_of(onnx).split(":")[1] in card
    # the published file serves as a model on its own, and the entry is a valid zoo entry
    assert cnnreg.predict(onnx, _image(tmp_path / "seven.png")).predictions[0]["top"]
    wrong = run_cli("publish", str(trained), str(zoo), "--format", "openvino")
    assert wrong.exit_code == 2 and "single-file exports" in wrong.stderr


def test_an_architecture_that_cannot_be_exported_names_the_layer(tmp_path):
    """The lecture's architectures, and a keras.applications one, export to ONNX and pass; a
    layer whose op ONNX lacks fails in one line that names it."""
    import keras

    from cnnreg.training.export import FORMATS, export_model

    rng = np.random.default_rng(0)
    for spec in ("lenet5", "resnet18", "googlenet", "keras-mobilenetv3small"):
        shape = (32, 32, 1) if spec == "lenet5" else (32, 32, 3)
        model = cnnreg.build("architecture", spec, input_shape=shape, num_classes=10)
        x = rng.uniform(0, 1, (8, *shape)).astype("float32")
        written, parity = export_model(model, FORMATS["onnx"], tmp_path / f"{spec}.onnx", x)
        assert parity.passed and parity.max_abs_diff <= 1e-4, (spec, parity)
        assert list(written) == [f"{spec}.onnx"]

    class Erfinv(keras.layers.Layer):
        def call(self, x):
            return keras.ops.erfinv(keras.ops.tanh(x) * 0.5)

    inputs = keras.Input((8, 8, 1))
    hidden = Erfinv(name="odd_one")(keras.layers.Conv2D(2, 3, name="conv")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(hidden)), name="odd")
    with pytest.raises(CnnregError) as caught:
        export_model(model, FORMATS["onnx"], tmp_path / "odd.onnx", rng.uniform(0, 1, (4, 8, 8, 1)).astype("float32"))
    message = str(caught.value)
    assert message.startswith("cannot export odd to onnx at layer 'odd_one' (Erfinv):") and "\n" not in message
    assert "Erfinv" in message and not list(tmp_path.glob(".odd*")) and not (tmp_path / "odd.onnx").exists()
