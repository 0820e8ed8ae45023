"""Images are read one way, once (issue 12, section 4): each real file of a folder once (links,
loops), one decoder for training and prediction (16-bit PNGs), one pixel limit everywhere."""

from __future__ import annotations

import json
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

from cnnreg.errors import CnnregError
from cnnreg.testing import run_cli
from test_datasets import make_folder  # tests/ is on sys.path: pytest's prepend mode

ENV = "CNNREG_MAX_IMAGE_PIXELS"
LIMIT_TEXT = "larger than the limit of 89.5 M pixels set by CNNREG_MAX_IMAGE_PIXELS"


def write_png(path: Path, rows, width: int, height: int, *, bit_depth: int = 8, color_type: int = 0) -> Path:
    """A PNG written by hand (Pillow writes neither 16-bit colour nor a huge image in a few KB):
    ``rows`` yields each row's bytes; color_type 0 is gray, 2 RGB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(b"\x00" + row) for row in rows) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def png16(path: Path, pixels: np.ndarray) -> Path:
    """A 16-bit gray (H, W) or RGB (H, W, 3) PNG of ``pixels`` (uint16)."""
    height, width = pixels.shape[:2]
    rows = (row.astype(">u2").tobytes() for row in pixels)
    return write_png(path, rows, width, height, bit_depth=16, color_type=2 if pixels.ndim == 3 else 0)


def huge_png(path: Path, side: int) -> Path:
    """A valid black 1-bit ``side`` x ``side`` PNG: a few KB on disk, never decoded by the tests."""
    row = bytes((side + 7) // 8)
    return write_png(path, (row for _ in range(side)), side, side, bit_depth=1)


def gradient16(height: int = 30, width: int = 40) -> np.ndarray:
    ramp = np.linspace(0, 65535, height * width).reshape(height, width)
    return np.round(ramp).astype(np.uint16)


@pytest.fixture
def no_pixel_decoded_over(monkeypatch):
    """Fails a test that decodes (loads) an image of more than ``limit`` pixels."""
    from PIL import ImageFile

    loaded: list[tuple[int, int]] = []
    real = ImageFile.ImageFile.load

    def load(self):
        loaded.append(self.size)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return lambda limit: [size for size in loaded if size[0] * size[1] > limit]


# --- each real file once ---------------------------------------------------------------------------


def test_a_symlink_loop_counts_each_image_once_and_in_one_split(tmp_path):
    from cnnreg.datasets.folder import folder

    root = make_folder(tmp_path / "loop", {"a": 6, "b": 6}, formats=("png", "jpg"))
    (root / "a" / "loop").symlink_to(root / "a")  # a/loop -> a: os.walk(followlinks) went round 40 times
    (root / "b" / "up").symlink_to(root)  # would relabel a's images as b
    data = folder(str(root))
    assert sum(data.sizes().values()) == 12 and data.skipped == []
    real = [{os.path.realpath(f) for f in split.files} for split in data.splits().values()]
    assert sum(len(r) for r in real) == 12 and len(set().union(*real)) == 12  # no image in two splits
    counts = run_cli("data", "info", str(root), "--json")
    assert counts.exit_code == 0 and json.loads(counts.stdout)["dataset"]["total"] == 12


def test_a_linked_class_folder_works_and_a_second_path_to_a_file_is_skipped(tmp_path):
    from cnnreg.datasets.folder import folder

    root = make_folder(tmp_path / "d", {"a": 4, "b": 4}, formats=("png",))
    elsewhere = make_folder(tmp_path / "elsewhere", {"c": 3}, formats=("png",)) / "c"
    (root / "c").symlink_to(elsewhere)  # a class folder that is a link: read, once
    (root / "a" / "more_c").symlink_to(elsewhere)  # another class's folder: not entered
    (root / "a" / "copy.png").symlink_to(root / "a" / "000.png")  # a second name for one file
    os.link(root / "b" / "001.png", root / "a" / "hard.png")  # a hard link into another class
    data = folder(str(root), validation=0, test=0)
    assert data.class_names == ["a", "b", "c"] and len(data.train) == 11
    assert np.bincount(data.train.y).tolist() == [5, 3, 3]  # the hard link counts for a, listed first
    assert sorted(data.skipped) == ["a/copy.png (same file as a/000.png)", "b/001.png (same file as a/hard.png)"]


# --- one decoder: 16-bit PNGs ------------------------------------------------------------------------


@pytest.mark.parametrize("color", [False, True])
def test_16_bit_samples_keep_their_high_byte(tmp_path, color):
    from cnnreg.images import read_image

    values = np.array([[0, 255, 256, 32767, 32896, 33023, 65280, 65535]], np.uint16)
    path = png16(tmp_path / "v.png", np.stack([values] * 3, -1) if color else values)
    expected = [0, 0, 1, 127, 128, 128, 255, 255]  # value >> 8: what TensorFlow decoded before
    for channels in (1, 3):
        pixels = read_image(path, channels)
        assert pixels.dtype == np.uint8 and pixels.shape == (1, 8, channels)
        assert pixels[0, :, 0].tolist() == expected


@pytest.fixture(scope="module")
def run16(tmp_path_factory):
    """A 1-epoch run on 16-bit PNGs (8x8 RGB input)."""
    root = tmp_path_factory.mktemp("sixteen")
    for name, flip in (("a", False), ("b", True)):
        (root / "data" / name).mkdir(parents=True)
        for i in range(3):
            picture = gradient16()[:, ::-1] if flip else gradient16()
            png16(root / "data" / name / f"{i}.png", np.stack([picture, picture // 2, np.full_like(picture, 32896)], -1))
    run_dir = root / "run"
    result = run_cli("run", "mlp_bn", "--dataset", f"folder:{root / 'data'},validation=0,test=0,resize=crop",
                     "--input-shape", "8x8x3", "--epochs", "1", "--batch-size", "6", "--quiet", "--run-dir", str(run_dir))
    assert result.exit_code == 0, result.output
    return root, run_dir


def test_training_and_predict_read_a_16_bit_png_alike(run16, tmp_path, monkeypatch):
    tf = pytest.importorskip("tensorflow")
    import cnnreg.kinds.datasets
    from cnnreg.kinds.datasets import Split
    from cnnreg.datasets.pipeline import Source

    root, run_dir = run16
    gray = png16(tmp_path / "gray.png", gradient16())
    mid = png16(tmp_path / "mid.png", np.full((6, 10), 32896, np.uint16))  # 16-bit mid-gray
    color = root / "data" / "b" / "0.png"
    fitted = []  # what predict feeds the model, before the architecture's preprocess
    real_fit = cnnreg.kinds.datasets.fit_images
    monkeypatch.setattr(cnnreg.kinds.datasets, "fit_images", lambda *a, **k: fitted.append(real_fit(*a, **k)) or fitted[-1])
    result = run_cli("predict", str(run_dir), str(gray), str(mid), str(color), "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["predictions"]) == 3 and len(fitted) == 3
    source = Source(Split(files=[str(gray), str(mid), str(color)], y=[0, 0, 0]), shape=(8, 8, 3), resize="crop", name="t")
    for path, predicted in zip((gray, mid, color), fitted):
        training = source.load(tf.constant(str(path)), cache=False).numpy()  # the pipeline, not rounded
        np.testing.assert_allclose(np.clip(training, 0, 255), predicted[0], atol=1e-3)
    assert np.all(fitted[1] == 128)  # not 255: no clipping of 16-bit values
    source.cache()  # the pipeline's in-memory cache (uint8)
    assert np.all(source.images.numpy()[1] == 128)
    np.testing.assert_allclose(source.images.numpy()[0], np.round(fitted[0][0]), atol=1)


# --- one pixel limit -----------------------------------------------------------------------------


def test_the_pixel_limit_setting(monkeypatch):
    from cnnreg.images import DEFAULT_MAX_PIXELS, max_pixels, too_large

    monkeypatch.delenv(ENV, raising=False)
    assert max_pixels() == DEFAULT_MAX_PIXELS == 89_478_485  # Pillow's own default
    assert too_large((13000, 9000)) == f"9000x13000 = 117.0 M pixels, {LIMIT_TEXT}"
    assert too_large((9000, 9000)) is None
    monkeypatch.setenv(ENV, "10_000")
    assert max_pixels() == 10_000 and too_large((101, 100)) is not None and too_large((100, 100)) is None
    for bad in ("lots", "0", "-5", "1.5"):
        monkeypatch.setenv(ENV, bad)
        with pytest.raises(CnnregError, match=rf"^CNNREG_MAX_IMAGE_PIXELS must be a whole number of pixels > 0 \(got '{bad}'\)$"):
            max_pixels()
    result = run_cli("data", "info", "digits")  # a bad setting stops nothing that reads no image...
    assert result.exit_code == 0


def test_a_folder_skips_an_image_over_the_limit_from_its_header(tmp_path, monkeypatch, no_pixel_decoded_over):
    from cnnreg.datasets.folder import folder

    root = make_folder(tmp_path / "f", {"a": 3, "b": 3}, formats=("png", "jpg"))
    huge_png(root / "a" / "huge.png", 13000)  # 13000x13000, a few KB
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = folder(str(root), validation=0, test=0)
    assert not [w for w in caught if "DecompressionBomb" in w.category.__name__]
    assert (root / "a" / "huge.png").stat().st_size < 100_000
    assert data.skipped == [f"a/huge.png (too large: 13000x13000 = 169.0 M pixels, {LIMIT_TEXT})"]
    assert len(data.train) == 6 and no_pixel_decoded_over(100_000) == []  # only its header was read
    info = run_cli("data", "info", str(root))
    assert info.exit_code == 0 and "a/huge.png (too large: 13000x13000" in info.stdout and "corrupt" not in info.stdout
    monkeypatch.setenv(ENV, "lots")
    bad = run_cli("data", "info", str(root))
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and "CNNREG_MAX_IMAGE_PIXELS must be" in bad.stderr


def test_a_lower_limit_applies_to_the_folder_and_the_pipeline(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    from PIL import Image

    from cnnreg.kinds.datasets import Split
    from cnnreg.datasets.folder import folder
    from cnnreg.datasets.pipeline import Source

    root = make_folder(tmp_path / "f", {"a": 3, "b": 3}, formats=("png",))
    Image.fromarray(np.zeros((100, 200, 3), np.uint8)).save(root / "a" / "wide.png")  # 20,000 pixels
    monkeypatch.setenv(ENV, "10000")
    reason = "too large: 100x200 = 20,000 pixels, larger than the limit of 10,000 pixels set by CNNREG_MAX_IMAGE_PIXELS"
    assert folder(str(root), validation=0, test=0).skipped == [f"a/wide.png ({reason})"]
    # a plugin's files split is not scanned: the pipeline's decoder holds it to the limit
    files = [str(root / "a" / "000.png"), str(root / "a" / "wide.png"), str(root / "b" / "001.png")]
    source = Source(Split(files=files, y=[0, 0, 1]), shape=(8, 8, 3), resize="stretch", name="train", root=str(root))
    source.cache()
    assert source.skipped == [f"a/wide.png ({reason})"] and source.kept.tolist() == [0, 2]
    monkeypatch.setenv(ENV, "100000")
    assert folder(str(root), validation=0, test=0).skipped == []


def test_raising_the_limit_silences_pillow_too(tmp_path, monkeypatch, no_pixel_decoded_over):
    from cnnreg.images import open_image

    big = huge_png(tmp_path / "big.png", 13000)
    monkeypatch.setenv(ENV, str(200_000_000))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open_image(big) as image:  # over Pillow's default: it would warn
            assert image.size == (13000, 13000)
    assert caught == [] and no_pixel_decoded_over(0) == []


def test_predict_refuses_an_image_over_the_limit_in_one_line(run16, tmp_path):
    _, run_dir = run16
    huge = huge_png(tmp_path / "huge.png", 20000)  # Pillow raised DecompressionBombError: a traceback
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_cli("predict", str(run_dir), str(huge))
    assert result.exit_code == 2 and not [w for w in caught if "DecompressionBomb" in w.category.__name__]
    assert result.stderr == f"error: image {huge} is 20000x20000 = 400.0 M pixels, {LIMIT_TEXT}\n"
    (tmp_path / "notes.png").write_text("not an image")
    for name, message in (("missing.png", "does not exist"), ("notes.png", "cannot read image")):
        other = run_cli("predict", str(run_dir), str(tmp_path / name))
        assert other.exit_code == 2 and other.stderr.count("\n") == 1 and message in other.stderr
