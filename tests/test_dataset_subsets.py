"""``classes=`` and ``per_class=``: the two parameters every dataset spec takes (issue 14, part 7)."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

import cnnreg
from cnnreg import testing
from cnnreg.kinds.datasets import Dataset, Split, class_indices
from cnnreg.datasets import build_dataset, resolve_dataset
from cnnreg.errors import ParameterError
from cnnreg.testing import run_cli
from test_datasets import make_folder, mocked_tfds  # noqa: F401  (tests/ is on sys.path: pytest's prepend mode)


def load(text: str) -> Dataset:
    return build_dataset(*resolve_dataset(text))


def rows_of(subset: Split, full: Split) -> list[int]:
    """Where each image of ``subset`` sits in ``full`` (the arrays are the same pixels)."""
    flat = full.x.reshape(len(full.x), -1)
    return [int(np.flatnonzero((flat == image.reshape(-1)).all(axis=1))[0]) for image in subset.x]


# --- digits --------------------------------------------------------------------------------------


def test_digits_subset_keeps_relabels_and_caps_the_training_split():
    full, part = load("digits"), load("digits:classes=5-9,per_class=10")
    assert part.class_names == ["5", "6", "7", "8", "9"] and part.num_classes == 5
    assert np.bincount(part.train.y).tolist() == [10] * 5
    for name in ("validation", "test"):  # held-out splits keep every image of the kept classes
        labels = full.split(name).y
        assert np.bincount(part.split(name).y).tolist() == [int((labels == c).sum()) for c in range(5, 10)]
    # relabelled 0..4 in order: new label k is digit 5 + k, image for image
    for name in ("train", "test"):
        original = full.split(name).y[rows_of(part.split(name), full.split(name))]
        assert (original == part.split(name).y + 5).all()
    assert part.default_input_shape == full.default_input_shape and "subset: classes 5-9 (5 of 10)" in part.description


def test_class_lists_names_and_ranges():
    names = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    assert class_indices("daisy,tulips", names) == [0, 4]
    assert class_indices("Tulips,0", names) == [0, 4]  # names case-insensitively, indices too
    assert class_indices("dandelion-sunflowers", names) == [1, 2, 3]
    assert class_indices("3,1-2,1", names) == [1, 2, 3]  # a set: order and repeats do not matter
    assert class_indices("2", ["1", "10", "2"]) == [2]  # a name wins over an index
    assert class_indices("t-shirt", ["t-shirt", "bag"]) == [0]  # a name with a dash is not a range
    assert load("digits:classes=9,5,7").class_names == ["5", "7", "9"]


def test_per_class_draw_is_seeded_nested_and_independent_of_the_other_classes():
    ten = load("digits:classes=5-9,per_class=10")
    again = load("digits:classes=5-9,per_class=10")
    assert (ten.train.x == again.train.x).all() and (ten.train.y == again.train.y).all()
    five = load("digits:classes=5-9,per_class=5")
    assert {x.tobytes() for x in five.train.x} <= {x.tobytes() for x in ten.train.x}  # 5 per class ⊂ 10 per class
    alone = load("digits:classes=5,9,per_class=10")
    fives = lambda d: {x.tobytes() for x, y in zip(d.train.x, d.train.y) if y == 0}  # noqa: E731
    assert fives(alone) == fives(ten)
    other = load("digits:classes=5-9,per_class=10,split_seed=7")  # the draw follows the split's seed
    assert {x.tobytes() for x in other.train.x} != {x.tobytes() for x in ten.train.x}


def test_per_class_is_a_cap_stratified_by_class():
    x = np.zeros((40, 4, 4, 1), "float32") + np.arange(40, dtype="float32")[:, None, None, None]
    y = np.array([0] * 30 + [1] * 6 + [2] * 4)
    data = Dataset("toy", ["a", "b", "c"], train=Split(x, y), test=Split(x[:5], y[:5]))
    capped = data.select(per_class=8, seed=3)
    assert np.bincount(capped.train.y).tolist() == [8, 6, 4] and capped.class_names == ["a", "b", "c"]
    assert capped.sizes() == {"train": 18, "test": 5}
    only_c = data.select([2], seed=3)
    assert only_c.test is None and only_c.sizes() == {"train": 4}  # a split left empty is dropped
    with pytest.raises(ParameterError, match="per_class must be >= 1"):
        data.select(per_class=0)


# --- every dataset: folders, plugins, TFDS streams -----------------------------------------------


def test_folder_subset_by_class_names(tmp_path):
    root = make_folder(tmp_path / "pets", {"cat": 10, "dog": 10, "fox": 10}, formats=("png",))
    data = load(f"folder:{root},classes=dog,fox,per_class=3")
    assert data.class_names == ["dog", "fox"] and data.train.kind == "files"
    assert np.bincount(data.train.y).tolist() == [3, 3]
    for split in data.splits().values():
        for path, label in zip(split.files, split.y):
            assert f"/{data.class_names[label]}/" in path
    full = load(str(root))
    for name in ("validation", "test"):  # every held-out dog and fox, none of the cats
        assert sorted(data.split(name).files) == sorted(f for f, y in zip(full.split(name).files, full.split(name).y) if y)
    result = run_cli("data", "info", f"folder:{root},classes=1-2", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)["dataset"]
    assert info["classes"] == ["dog", "fox"] and info["total"] == 20 and info["dataset"].endswith(",classes=1-2")


def test_unknown_class_name_suggests_the_closest(tmp_path):
    root = make_folder(tmp_path / "pets", {"cat": 3, "dog": 3}, formats=("png",))
    with pytest.raises(ParameterError) as caught:
        load(f"folder:{root},classes=dgo")
    message = str(caught.value)
    assert "no class 'dgo'; did you mean 'dog'?" in message and "names cat, dog" in message and "\n" not in message


def _stripes_plugin():
    """A plugin dataset in the file-less array form, with its own ``per_class`` parameter."""
    module = types.ModuleType("stripesplug")

    def stripes(per_class: int = 4):
        """``per_class`` here is how many images the plugin makes of each class (its own meaning)."""
        y = np.repeat(np.arange(3), per_class)
        x = np.zeros((len(y), 4, 4, 1), "float32") + y[:, None, None, None]
        return Dataset("stripes", ["h", "v", "d"], train=Split(x, y), test=Split(x, y))

    @cnnreg.hookimpl
    def register_datasets(registry):
        registry.add("stripes", stripes, summary="stripes")

    module.register_datasets = register_datasets
    return module


def test_a_plugin_dataset_gets_classes_and_keeps_its_own_parameter_of_the_same_name():
    with testing.plugin(_stripes_plugin(), name="stripesplug"):
        data = load("stripes:per_class=6,classes=v-d")
        assert data.class_names == ["v", "d"] and np.bincount(data.train.y).tolist() == [6, 6]  # the plugin's per_class
        assert load("synthetic:classes=3").num_classes == 3  # synthetic's own classes= (how many it generates)


def test_a_streaming_tfds_split_is_filtered_and_relabelled(mocked_tfds):  # noqa: F811
    data = load("tf_flowers:classes=daisy,tulips,per_class=2")
    assert data.class_names == ["daisy", "tulips"] and data.train.kind == "examples"
    assert len(data.train) == len(data.train.y) <= 4 and set(data.train.y.tolist()) <= {0, 1}
    seen = [int(label) for _, label in data.train.examples.as_numpy_iterator()]
    assert seen == data.train.y.tolist()  # the stream yields exactly the labels the split reports
    tests = [int(label) for _, label in data.test.examples.as_numpy_iterator()]
    assert tests == data.test.y.tolist() and len(tests) == len(data.test)


# --- mistakes: one line, exit status 2 -----------------------------------------------------------


@pytest.mark.parametrize("spec, message", [
    ("digits:classes=12", "dataset 'digits': classes=12: no class '12' (valid: 0-9, a range such as 0-4"),
    ("digits:classes=5-12", "no class '12'"),
    ("digits:classes=9-5", "the range '9-5' is empty; write 5-9"),
    ("digits:per_class=0", "dataset 'digits' parameter 'per_class' must be >= 1 (got 0)"),
    ("digits:per_class=many", "parameter 'per_class' must be an integer (got 'many')"),
    ("digits:clases=5", "unknown parameter 'clases' for dataset 'digits'; did you mean 'classes'?"),
])
def test_bad_subsets_are_one_line_and_exit_2(spec, message):
    for args in (("data", "info", spec), ("run", "mlp_bn", "--dataset", spec, "--epochs", "1", "--dry-run")):
        result = run_cli(*args)
        assert result.exit_code == 2, result.output
        assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr


# --- runs: the manifest keeps the spec, rerun reproduces it --------------------------------------


def test_run_records_the_subset_and_rerun_reproduces_it(tmp_path):
    spec = "digits:classes=5-9,per_class=10"
    args = ["--dataset", spec, "--input-shape", "8x8x1", "--epochs", "2", "--batch-size", "16", "--quiet"]
    first = run_cli("run", "mlp_bn", *args, "--run-dir", str(tmp_path / "one"))
    assert first.exit_code == 0, first.output
    manifest = json.loads((tmp_path / "one" / "run.json").read_text())
    assert manifest["config"]["dataset"] == spec and manifest["resolved"]["dataset"]["spec"] == spec
    assert manifest["resolved"]["dataset"]["params"] == {"classes": "5-9", "per_class": 10}
    assert manifest["class_names"] == ["5", "6", "7", "8", "9"] and manifest["data"]["train"] == 50
    second = run_cli("rerun", str(tmp_path / "one"), "--run-dir", str(tmp_path / "two"), "--quiet")
    assert second.exit_code == 0, second.output
    again = json.loads((tmp_path / "two" / "run.json").read_text())
    assert again["data"] == manifest["data"] and again["class_names"] == manifest["class_names"]
    header, *_, last = (tmp_path / "one" / "history.csv").read_text().splitlines()
    rerun_last = (tmp_path / "two" / "history.csv").read_text().splitlines()[-1]
    for key in ("loss", "val_loss"):  # same images, same seed: same losses
        i = header.split(",").index(key)
        assert float(last.split(",")[i]) == pytest.approx(float(rerun_last.split(",")[i]), abs=1e-6)
