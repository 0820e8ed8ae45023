"""Datasets: image folders, TFDS (mocked, offline), resize modes, the tf.data pipeline, class weights."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cnnreg.errors import CnnregError, ParameterError
from cnnreg.testing import run_cli

RNG = np.random.default_rng(0)


def image(kind: str, size=(12, 16)) -> np.ndarray:
    """A small picture whose class can be learnt: a bright block left (a), right (b) or middle (c)."""
    height, width = size
    pixels = RNG.integers(0, 40, (height, width, 3)).astype(np.uint8)
    cols = {"a": slice(0, width // 3), "b": slice(2 * width // 3, width), "c": slice(width // 3, 2 * width // 3)}[kind]
    pixels[:, cols] = 220
    return pixels


def make_folder(root: Path, counts: dict[str, int], *, broken: bool = False, formats=("jpg", "png", "bmp", "gif")) -> Path:
    """Real image files of several formats and modes (RGB, grayscale, palette, RGBA)."""
    from PIL import Image

    for name, count in counts.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            fmt = formats[i % len(formats)]
            size = (12 + (i % 3) * 4, 16 + (i % 2) * 6)
            picture = Image.fromarray(image(name[0] if name[0] in "abc" else "a", size))
            mode = ("RGB", "L", "RGBA", "P")[i % 4] if fmt == "png" else ("P" if fmt == "gif" else "RGB")
            picture.convert(mode).save(folder / f"{i:03d}.{fmt}")
    if broken:
        first = sorted(counts)[0]
        (root / first / "empty.jpg").write_bytes(b"")
        (root / first / "notes.png").write_text("not an image at all")
        good = (root / first / "000.jpg").read_bytes()
        (root / sorted(counts)[-1] / "cut.jpg").write_bytes(good[: len(good) // 2])
    return root


def corrupt_png() -> bytes:
    """A PNG whose header and IEND are intact but whose pixel data is garbage."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image("a")).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    middle = len(data) // 2
    for i in range(middle, middle + 16):
        data[i] ^= 0xFF
    return bytes(data)


def plan_for(dataset: str, **config):
    from cnnreg.training.config import RunConfig
    from cnnreg.training.batches import prepare_data
    from cnnreg.training.config import resolve

    return prepare_data(resolve(RunConfig(architecture=config.pop("architecture", "mlp_bn"), dataset=dataset, **config)))


# --- folders -----------------------------------------------------------------------------------


def test_folder_lists_classes_splits_and_skips_broken_files(tmp_path):
    from cnnreg.datasets.folder import folder

    root = make_folder(tmp_path / "shapes", {"a_left": 20, "b_right": 20}, broken=True)
    data = folder(str(root))
    assert data.class_names == ["a_left", "b_right"]
    assert data.sizes() == {"train": 30, "validation": 6, "test": 4}  # 75/15/10, stratified
    assert sorted(data.skipped) == ["a_left/empty.jpg (empty file)", "a_left/notes.png (not an image)", "b_right/cut.jpg (truncated)"]
    assert data.shape == (None, None, 3) and data.default_input_shape is None and "sizes" in data.input_shape_reason
    counts = np.bincount(data.train.y)
    assert counts.tolist() == [15, 15]
    again = folder(str(root))
    assert again.train.files == data.train.files  # the split is seeded
    other = folder(str(root), split_seed=1)
    assert other.train.files != data.train.files


def test_data_after_the_end_of_a_jpeg_is_not_truncation(tmp_path):
    from PIL import Image

    from cnnreg.datasets.folder import folder

    root = make_folder(tmp_path / "f", {"a": 3, "b": 3}, formats=("png",))
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3)).astype(np.uint8)).save(root / "a" / "big.jpg", quality=95)
    data = (root / "a" / "big.jpg").read_bytes()
    (root / "a" / "motion.jpg").write_bytes(data + RNG.integers(0, 256, 4096).astype(np.uint8).tobytes())
    (root / "b" / "cut.jpg").write_bytes(data[: int(len(data) * 0.7)])  # header intact, no end
    dataset = folder(str(root), validation=0, test=0)
    assert dataset.skipped == ["b/cut.jpg (truncated)"]
    assert any(f.endswith("motion.jpg") for f in dataset.train.files)


