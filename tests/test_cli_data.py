"""``cnnreg data info`` / ``cnnreg data show`` and the one-line errors of bad dataset input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cnnreg.testing import run_cli
from test_datasets import make_folder, mocked_tfds  # noqa: F401  (tests/ is on sys.path: pytest's prepend mode)

PNG = b"\x89PNG\r\n\x1a\n"


def test_info_of_a_folder_counts_classes_flags_imbalance_and_skipped_files(tmp_path):
    root = make_folder(tmp_path / "shapes", {"a": 16, "b": 8, "c": 8}, broken=True)
    result = run_cli("data", "info", str(root), "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)["dataset"]
    assert info["classes"] == ["a", "b", "c"] and info["total"] == 32
    assert info["sizes"] == {"train": 24, "validation": 4, "test": 4}
    assert info["counts"]["train"] == [12, 6, 6] and info["class_totals"] == [16, 8, 8]
    assert info["imbalance"]["ratio"] == 2.0 and info["imbalance"]["imbalanced"]
    assert info["image_shape"] == [None, None, 3] and info["local"] and info["location"] == str(root)
    assert len(info["skipped"]) == 3
    text = run_cli("data", "info", f"folder:{root}")
    assert text.exit_code == 0, text.output
    out = text.stdout
    assert "imbalanced" in out and "--class-weight balanced" in out and "3 unreadable files" in out
    assert "empty.jpg" in out and "notes.png" in out


def test_info_of_a_folder_imports_no_tensorflow(tmp_path, subprocess_env):
    root = make_folder(tmp_path / "shapes", {"a": 2, "b": 2})
    probe = (
        "import sys\nfrom cnnreg.cli import main\n"
        f"try:\n    main(['data', 'info', {str(root)!r}])\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('HEAVY=%s\\n' % sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=subprocess_env, timeout=60)
    assert "HEAVY=[]" in proc.stderr, proc.stderr[-2000:]


def test_info_of_digits():
    result = run_cli("data", "info", "digits", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)["dataset"]
    assert info["num_classes"] == 10 and info["total"] == 1797 and info["image_shape"] == [8, 8, 1]
    assert not info["imbalance"]["imbalanced"] and info["location"] == "inside the scikit-learn package"


def test_show_writes_a_labelled_png_grid(tmp_path):
    root = make_folder(tmp_path / "shapes", {"a": 6, "b": 6})
    out = tmp_path / "grid.png"
    result = run_cli("data", "show", str(root), "--n", "6", "--augment", "flip", "--augment", "rotate=0.1", "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    grid = json.loads(result.stdout)["grid"]
    assert grid["augment"] == ["flip", "rotate=0.1"] and len(grid["samples"]) == 6
    assert {s["class"] for s in grid["samples"]} <= {"a", "b"}
    assert out.read_bytes()[:8] == PNG
    from PIL import Image

    with Image.open(out) as picture:
        assert picture.size[0] >= 300 and picture.size[1] >= 300
    mixed = run_cli("data", "show", "digits", "--n", "4", "--augment", "mixup=1", "-o", str(tmp_path / "d.png"), "--json")
    assert mixed.exit_code == 0, mixed.output
    assert all(" / " in s["class"] or s["class"].isdigit() for s in json.loads(mixed.stdout)["grid"]["samples"])


def test_info_and_show_of_a_tfds_dataset(mocked_tfds, tmp_path):
    info = run_cli("data", "info", "tf_flowers", "--json")
    assert info.exit_code == 0, info.output
    data = json.loads(info.stdout)["dataset"]
    assert data["num_classes"] == 5 and data["sizes"] == {"train": 12, "validation": 12, "test": 12}
    assert sum(data["counts"]["train"]) == 12 and data["needs_network"] and data["location"]
    shown = run_cli("data", "show", "tf_flowers", "--n", "4", "--size", "32", "-o", str(tmp_path / "f.png"))
    assert shown.exit_code == 0, shown.output
    assert (tmp_path / "f.png").read_bytes()[:8] == PNG


def test_help_shows_examples():
    for args in (("data", "--help"), ("data", "info", "--help"), ("data", "show", "--help")):
        result = run_cli(*args)
        assert result.exit_code == 0 and "Example" in result.stdout, args


@pytest.mark.parametrize(
    "args, message",
    [
        (["data", "info", "digts"], "unknown dataset 'digts'; did you mean 'digits'?"),
        (["data", "info", "folder:/no/such/folder"], "dataset folder /no/such/folder does not exist"),
        (["data", "info", "/no/such/folder"], "dataset folder /no/such/folder does not exist"),
        (["data", "show", "digits", "--augment", "l2"], "--augment l2: regulariser 'l2' does not augment images"),
        (["data", "show", "digits", "--n", "0"], "--n must be in 1..400"),
        (["data", "show", "digits", "-o", "/no/such/dir/x.png"], "folder /no/such/dir does not exist"),
        (["run", "mlp_bn", "--dataset", "digts"], "unknown dataset 'digts'; did you mean 'digits'?"),
        (["run", "mlp_bn", "--dataset", "tf_flowers:split=train[:110%]"], "110% is outside -100%..100%"),
        (["run", "mlp_bn", "--dataset", "tf_flowers:split=tran[:10%]"], "unknown split 'tran'"),
        (["run", "mlp_bn", "--dataset", "mnist:validation=train[5%"], "is not a split"),
        (["run", "mlp_bn", "--input-shape", "32x32x2"], "--input-shape must be HxWxC with 1 or 3 channels"),
    ],
)
def test_bad_dataset_input_gets_one_line(args, message):
    if "tf_flowers" in " ".join(args) or "mnist" in " ".join(args):
        pytest.importorskip("tensorflow_datasets")
    result = run_cli(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_folder_errors_get_one_line(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    one = make_folder(tmp_path / "one", {"cats": 2})
    for args, message in (
        (["run", "mlp_bn", "--dataset", str(tmp_path / "file.txt")], "is not a folder"),
        (["run", "mlp_bn", "--dataset", f"folder:{one}"], "has only 1 class (cats); at least 2 class folders are needed"),
        (["data", "info", str(one)], "has only 1 class (cats)"),
    ):
        result = run_cli(*args)
        assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr
