"""The fifth kind, ``weights`` (issue 14): one declaration per kind, WeightsEntry's checks, the
built-in keras.applications entries checked against Keras' own source, and `cnnreg list weights`
/ `cnnreg show NAME` (no keras import, at the terminal's width)."""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import inspect
import json
import subprocess
import sys
import types
import warnings

import pytest
from rich.cells import cell_len

import cnnreg
from cnnreg import hookspecs, kinds, plugins, registry, testing
from cnnreg.builtin.weights import applications as keras_weights
from cnnreg.builtin.architectures.applications import APPLICATIONS
from cnnreg.errors import CnnregError
from cnnreg.kinds import KindSpec, normalize_kind
from cnnreg.testing import run_cli
from cnnreg.kinds.weights import WeightsEntry, WeightsFile, entry_of

SHA = "sha256:" + "ab" * 32
MD5 = "md5:" + "cd" * 16


# --- one declaration per kind ------------------------------------------------------------------


def test_the_public_kind_names_follow_the_table():
    specs = registry.KIND_SPECS
    assert registry.KINDS == tuple(k.name for k in specs) == (
        "architecture", "initialiser", "regulariser", "dataset", "weights", "attack", "optimizer", "schedule", "logger")
    assert registry.SUPPLIED["architecture"] == ("input_shape", "num_classes")
    assert registry.SUPPLIED["weights"] == ("entry",)
    assert registry.FRAMEWORK["architecture"][:2] == ("input_shape", "num_classes")
    assert "include_top" in registry.FRAMEWORK["architecture"]
    assert plugins.KIND_HOOKS == {k.name: k.hook for k in specs}
    assert plugins.KIND_HOOKS["weights"] == "register_weights"
    from cnnreg.registry import KINDS, SUPPLIED  # the old imports still work

    assert KINDS == registry.KINDS and SUPPLIED == registry.SUPPLIED


@pytest.mark.parametrize("word", ["weights", "weight", "zoo", "pretrained", "Weights "])
def test_words_for_weights(word):
    assert normalize_kind(word) == "weights"


@pytest.mark.parametrize("word, kind", [("archs", "architecture"), ("initializer", "initialiser"),
                                        ("reg", "regulariser"), ("data", "dataset")])
def test_the_old_words_still_work(word, kind):
    assert normalize_kind(word) == kind


def test_every_kind_hook_is_a_documented_hookspec():
    for kind in registry.KIND_SPECS:
        hook = getattr(hookspecs, kind.hook)
        assert hook.cnnreg_spec is not None  # pluggy's marker
        assert inspect.getdoc(hook) == inspect.cleandoc(kind.doc) and len(inspect.getdoc(hook)) > 40
        assert list(inspect.signature(hook).parameters) == ["registry"]
    assert inspect.getdoc(hookspecs.register_commands)
    host = plugins.get_host()
    for name in [*plugins.KIND_HOOKS.values(), "register_commands"]:
        assert getattr(host.pm.hook, name).has_spec()


GADGET = KindSpec("gadget", "gadgets", words=("gizmo", "gizmos"), supplied=("size",),
                  doc="Add gadgets: the factory returns a gadget.\n\nThrow-away kind of a test.")


def small_gadget(size: int = 1, colour: str = "red"):
    """A small gadget."""
    return ("gadget", size, colour)