def test_folder_with_train_val_test_subfolders(tmp_path):
    from cnnreg.datasets.folder import folder

    root = tmp_path / "given"
    make_folder(root / "train", {"a": 8, "b": 8})
    make_folder(root / "val", {"a": 2, "b": 3})
    data = folder(str(root), test=0.25)
    assert data.sizes() == {"train": 12, "validation": 5, "test": 4}  # test carved from train/
    assert all("/val/" in f for f in data.validation.files)


def test_grayscale_folder_builds_one_channel_models(tmp_path):
    from PIL import Image

    from cnnreg.datasets.folder import folder

    for name in ("a", "b"):
        (tmp_path / "g" / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(image(name)[..., 0]).save(tmp_path / "g" / name / f"{i}.png")
    data = folder(str(tmp_path / "g"))
    assert data.shape == (12, 16, 1) and data.default_input_shape == (12, 16, 1)


@pytest.mark.parametrize(
    "layout, message",
    [
        ({"only": 3}, "has only 1 class (only); at least 2 class folders are needed"),
        ({}, "has no class sub-folders"),
    ],
)
def test_folder_structure_errors(tmp_path, layout, message):
    from cnnreg.datasets import resolve_dataset

    root = tmp_path / "data"
    root.mkdir()
    make_folder(root, layout)
    with pytest.raises(CnnregError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_dataset(f"folder:{root}")


def test_empty_class_folder_is_an_error(tmp_path):
    from cnnreg.datasets.folder import folder

    root = make_folder(tmp_path / "d", {"a": 3})
    (root / "b").mkdir()
    (root / "b" / "readme.txt").write_text("no images here")
    with pytest.raises(CnnregError, match=r"class folder .*/b is empty"):
        folder(str(root))
    (root / "b" / "x.jpg").write_bytes(b"")
    with pytest.raises(CnnregError, match=r"has no readable images \(all 1 skipped\)"):
        folder(str(root))


def test_a_plain_path_is_a_folder_dataset(tmp_path, monkeypatch):
    from cnnreg.datasets import resolve_dataset

    root = make_folder(tmp_path / "pets", {"a": 2, "b": 2})
    component, params = resolve_dataset(str(root))
    assert component.name == "folder" and params["path"] == str(root.resolve())
    monkeypatch.chdir(tmp_path)
    for text in ("./pets", "pets"):
        component, params = resolve_dataset(text)
        assert component.name == "folder" and params["path"] == str(root.resolve())
    component, params = resolve_dataset("digits")  # a registered name wins
    assert component.name == "digits"
    with pytest.raises(ParameterError, match="dataset folder ./nope does not exist"):
        resolve_dataset("./nope")


# --- resizing ------------------------------------------------------------------------------------


def test_resize_modes_stretch_crop_pad():
    from cnnreg.kinds.datasets import fit_images

    wide = np.zeros((1, 10, 40, 1), "float32")
    wide[:, :, 15:25] = 255  # a white 10x10 square in the middle of a black 10x40 image
    stretch = fit_images(wide, (10, 10, 1), resize="stretch")[0, ..., 0]
    crop = fit_images(wide, (10, 10, 1), resize="crop")[0, ..., 0]
    pad = fit_images(wide, (10, 10, 1), resize="pad")[0, ..., 0]
    assert stretch[:, :3].max() == 0 and stretch[:, 4:6].min() > 200 and stretch[:3].min() == 0  # squeezed
    assert crop.min() == 255  # the central 10x10 window is the square
    assert pad[:3].max() == 0 and pad[-3:].max() == 0 and pad[4:6, 4:6].min() > 200  # black above and below
    with pytest.raises(ParameterError, match="unknown resize mode 'squash'"):
        fit_images(wide, (10, 10, 1), resize="squash")


@pytest.mark.parametrize("mode", ["stretch", "crop", "pad"])
def test_pipeline_resize_matches_fit_images(mode):
    pytest.importorskip("tensorflow")
    from cnnreg.kinds.datasets import fit_images
    from cnnreg.datasets.pipeline import fit_tensor, to_channels

    for height, width in ((9, 31), (31, 9), (16, 16)):
        x = RNG.integers(0, 256, (height, width, 3)).astype("float32")
        for shape in ((12, 12, 3), (8, 20, 1)):
            expected = fit_images(x[None], shape, resize=mode)[0]
            got = np.clip(fit_tensor(to_channels(x, shape[2]), shape[:2], mode).numpy(), 0, 255)
            np.testing.assert_allclose(got, expected, atol=1e-3)


# --- the tf.data pipeline ---------------------------------------------------------------------------


def test_pipeline_caches_counts_undecodable_files_and_recovers_with_pillow(tmp_path):
    from PIL import Image

    root = make_folder(tmp_path / "f", {"a": 6, "b": 6}, formats=("png",))
    (root / "a" / "garbled.png").write_bytes(corrupt_png())  # passes the header check, fails to decode
    Image.fromarray(image("b")).convert("1").save(root / "b" / "mono.bmp")  # TensorFlow cannot, Pillow can
    plan = plan_for(f"folder:{root},validation=0,test=0", input_shape=(8, 8, 3))
    source = plan.streams["train"]
    assert source.images is not None and tuple(source.images.shape) == (13, 8, 8, 3)
    assert plan.dataset.skipped == ["a/garbled.png (does not decode)"]
    assert len(plan.dataset.train) == 13 and plan.steps_per_epoch == 1
    assert any("skipped 1 unreadable image file(s): a/garbled.png" in w for w in plan.warnings)


def test_training_batches_depend_only_on_seed_epoch_and_index(tmp_path, monkeypatch):
    from cnnreg.datasets import pipeline

    root = make_folder(tmp_path / "f", {"a": 10, "b": 10}, formats=("png", "jpg"))
    spec = f"folder:{root},validation=0,test=0"
    plan = plan_for(spec, input_shape=(8, 8, 3), batch_size=8)
    one = list(pipeline.training_batches(plan, plan.streams["train"]).take(6).as_numpy_iterator())
    later = list(pipeline.training_batches(plan, plan.streams["train"], first_epoch=1).take(3).as_numpy_iterator())
    assert [len(x) for x, _ in one] == [8, 8, 4, 8, 8, 4]  # epochs end with their partial batch
    for (x1, y1), (x2, y2) in zip(one[3:], later):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(one[0][0], one[3][0])  # a new order each epoch
    x, y = one[0]
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1  # mlp_bn's preprocess: 0..1
    assert y.shape == (8, 2) and set(y.sum(axis=1)) == {1.0}
    monkeypatch.setattr(pipeline, "CACHE_FRACTION", 0.0)  # too big to cache: decoded every epoch
    streamed = plan_for(spec, input_shape=(8, 8, 3), batch_size=8)
    assert streamed.streams["train"].images is None
    again = list(pipeline.training_batches(streamed, streamed.streams["train"]).take(3).as_numpy_iterator())
    for (x1, y1), (x2, y2) in zip(one, again):
        np.testing.assert_allclose(x1, x2, atol=0.51 / 255)  # the cache keeps uint8 pixels
        np.testing.assert_array_equal(y1, y2)


def test_folder_run_with_augmentation_evaluate_and_predict(tmp_path):
    root = make_folder(tmp_path / "shapes", {"a": 12, "b": 12, "c": 12}, broken=True)
    run_dir = tmp_path / "run"
    result = run_cli("run", "lenet5", "--dataset", f"folder:{root},resize=crop", "--input-shape", "16x16x3", "--epochs", "2",
                     "--batch-size", "8", "--reg", "flip", "--reg", "mixup", "--run-dir", str(run_dir))
    assert result.exit_code == 0, result.output
    assert "skipped" in result.stdout and "3 unreadable files" in result.stdout
    assert "warning: skipped 3 unreadable image file(s): a/empty.jpg (empty file)" in result.stderr
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["resize"] == "crop" and manifest["skipped"] == 3 and manifest["status"] == "completed"
    assert manifest["data"] == {"train": 27, "validation": 6, "test": 3} and manifest["test"]["examples"] == 3
    evaluation = run_cli("evaluate", str(run_dir), "--split", "validation", "--json")
    assert evaluation.exit_code == 0, evaluation.output
    assert json.loads(evaluation.stdout)["evaluation"]["examples"] == 6
    predicted = run_cli("predict", str(run_dir), str(root / "b" / "001.png"), "--json")
    assert predicted.exit_code == 0, predicted.output
    assert len(json.loads(predicted.stdout)["predictions"][0]["top"]) == 3


def test_rerun_of_a_folder_run_reproduces_it(tmp_path):
    root = make_folder(tmp_path / "shapes", {"a": 8, "b": 8})
    args = ["mlp_bn", "--dataset", str(root), "--input-shape", "8x8x3", "--epochs", "2", "--batch-size", "4",
            "--reg", "flip", "--quiet"]
    first = run_cli("run", *args, "--run-dir", str(tmp_path / "one"))
    second = run_cli("rerun", str(tmp_path / "one"), "--run-dir", str(tmp_path / "two"), "--quiet")
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    rows = [(tmp_path / name / "history.csv").read_text().splitlines()[-1].split(",") for name in ("one", "two")]
    header = (tmp_path / "one" / "history.csv").read_text().splitlines()[0].split(",")
    for key in ("loss", "val_loss"):
        i = header.index(key)
        assert abs(float(rows[0][i]) - float(rows[1][i])) < 1e-6


# --- class imbalance ------------------------------------------------------------------------------


def test_balanced_class_weights():
    from cnnreg.kinds.datasets import class_weights, imbalance

    labels = np.array([0] * 30 + [1] * 10)
    weights = class_weights(labels, 3)
    assert weights[0] == pytest.approx(40 / (2 * 30)) and weights[1] == pytest.approx(40 / (2 * 10)) and weights[2] == 1.0
    assert imbalance([30, 10]) == 3.0 and imbalance([5, 0]) is None


def test_class_weight_balanced_run_records_the_weights(tmp_path):
    root = make_folder(tmp_path / "f", {"a": 12, "b": 4})
    run_dir = tmp_path / "run"
    result = run_cli("run", "mlp_bn", "--dataset", f"folder:{root},validation=0.25,test=0", "--input-shape", "8x8x3",
                     "--epochs", "1", "--class-weight", "balanced", "--quiet", "--run-dir", str(run_dir))
    assert result.exit_code == 0, result.output
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["config"]["class_weight"] == "balanced"
    weights = manifest["class_weights"]
    assert weights["1"] / weights["0"] == pytest.approx(3.0)
    bad = run_cli("run", "mlp_bn", "--class-weight", "equal")
    assert bad.exit_code == 2 and "--class-weight must be balanced (got equal)" in bad.stderr


# --- TensorFlow Datasets (mocked: no network, no data) ------------------------------------------------


def test_split_grammar():
    from cnnreg.datasets.catalog import default_splits, parse_split

    assert parse_split("train[:10%]") == ["train"]
    assert parse_split("train[10%:25%]+test[-5:]") == ["train", "test"]
    with pytest.raises(ParameterError, match=r"110% is outside -100%\.\.100%"):
        parse_split("train[:110%]")
    with pytest.raises(ParameterError, match=r"unknown split 'tran' .*did you mean 'train'\?"):
        parse_split("tran[:10%]", valid=("train",), dataset="tf_flowers")
    for bad in ("train[10%", "train[10%]", "train[]", "train[a:b]", "+test", "train[:10%](round)"):
        with pytest.raises(ParameterError, match="is not a split"):
            parse_split(bad)
    assert default_splits(["train"]) == {"train": "train[25%:]", "validation": "train[10%:25%]", "test": "train[:10%]"}
    assert default_splits(["train", "test"])["validation"] == "train[85%:]"
    assert default_splits(["train", "validation"])["test"] == "validation"


def test_without_tensorflow_datasets_installed_the_error_says_how_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorflow_datasets" else real(name, *a))
    result = run_cli("run", "mlp_bn", "--dataset", "cifar10")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "comes from TensorFlow Datasets, which is not installed: pip install tensorflow-datasets importlib_resources" in result.stderr


def test_registering_and_showing_tfds_entries_imports_no_tensorflow(subprocess_env):
    probe = (
        "import sys\nfrom cnnreg.cli import main\n"
        "for args in (['list', 'datasets'], ['show', 'tf_flowers'], ['show', 'folder']):\n"
        "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tensorflow_datasets', 'keras'))\n"
        "sys.stderr.write('HEAVY=%s\\n' % heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=subprocess_env, timeout=60)
    assert "HEAVY=[]" in proc.stderr, proc.stderr[-2000:]
    assert "tf_flowers" in proc.stdout and "tfds" in proc.stdout and "train[10%:25%]" in proc.stdout


def test_offline_without_data_fails_at_once_with_one_line(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow_datasets")
    from cnnreg.datasets import catalog

    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setattr(catalog, "network_reachable", lambda timeout=3.0: False)
    started = time.perf_counter()
    result = run_cli("run", "mlp_bn", "--dataset", "tf_flowers")
    assert result.exit_code == 2 and time.perf_counter() - started < 30
    assert result.stderr.count("\n") == 1, result.stderr
    line = result.stderr
    assert f"dataset 'tf_flowers' is not prepared in {tmp_path / 'tfds'}" in line and "offline" in line
    assert "tfds build tf_flowers --data_dir DIR" in line and f"copy DIR/tf_flowers/ to {tmp_path / 'tfds' / 'tf_flowers'}/" in line
    no_download = run_cli("data", "info", "mnist:download=false")
    assert no_download.exit_code == 2 and "download=false" in no_download.stderr


def test_prepared_on_disk_is_found_before_tfds_is_imported(tmp_path):
    from cnnreg.datasets.catalog import prepared_on_disk

    assert prepared_on_disk("tf_flowers", str(tmp_path)) is False
    (tmp_path / "tf_flowers" / "3.0.1").mkdir(parents=True)
    assert prepared_on_disk("tf_flowers", str(tmp_path)) is False
    (tmp_path / "tf_flowers" / "3.0.1" / "dataset_info.json").write_text("{}")
    assert prepared_on_disk("tf_flowers", str(tmp_path)) is True
    (tmp_path / "imagenette" / "160px-v2" / "1.0.0").mkdir(parents=True)
    (tmp_path / "imagenette" / "160px-v2" / "1.0.0" / "dataset_info.json").write_text("{}")
    assert prepared_on_disk("imagenette/160px-v2", str(tmp_path)) is True
    assert prepared_on_disk("imagenette/320px-v2", str(tmp_path)) is False
    assert prepared_on_disk("mnist", "gs://tfds-data/datasets") is None


@pytest.fixture
def mocked_tfds(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from cnnreg.datasets import catalog

    monkeypatch.setattr(catalog, "network_reachable", lambda timeout=3.0: True)  # the mock's download is a no-op
    with tfds.testing.mock_data(num_examples=12):
        yield tfds


def test_tf_flowers_uses_the_lecture_splits(mocked_tfds):
    from cnnreg.datasets.tfds import tf_flowers

    data = tf_flowers()
    assert data.class_names == ["dandelion", "daisy", "tulips", "sunflowers", "roses"]
    assert data.description.endswith("train train[25%:] / validation train[10%:25%] / test train[:10%]")
    assert data.sizes() == {"train": 12, "validation": 12, "test": 12}
    assert data.train.kind == "examples" and data.shape == (None, None, 3)
    labels = data.train.labels()
    assert labels.shape == (12,) and labels.max() < 5


def test_tfds_any_builder_and_a_run(mocked_tfds, tmp_path):
    from cnnreg.datasets.tfds import tfds_dataset

    data = tfds_dataset("colorectal_histology", split="train[:80%]", validation="train[80%:]")
    assert data.num_classes == 8 and data.shape == (150, 150, 3) and data.test is None
    run_dir = tmp_path / "run"
    result = run_cli("run", "mlp_bn", "--dataset", "mnist:split=train[:50%]", "--epochs", "1", "--batch-size", "4",
                     "--quiet", "--run-dir", str(run_dir))
    assert result.exit_code == 0, result.output
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["input_shape"] == [28, 28, 1] and manifest["data"] == {"train": 12, "validation": 12, "test": 12}
    assert manifest["resolved"]["dataset"]["params"]["split"] == "train[:50%]"


def test_unknown_tfds_name_gets_a_suggestion():
    pytest.importorskip("tensorflow_datasets")
    result = run_cli("run", "mlp_bn", "--dataset", "tfds:beanz")
    assert result.exit_code == 2 and "unknown TFDS dataset 'beanz'; did you mean 'beans'?" in result.stderr


def test_a_tfds_split_too_large_to_cache_is_streamed(mocked_tfds, monkeypatch):
    from cnnreg.datasets import pipeline

    monkeypatch.setattr(pipeline, "CACHE_FRACTION", 0.0)
    plan = plan_for("tf_flowers", input_shape=(8, 8, 3), batch_size=5)
    source = plan.streams["train"]
    assert source.images is None and len(plan.dataset.train) == 12 and plan.steps_per_epoch == 3
    batches = list(pipeline.training_batches(plan, source).take(4).as_numpy_iterator())
    assert [len(x) for x, _ in batches] == [5, 5, 2, 5] and batches[0][0].shape[1:] == (8, 8, 3)
    held = list(pipeline.held_out_batches(plan, plan.streams["test"]).as_numpy_iterator())
    assert sum(len(x) for x, _ in held) == 12 and held[0][1].shape[1] == 5