def test_a_new_kind_is_one_entry_in_the_table(monkeypatch):
    """A throw-away kind gets words, a hook (with pluggy validation), a registry bucket, `cnnreg
    list KIND`, `show`, `plugins` and `--json`, from its one KindSpec."""
    monkeypatch.setattr(kinds, "KIND_SPECS", (*kinds.KIND_SPECS, GADGET))
    assert normalize_kind("gizmos") == "gadget"
    assert registry.KINDS[-1] == "gadget" and registry.SUPPLIED["gadget"] == ("size",)
    assert plugins.KIND_HOOKS["gadget"] == "register_gadgets"
    assert inspect.getdoc(hookspecs.kind_hookspecs()["register_gadgets"]).startswith("Add gadgets")

    module = types.ModuleType("gadget_plugin")

    @cnnreg.hookimpl
    def register_gadgets(registry):
        registry.add("small", small_gadget, aliases=("tiny",))

    module.register_gadgets = register_gadgets
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unknown hook would warn
        with testing.isolated(), testing.plugin(module, distribution="cnnreg-gadgets") as reg:
            component = reg.get("gadget", "tiny")
            assert component.provider == "cnnreg-gadgets"
            assert [p.name for p in component.parameters()] == ["colour"]  # size is supplied
            assert reg.build("gadget", "small=blue", size=3) == ("gadget", 3, "blue")

            listed = run_cli("list", "gizmos")
            assert listed.exit_code == 0, listed.stderr
            assert "gadgets (1)" in listed.stdout and "small" in listed.stdout
            data = json.loads(run_cli("list", "--json").stdout)["components"]
            assert {"kind": "gadget", "name": "small"}.items() <= next(c for c in data if c["kind"] == "gadget").items()
            shown = run_cli("show", "gadget/small")
            assert shown.exit_code == 0 and "colour" in shown.stdout
            info = json.loads(run_cli("plugins", "--json").stdout)["plugins"]
            assert next(p for p in info if p["name"] == "gadget_plugin")["hooks"] == ["register_gadgets"]
            missing = run_cli("show", "gadget/big")
            assert missing.exit_code == 2 and "unknown gadget 'big' (valid: small)" in missing.stderr


def test_a_plugin_with_a_wrong_argument_in_a_new_kinds_hook_fails_validation(monkeypatch):
    monkeypatch.setattr(kinds, "KIND_SPECS", (*kinds.KIND_SPECS, GADGET))
    module = types.ModuleType("bad_gadget_plugin")

    @cnnreg.hookimpl
    def register_gadgets(registry, extra):
        pass

    module.register_gadgets = register_gadgets
    with pytest.warns(UserWarning, match="bad_gadget_plugin.*cannot be loaded"):
        with testing.isolated(), testing.plugin(module) as reg:
            assert reg.host.plugins["bad_gadget_plugin"].status == "failed"


# --- WeightsEntry --------------------------------------------------------------------------------


def entry_dict(**changes):
    data = {
        "name": "lenet5.digits",
        "architecture": "lenet5",
        "num_classes": 3,
        "input_shape": [32, 32, 1],
        "files": {"model": {"url": "lenet5.digits/lenet5.digits.keras", "hash": SHA,
                            "filename": "lenet5.digits.keras", "size": 123}},
        "class_names": ["a", "b", "c"],
        "metrics": [{"dataset": "digits", "split": "test", "accuracy": 0.97}],
        "manifest": {"command": "cnnreg run lenet5 --dataset digits", "seed": 0, "nested": {"x": [1, 2.5, None]}},
    }
    data.update(changes)
    return data


def test_an_entry_round_trips_through_json():
    entry = WeightsEntry.from_dict(entry_dict(), where="zoo.json")
    assert entry.arch_name == "lenet5" and entry.tag == "digits" and entry.input_shape == (32, 32, 1)
    assert entry.files["model"].algorithm == "sha256" and entry.metric("accuracy") == 0.97
    again = WeightsEntry.from_dict(json.loads(json.dumps(entry.to_dict())), where="zoo.json")
    assert again == entry
    assert "name" not in entry.to_metadata() and entry.to_metadata()["num_classes"] == 3


@pytest.mark.parametrize("changes, field", [
    ({"name": "lenet5"}, "name"),
    ({"name": "../x.y"}, "name"),
    ({"num_classes": "3"}, "num_classes"),
    ({"num_classes": True}, "num_classes"),
    ({"num_classes": 0}, "num_classes"),
    ({"input_shape": [32, 32]}, "input_shape"),
    ({"input_shape": [32, 32, 1.5]}, "input_shape"),
    ({"architecture": "lenet5:"}, "architecture"),
    ({"architecture": 5}, "architecture"),
    ({"files": {}}, "files"),
    ({"files": []}, "files"),
    ({"class_names": ["a", "b"]}, "class_names"),
    ({"class_names": "abc"}, "class_names"),
    ({"metrics": [{"dataset": "digits", "accuracy": 0.9}]}, "metrics[0].split"),
    ({"metrics": [{"dataset": "digits", "split": "test", "accuracy": float("nan")}]}, "metrics[0].accuracy"),
    ({"metrics": [{"dataset": "digits", "split": "te\nst", "accuracy": 0.9}]}, "metrics[0].split"),
    ({"metrics": [{"dataset": "digits", "split": "test", "note": "\x1b[2J"}]}, "metrics[0].note"),
    ({"metrics": [{"dataset": "digits", "split": "test", "a\rb": 0.9}]}, "metrics[0]"),
    ({"parameters": -1}, "parameters"),
    ({"license": ["MIT"]}, "license"),
    ({"preprocess": "import os; os.system('x')"}, "preprocess"),
    ({"manifest": {"x": {1, 2}}}, "manifest.x"),
    ({"manifest": "cnnreg run"}, "manifest"),
    ({"extra": 1}, "extra"),
])
def test_every_field_is_checked(changes, field):
    with pytest.raises(CnnregError) as caught:
        WeightsEntry.from_dict(entry_dict(**changes), where="zoo.json at /z")
    message = str(caught.value)
    assert message.startswith(f"zoo.json at /z: field '{field}'"), message
    assert "\n" not in message


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "ftp://host/x.keras", "../x.keras", "a/../../x.keras", "/abs/x.keras",
    "C:\\x.keras", "c:x.keras", "https://", "https://host/a/../b.keras", "hf://user", "hf://user/repo",
    "a b.keras", "a//b.keras", "javascript:alert(1)",
])
def test_urls_are_http_hf_or_inside_the_zoo(url):
    with pytest.raises(CnnregError, match=r"zoo\.json: field 'files\.model\.url'"):
        WeightsEntry.from_dict(entry_dict(files={"model": {"url": url, "hash": SHA, "filename": "x.keras"}}),
                               where="zoo.json")


@pytest.mark.parametrize("url", ["https://example.org/w/x.keras", "http://127.0.0.1:8000/x.keras",
                                 "hf://user/repo/x.keras", "x.keras", "lenet5.digits/x.keras"])
def test_good_urls(url):
    WeightsFile(url=url, hash=SHA, filename="x.keras")


@pytest.mark.parametrize("changes, field", [
    ({"hash": "sha256:abc"}, "hash"), ({"hash": "sha1:" + "a" * 40}, "hash"), ({"hash": "a" * 64}, "hash"),
    ({"hash": "md5:" + "g" * 32}, "hash"), ({"hash": 5}, "hash"),
    ({"filename": "../x.keras"}, "filename"), ({"filename": "a/x.keras"}, "filename"),
    ({"filename": ".hidden"}, "filename"), ({"filename": "a\\x"}, "filename"),
    ({"size": "12"}, "size"), ({"size": -1}, "size"),
    ({"extra": 1}, "extra"),
])
def test_files_are_checked(changes, field):
    file = {"url": "x.keras", "hash": SHA, "filename": "x.keras", **changes}
    with pytest.raises(CnnregError, match=rf"z: field 'files\.model\.{field}'"):
        WeightsEntry.from_dict(entry_dict(files={"model": file}), where="z")


def test_hashes_are_normalised_and_md5_is_accepted():
    assert WeightsFile(url="x.h5", hash=SHA.upper().replace("SHA256", "sha256"), filename="x.h5").hash == SHA
    assert WeightsFile(url="x.h5", hash=MD5, filename="x.h5").algorithm == "md5"


def test_entry_of_a_component_that_is_not_weights():
    with pytest.raises(CnnregError, match="is not a weights entry"):
        entry_of(cnnreg.get("architecture", "lenet5"))


# --- the built-in keras.applications entries --------------------------------------------------


def test_the_table_covers_every_keras_architecture_with_imagenet_weights():
    assert set(keras_weights.FILES) == set(APPLICATIONS) == set(keras_weights.SIZES)
    names = {c.name for c in cnnreg.components("weights") if c.builtin}
    for model, (function, family, size, _min) in APPLICATIONS.items():
        assert f"keras-{model}.imagenet" in names
        assert size in keras_weights.FILES[model]
        assert family in keras_weights.LICENSES
        for (url, hash, cached), role in zip(keras_weights.FILES[model][size], ("top", "notop")):
            assert url.startswith("https://") and cached.endswith(".h5"), (model, role)
    keras_archs = {c.name[len("keras-"):] for c in cnnreg.components("architecture") if c.name.startswith("keras-")}
    assert keras_archs == set(APPLICATIONS)
    assert len(names) == sum(len(sizes) for sizes in keras_weights.FILES.values())


def test_a_builtin_entry_reads_back():
    component = cnnreg.get("weights", "keras-resnet50.imagenet")
    assert component.provider == "cnnreg" and component.builtin
    assert component.factory == "cnnreg.zoo.cache:fetch_entry"
    entry = entry_of(component)
    assert entry.architecture == "keras-resnet50" and entry.num_classes == 1000
    assert entry.input_shape == (224, 224, 3) and entry.parameters == 25_636_712 and entry.depth == 107
    assert entry.metrics[0] == {"dataset": "imagenet", "split": "validation", "top1": 0.749, "top5": 0.921,
                                "source": "https://keras.io/api/applications/"}
    assert entry.preprocess == cnnreg.get("architecture", "keras-resnet50").metadata["preprocess"]
    assert entry.files["top"].hash == "md5:2cb95161c43110f7111970584f804107"
    assert entry.class_names_file.filename == "imagenet_class_index.json"
    assert "Kaiming He" in entry.license and "Deep Residual Learning" in entry.source
    assert entry_of(cnnreg.get("weights", "keras-mobilenet.imagenet-128")).input_shape == (128, 128, 3)
    listed = json.loads(run_cli("list", "weights", "--filter", "keras-resnet50.*", "--json").stdout)["components"]
    assert [c["entry"]["parameters"] for c in listed] == [25_636_712]
    assert WeightsEntry.from_dict(listed[0]["entry"], where="list --json") == entry


#: Where each family's weights are downloaded in Keras' source (ResNetV2 goes through resnet.py).
_KERAS_MODULE = {"resnet_v2": "resnet"}


def _keras_source(family: str):
    module = importlib.import_module(f"keras.src.applications.{_KERAS_MODULE.get(family, family)}")
    return module, ast.parse(inspect.getsource(module))


def _get_file_calls(module, tree) -> list[tuple]:
    """(file name, URL, hash) of each ``get_file(...)`` call in Keras' source: the arguments as
    written there (constants, the module's constants, a name assigned a constant just before);
    None where Keras computes them; "no hash" where the call gives no file_hash."""
    assigns = [(n.lineno, n.targets[0].id, n.value) for n in ast.walk(tree)
               if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)]

    def value(node, line):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            earlier = [(ln, v) for ln, name, v in assigns if name == node.id and ln < line]
            found = value(max(earlier, key=lambda x: x[0])[1], line) if earlier else None
            constant = getattr(module, node.id, None)
            return found if found is not None else (constant if isinstance(constant, str) else None)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = value(node.left, line), value(node.right, line)
            return left + right if left is not None and right is not None else None
        return None

    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "get_file":
            keywords = {k.arg: k.value for k in node.keywords}
            digest = value(keywords["file_hash"], node.lineno) if "file_hash" in keywords else "no hash"
            calls.append((value(node.args[0], node.lineno), value(node.args[1], node.lineno), digest))
    return calls


def _keras_hash(digest: str | None) -> str:
    """Our "md5:..." / "sha256:..." as Keras writes it (the bare hex; its length says which)."""
    if digest is None:
        return "no hash"
    algorithm, hexdigits = digest.split(":")
    assert algorithm == ("sha256" if len(hexdigits) == 64 else "md5"), digest  # keras.utils.get_file's rule
    return hexdigits


@pytest.mark.parametrize("model", sorted(APPLICATIONS))
def test_urls_and_hashes_are_the_ones_keras_uses(model):
    pytest.importorskip("keras")
    family = APPLICATIONS[model][1]
    module, tree = _keras_source(family)
    calls = _get_file_calls(module, tree)
    bases = {v for k, v in vars(module).items() if k.isupper() and isinstance(v, str) and v.startswith("https://")}
    for size, files in keras_weights.FILES[model].items():
        for index, (url, digest, cached) in enumerate(files):
            keras_hash = _keras_hash(digest)
            if (cached, url, keras_hash) in calls:
                continue  # written out in one get_file call
            # computed by Keras: the URL is one of its base paths + the cached name, and the hash
            # its WEIGHTS_HASHES[variant][0 top / 1 notop] for the variant the file is named after
            assert any(url == base + cached for base in bases), (model, size, url)
            if digest is None:
                assert all(call[2] == "no hash" for call in calls), f"Keras now checks a hash for {url}"
                assert size in _input_sizes(tree), (model, size)
                continue
            table = getattr(module, "WEIGHTS_HASHES", None)
            assert table is not None, f"no get_file call in {module.__name__} downloads {url} with {digest}"
            assert [k for k, v in table.items() if v[index] == keras_hash and k in cached], (model, url, digest)


def _input_sizes(tree) -> set[int]:
    """The sizes in ``rows not in [128, 160, ...]``: the input sizes Keras has weights for."""
    sizes = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.NotIn)
                and getattr(node.left, "id", "") == "rows" and isinstance(node.comparators[0], ast.List)):
            sizes |= {e.value for e in node.comparators[0].elts if isinstance(e, ast.Constant)}
    return sizes


def test_mobilenet_entries_cover_every_input_size_keras_has_weights_for():
    pytest.importorskip("keras")
    for model, family in (("mobilenet", "mobilenet"), ("mobilenetv2", "mobilenet_v2")):
        assert set(keras_weights.FILES[model]) == _input_sizes(_keras_source(family)[1])


def test_the_class_names_file_is_the_one_keras_uses():
    pytest.importorskip("keras")
    module, tree = _keras_source("imagenet_utils")
    url, digest, cached = keras_weights.CLASS_INDEX
    assert (cached, url, _keras_hash(digest)) in _get_file_calls(module, tree)


@pytest.mark.parametrize("model", ["mobilenetv3small", "mobilenet"])
def test_parameters_are_exact_counts(model):
    keras = pytest.importorskip("keras")
    function, _family, size, _min = APPLICATIONS[model]
    built = getattr(keras.applications, function)(weights=None, input_shape=(size, size, 3))
    assert keras_weights.SIZES[model][size][0] == built.count_params()


# --- cnnreg list weights / show ------------------------------------------------------------------


@pytest.mark.parametrize("width", [60, 80, 120])
def test_list_weights_is_one_line_per_entry_at_the_width(width, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    result = run_cli("list", "weights")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(cell_len(line.rstrip()) <= width for line in lines), max(lines, key=cell_len)
    rows = [line for line in lines if "│" in line]
    names = [c["name"] for c in json.loads(run_cli("list", "weights", "--json").stdout)["components"]]
    assert [row.split()[0] for row in rows] == names
    resnet = next(row for row in rows if row.startswith("keras-resnet50.imagenet "))
    assert "1000" in resnet and "74.9%" in resnet
    assert lines[0].startswith(f"weights ({len(names)}), all from cnnreg")
    header = lines[1]
    assert "classes" in header and "top-1" in header
    assert ("size/source" in header) == (width >= 80)


def test_list_weights_with_a_plugin_shows_the_provider_and_the_file_size(monkeypatch):
    module = types.ModuleType("acme_weights")
    entry = WeightsEntry.from_dict(entry_dict(name="acmenet.cifar10", architecture="lenet5",
                                              files={"model": {"url": "hf://acme/acmenet/acmenet.keras", "hash": SHA,
                                                               "filename": "acmenet.keras", "size": 1_203_456}}),
                                   where="test")

    @cnnreg.hookimpl
    def register_weights(registry):
        registry.add(entry.name, "cnnreg.zoo.cache:fetch_entry", summary="AcmeNet", **entry.to_metadata())

    module.register_weights = register_weights
    monkeypatch.setenv("COLUMNS", "100")
    with testing.isolated(), testing.plugin(module, distribution="cnnreg-acme") as reg:
        assert entry_of(reg.get("weights", "acmenet.cifar10")) == entry
        out = run_cli("list", "weights", "--filter", "acme*", "--provider", "cnnreg-acme").stdout
        assert "1.2 MB" in out and "97.0%" in out and "all from cnnreg-acme 0.0.0" in out
        out = run_cli("list", "weights", "--filter", "*net*").stdout  # two providers: a column
        assert "provider" in out.splitlines()[1] and "cnnreg-acme" in out
        shown = run_cli("show", "acmenet.cifar10").stdout
        assert "3: a, b, c" in shown and "digits test: accuracy 97.0%" in shown
        assert "cnnreg run lenet5 --dataset digits" in shown and "1,203,456 bytes" in shown


def test_show_a_keras_entry(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = run_cli("show", "keras-resnet50.imagenet")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in ("keras-resnet50", "224x224x3", "keras.applications.resnet:preprocess_input", "1000, names in",
                 "imagenet validation: top-1 74.9%, top-5 92.1%", "25,636,712 parameters", "depth 107",
                 "MIT", "Deep Residual", "md5:2cb95161c43110f7111970584f804107",
                 "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
                 "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
                 "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"):
        assert text in out, text
    # everything but the URLs (each whole on its own line) fits 80 columns
    assert all(cell_len(line) <= 80 for line in out.splitlines() if "://" not in line)
    data = json.loads(run_cli("show", "weights/keras-resnet50.imagenet", "--json").stdout)["component"]
    assert data["kind"] == "weights" and data["entry"]["parameters"] == 25_636_712
    assert data["metadata"]["files"]["top"]["hash"] == "md5:2cb95161c43110f7111970584f804107"
    mobile = run_cli("show", "keras-mobilenet.imagenet-160").stdout
    assert "no hash published: cannot be verified" in mobile


def test_unknown_weights_name_suggests_the_closest():
    result = run_cli("show", "weights/keras-resnet50.imagenett")
    assert result.exit_code == 2
    assert "did you mean 'keras-resnet50.imagenet'" in result.stderr and "cnnreg list weights" in result.stderr


PROBE = """
import sys, json
from cnnreg.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'keras', 'tensorflow', 'jax', 'torch'})
sys.stderr.write('HEAVY=' + json.dumps(heavy) + '\\n')
"""


@pytest.mark.parametrize("args", [
    ["list", "weights"], ["list", "weights", "--json"], ["list", "zoo", "--filter", "keras-vgg*"],
    ["show", "keras-resnet50.imagenet"], ["show", "keras-resnet50.imagenet", "--json"],
])
def test_weights_commands_import_no_heavy_framework(args, subprocess_env):
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          env=subprocess_env, timeout=60)
    line = [l for l in proc.stderr.splitlines() if l.startswith("HEAVY=")]
    assert line, proc.stderr
    assert json.loads(line[0][len("HEAVY="):]) == [], f"cnnreg {' '.join(args)} imported a heavy framework"
    assert "keras-resnet50.imagenet" in proc.stdout or "keras-vgg16.imagenet" in proc.stdout


# --- zoos found through CNNREG_ZOO -------------------------------------------------------------------


def test_zoo_warnings_become_one_line_plugin_warnings(monkeypatch):
    """The weights kind's built-in plugin defers cnnreg.zoo.index.register_zoos until the kind is
    first read and reports each line it returns in one line; the zoo's entries are registered."""
    fake = types.ModuleType("cnnreg.zoo.index")
    fake.__spec__ = importlib.machinery.ModuleSpec("cnnreg.zoo.index", None)

    def register_zoos(reg):
        view = reg.view("weights", provider="zoo:/somewhere", version="", plugin="zoo")
        entry = WeightsEntry.from_dict(entry_dict(), where="test")
        view.add(entry.name, "cnnreg.zoo.cache:fetch_entry", summary="LeNet-5 on digits", **entry.to_metadata())
        view.commit()
        return ["zoo http://127.0.0.1:9/zoo.json cannot be reached (connection refused); its entries are left out"]

    fake.register_zoos = register_zoos
    monkeypatch.setitem(sys.modules, "cnnreg.zoo.index", fake)
    monkeypatch.setenv("CNNREG_ZOO", "http://127.0.0.1:9/zoo.json")  # read by the fake alone
    with testing.isolated() as reg:  # the zoos load when the weights kind is first read, not before
        assert reg.get("architecture", "lenet5").builtin and reg._deferred["weights"]
    with pytest.warns(plugins.CnnregPluginWarning, match=r"^zoo http://127\.0\.0\.1:9/zoo\.json cannot be reached"):
        with testing.isolated() as reg:
            assert reg.get("weights", "lenet5.digits").provider == "zoo:/somewhere"
    result = run_cli("list", "weights", "--filter", "lenet*")
    assert result.exit_code == 0 and "lenet5.digits" in result.stdout
    assert result.stderr.count("\n") == 1 and "cannot be reached" in result.stderr
