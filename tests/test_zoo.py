"""The zoo with real parts: a lenet5 run published into a folder, served by a real HTTP server on
127.0.0.1, listed and pulled through CNNREG_ZOO; tampered files, a silent server, a proxy that
cannot be reached and hostile zoo.json files.  Every address is loopback."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cnnreg.testing import run_cli

PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
                   "NO_PROXY", "no_proxy")


# --- real parts -----------------------------------------------------------------------------------

class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """An HTTP server for ``folder`` on 127.0.0.1 (a free port), in a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def silent_port():
    """A 127.0.0.1 port that accepts connections (the kernel completes them) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def closed_port() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def zoo_warnings(result, text: str) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning:") and text in line]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """One completed lenet5 run on digits (1 epoch) published into a zoo folder: (run, zoo)."""
    root = tmp_path_factory.mktemp("zoo")
    run = root / "run"
    result = run_cli("run", "lenet5", "--dataset", "digits", "--epochs", "1", "--batch-size", "64", "--quiet",
                     "--run-dir", str(run))
    assert result.exit_code == 0, result.output
    zoo = root / "zoo"
    result = run_cli("publish", str(run), str(zoo), "--license", "MIT")
    assert result.exit_code == 0, result.output
    return run, zoo


@pytest.fixture(autouse=True)
def _environment(tmp_path, monkeypatch):
    """A cache of the test's own, no zoo, no proxy (a developer's proxy must not see loopback)."""
    monkeypatch.setenv("CNNREG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNREG_ZOO", raising=False)
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def copy_zoo(zoo: Path, tmp_path: Path) -> Path:
    target = tmp_path / "served"
    shutil.copytree(zoo, target)
    return target


def entry_json(zoo: Path) -> dict:
    return json.loads((zoo / "zoo.json").read_text())["entries"][0]


def write_zoo(folder: Path, *entries) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zoo.json").write_text(json.dumps({"cnnreg_zoo": 1, "entries": list(entries)}))
    return folder


# --- publish --------------------------------------------------------------------------------------

def test_publish_writes_weights_card_recipe_and_an_index(published, tmp_path):
    from cnnreg.training.config import rerun_config
    from cnnreg.training.rundir import load_manifest, run_config
    from cnnreg.files import sha256_of
    from cnnreg.kinds.weights import WeightsEntry

    run, zoo = published
    folder = zoo / "lenet5.digits"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "confusion.png", "curves.png", "lenet5.digits.keras", "run.json"]
    entry = WeightsEntry.from_dict(entry_json(zoo), where="test")
    model = entry.files["model"]
    assert model.url == "lenet5.digits/lenet5.digits.keras" and model.hash == sha256_of(folder / "lenet5.digits.keras")
    assert model.size == (run / "model.keras").stat().st_size and model.hash == sha256_of(run / "model.keras")
    assert (entry.architecture, entry.dataset, entry.num_classes, entry.input_shape) == ("lenet5", "digits", 10, (32, 32, 1))
    assert entry.class_names == tuple(str(i) for i in range(10)) and entry.license == "MIT"
    assert entry.parameters == 61706  # LeNet-5's count, read from the .keras file without keras
    test = entry.metrics[0]
    manifest = load_manifest(run)
    assert test["split"] == "test" and test["top1"] == manifest["test"]["accuracy"] and 0 <= test["top5"] <= 1
    assert entry.manifest["config"] == manifest["config"] and "process" not in entry.manifest
    # the card: YAML front matter (tests/test_model_card.py parses it), then metrics, pictures and the exact command
    card = (folder / "README.md").read_text()
    front = card.split("---\n")[1]
    assert "license: mit\n" in front and re.search(f'\n  sha256: "?{model.hash.split(":")[1]}"?\n', front)
    assert "  architecture: lenet5\n" in front and "  cnnreg_version: " in front and "null" not in front
    assert "split: test" in front and "![confusion matrix](confusion.png)" in card and "(curves.png)" in card
    assert shlex.join(manifest["command"]) in card  # (in-process, the command is pytest's argv)
    # the recipe beside the card is a run directory for `cnnreg rerun`
    assert rerun_config(folder, []) == run_config(manifest, run)
    assert not [p for p in zoo.rglob("*") if ".tmp" in p.name]
    assert sorted(p.name for p in zoo.iterdir()) == ["lenet5.digits", "zoo.json"]  # no lock file in a served folder


def test_publish_again_replaces_the_entry_of_that_name(published, tmp_path):
    run, zoo = published
    target = copy_zoo(zoo, tmp_path)
    result = run_cli("publish", str(run), str(target), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)["published"]
    assert out["entries"] == 1 and out["replaced"] == entry_json(zoo)["files"]["model"]["hash"]
    assert any("replaced the entry lenet5.digits" in note for note in out["notes"])
    other = run_cli("publish", str(run), str(target), "--name", "lenet5.digits-v2")
    assert other.exit_code == 0, other.output
    names = [e["name"] for e in json.loads((target / "zoo.json").read_text())["entries"]]
    assert names == ["lenet5.digits", "lenet5.digits-v2"]


def test_publish_refuses_what_is_not_a_run_or_not_a_zoo(published, tmp_path):
    run, _ = published
    cases = []
    cases.append(((str(tmp_path), str(tmp_path / "z")), "is not a cnnreg run directory"))
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run / "run.json", bare / "run.json")
    cases.append(((str(bare), str(tmp_path / "z")), "model.keras in"))
    linked = tmp_path / "linked"
    linked.mkdir()
    shutil.copy(run / "run.json", linked / "run.json")
    (linked / "model.keras").symlink_to(run / "model.keras")
    cases.append(((str(linked), str(tmp_path / "z")), "leads outside the run directory"))
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "zoo.json").write_text("{not json")
    cases.append(((str(run), str(damaged)), "fix or remove it"))
    cases.append(((str(run), str(tmp_path / "z"), "--name", "resnet50.digits"), "must start with the run's architecture"))
    cases.append(((str(run), str(tmp_path / "z"), "--name", "../x"), "is not ARCH.TAG"))
    cases.append(((str(run), str(run / "run.json")), "is a file"))
    cases.append(((str(run), "http://127.0.0.1:1/zoo"), "DEST is a folder or hf://USER/REPO"))
    for args, text in cases:
        result = run_cli("publish", *args)
        assert result.exit_code == 2, (args, result.output)
        assert len(errors(result)) == 1 and text in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output
    assert (damaged / "zoo.json").read_text() == "{not json"  # never overwritten


# --- list and pull from a served zoo --------------------------------------------------------------

def test_list_and_pull_from_a_served_zoo(published, tmp_path, monkeypatch):
    from cnnreg.training.config import rerun_config
    from cnnreg.training.rundir import load_manifest, run_config

    run, zoo = published
    expected = entry_json(zoo)["files"]["model"]
    with serve(zoo) as url:
        monkeypatch.setenv("CNNREG_ZOO", f"{url}/zoo.json")
        listed = run_cli("list", "weights", "--json")
        assert listed.exit_code == 0, listed.output
        (found,) = [c for c in json.loads(listed.stdout)["components"] if c["name"] == "lenet5.digits"]
        assert found["provider"] == f"zoo:{url}/zoo.json" and not found["builtin"]
        pulled = run_cli("weights", "pull", "lenet5.digits", "--json")
        assert pulled.exit_code == 0, pulled.output
        item = json.loads(pulled.stdout)["pulled"]["files"]["model"]
        path = Path(item["path"])
        assert item["action"] == "downloaded" and item["hash"] == expected["hash"] and item["size"] == expected["size"]
        assert item["sha256"] == expected["hash"].partition(":")[2]  # the bare hex digest
        assert path.parent == tmp_path / "cache" and path.read_bytes() == (run / "model.keras").read_bytes()
        assert item["url"] == f"{url}/lenet5.digits/lenet5.digits.keras"
        assert json.loads(run_cli("weights", "pull", "lenet5.digits", "--json").stdout)["pulled"]["files"]["model"]["action"] == "cached"
        # a cached file that no longer matches its hash is fetched again, never used
        data = bytearray(path.read_bytes())
        data[100] ^= 0xFF
        path.write_bytes(bytes(data))
        again = run_cli("weights", "pull", "lenet5.digits")
        assert again.exit_code == 0, again.output
        assert "fetched again" in again.stdout and path.read_bytes() == (run / "model.keras").read_bytes()
        recipe = Path(json.loads(run_cli("weights", "pull", "lenet5.digits", "--json").stdout)["pulled"]["recipe"])
    assert rerun_config(recipe, []) == run_config(load_manifest(run), run)
    # the server is gone: the zoo's last copy still lists the entry, and the cached file serves
    listed = run_cli("list", "weights", "--json")
    assert listed.exit_code == 0 and "lenet5.digits" in listed.stdout
    assert len(zoo_warnings(listed, "using its copy from")) == 1, listed.stderr
    offline = run_cli("weights", "pull", "lenet5.digits", "--json")
    assert offline.exit_code == 0, offline.output
    assert json.loads(offline.stdout)["pulled"]["files"]["model"]["action"] == "cached"


def test_a_tampered_served_file_is_refused_and_never_saved(published, tmp_path, monkeypatch):
    _, zoo = published
    served = copy_zoo(zoo, tmp_path)
    weights = served / "lenet5.digits" / "lenet5.digits.keras"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    cached = tmp_path / "cache" / entry_json(zoo)["files"]["model"]["filename"]
    with serve(served) as url:
        monkeypatch.setenv("CNNREG_ZOO", f"{url}/zoo.json")
        result = run_cli("weights", "pull", "lenet5.digits")
        assert result.exit_code == 2 and len(errors(result)) == 1, result.output
        assert "does not match its sha256" in result.stderr and "nothing was saved" in result.stderr
        assert not cached.exists() and not [p for p in cached.parent.iterdir() if p.is_file()]
        # a bad cached copy and a bad served file: refused, the cached copy is not used either
        cached.write_bytes(b"not the weights")
        result = run_cli("weights", "pull", "lenet5.digits")
        assert result.exit_code == 2 and len(errors(result)) == 1 and "did not match either" in result.stderr


# --- offline, silent, proxy -----------------------------------------------------------------------

def test_an_unreachable_zoo_is_one_warning_and_the_rest_is_listed(published, monkeypatch):
    _, zoo = published
    with silent_port() as port:
        silent = f"http://127.0.0.1:{port}/zoo.json"
        monkeypatch.setenv("CNNREG_ZOO", f"{silent},{zoo}")
        start = time.monotonic()
        listed = run_cli("list", "weights", "--json")
        took = time.monotonic() - start
    assert listed.exit_code == 0, listed.output
    assert took < 8, f"an unreachable zoo held `cnnreg list` for {took:.1f} s"
    (warning,) = zoo_warnings(listed, silent)
    assert "cannot be reached" in warning and "no answer within" in warning
    assert [c["provider"] for c in json.loads(listed.stdout)["components"] if c["name"] == "lenet5.digits"] == [f"zoo:{zoo}"]


def test_a_silent_server_fails_a_pull_in_one_line_within_10_s_and_the_file_can_be_put_by_hand(published, tmp_path, monkeypatch):
    run, zoo = published
    entry = entry_json(zoo)
    with silent_port() as port:
        entry["files"]["model"]["url"] = f"http://127.0.0.1:{port}/lenet5.digits.keras"
        monkeypatch.setenv("CNNREG_ZOO", str(write_zoo(tmp_path / "remote", entry)))
        start = time.monotonic()
        result = run_cli("weights", "pull", "lenet5.digits")
        took = time.monotonic() - start
    assert result.exit_code == 2 and len(errors(result)) == 1, result.output
    assert took < 10, f"a silent server held the pull for {took:.1f} s"
    by_hand = tmp_path / "cache" / entry["files"]["model"]["filename"]
    assert f"http://127.0.0.1:{port}/lenet5.digits.keras" in result.stderr and "no answer within" in result.stderr
    assert f"put the file there by hand: {by_hand}" in result.stderr
    by_hand.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(run / "model.keras", by_hand)  # as the line says: then it is used, without the network
    result = run_cli("weights", "pull", "lenet5.digits", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["pulled"]["files"]["model"]["action"] == "cached"


def test_proxy_variables_aimed_at_a_closed_port_are_one_line(published, tmp_path, monkeypatch):
    _, zoo = published
    proxy = f"http://127.0.0.1:{closed_port()}"
    entry = entry_json(zoo)
    with serve(zoo) as url:
        for name in ("HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, proxy)
        monkeypatch.setenv("CNNREG_ZOO", f"{url}/zoo.json")
        listed = run_cli("list", "weights")
        assert listed.exit_code == 0, listed.output
        (warning,) = zoo_warnings(listed, url)
        assert f"through the proxy {proxy}" in warning and "NO_PROXY" in warning
        entry["files"]["model"]["url"] = f"{url}/lenet5.digits/lenet5.digits.keras"
        monkeypatch.setenv("CNNREG_ZOO", str(write_zoo(tmp_path / "direct", entry)))
        start = time.monotonic()
        result = run_cli("weights", "pull", "lenet5.digits")
        assert time.monotonic() - start < 10
        assert result.exit_code == 2 and len(errors(result)) == 1, result.output
        assert "the proxy cannot be reached" in result.stderr and url in result.stderr
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the way out the line names
        assert run_cli("weights", "pull", "lenet5.digits").exit_code == 0


# --- hostile zoos ---------------------------------------------------------------------------------

def _bad_filename(entry):
    entry["files"]["model"]["filename"] = "../x"


def _file_url(entry):
    entry["files"]["model"]["url"] = "file:///etc/passwd"


def _escaping_url(entry):
    entry["files"]["model"]["url"] = "../../etc/passwd"


def _wrong_types(entry):
    entry["num_classes"] = "ten"


def _shape(entry):
    entry["input_shape"] = [32, "32", None]


def _files(entry):
    entry["files"] = "lenet5.digits.keras"


def _unknown_field(entry):
    entry["factory"] = "os:system"


@pytest.mark.parametrize("spoil", [_bad_filename, _file_url, _escaping_url, _wrong_types, _shape, _files])
def test_a_hostile_entry_is_listed_and_refused_in_one_line_when_used(published, tmp_path, monkeypatch, spoil):
    """Listing checks what listing needs (the name, the fields); the rest of an entry is checked
    when it is used or shown: one line naming the zoo, the entry and the field, nothing fetched."""
    from cnnreg.errors import CnnregError
    from cnnreg.kinds.weights import entry_of
    from cnnreg.registry import Registry
    from cnnreg.zoo.index import register_zoos

    _, zoo = published
    good, bad = entry_json(zoo), entry_json(zoo)
    bad["name"] = "lenet5.bad"
    spoil(bad)
    folder = write_zoo(tmp_path / "hostile", bad, good)
    monkeypatch.setenv("CNNREG_ZOO", str(folder))
    registry = Registry()
    assert register_zoos(registry) == []
    assert [c.name for c in registry.components("weights")] == ["lenet5.bad", "lenet5.digits"]
    assert entry_of(registry.get("weights", "lenet5.digits")).name == "lenet5.digits"
    with pytest.raises(CnnregError) as caught:
        entry_of(registry.get("weights", "lenet5.bad"))
    line = str(caught.value)
    assert "\n" not in line and f"weights 'lenet5.bad' from zoo:{folder}: field '" in line, line
    for command in (["show", "lenet5.bad"], ["weights", "pull", "lenet5.bad"]):
        result = run_cli(*command)
        assert result.exit_code == 2 and errors(result) == [f"error: {line}"], result.output
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.keras"))


@pytest.mark.parametrize("spoil, problem", [
    (lambda entry: entry.update(factory="os:system"), "field 'factory' is not a field of a weights entry"),
    (lambda entry: entry.update(name="lenet5 bad"), "field 'name' must be ARCH.TAG"),
    (lambda entry: entry.update(name=["lenet5.bad"]), "field 'name' must be ARCH.TAG"),
])
def test_an_entry_that_cannot_be_listed_is_one_warning_and_the_others_register(published, tmp_path, monkeypatch,
                                                                               spoil, problem):
    from cnnreg.registry import Registry
    from cnnreg.zoo.index import register_zoos

    _, zoo = published
    good, bad = entry_json(zoo), entry_json(zoo)
    spoil(bad)
    folder = write_zoo(tmp_path / "hostile", bad, good, 7)
    monkeypatch.setenv("CNNREG_ZOO", str(folder))
    registry = Registry()
    warnings = register_zoos(registry)
    assert len(warnings) == 2 and all(line.startswith(f"zoo {folder}, entry ") for line in warnings), warnings
    assert problem in warnings[0] and "entry '#3': field 'entry' must be an object" in warnings[1], warnings
    assert all(line.endswith("; entry skipped") for line in warnings), warnings
    assert [c.name for c in registry.components("weights")] == ["lenet5.digits"]


def test_what_a_zoo_says_is_printed_on_one_line_with_control_characters_escaped(published, tmp_path, monkeypatch):
    """A listing shows entries before they are checked: their texts are escaped and cut, their
    numbers shown only when they are numbers a listing can print (10**400 is not)."""
    _, zoo = published
    good, bad = entry_json(zoo), entry_json(zoo)
    bad.update(name="lenet5.evil", architecture="lenet5\x1b[2J\nrm -rf", dataset="digits\x07", num_classes=10**400,
               parameters="many\nlines", metrics=[{"dataset": "d", "split": "te\rst", "top1": 10**400}])
    bad["files"]["model"].update(url="https://evil\x1b-x\x07.example/m.keras", size=None)
    monkeypatch.setenv("CNNREG_ZOO", str(write_zoo(tmp_path / "evil", bad, good)))
    for args in (["list", "weights"], ["list"], ["list", "weights", "--json"]):
        listed = run_cli(*args)
        assert listed.exit_code == 0 and not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", listed.output), listed.output
    table = run_cli("list", "weights", "--filter", "lenet5.*").stdout.splitlines()
    (row,) = [line for line in table if line.startswith("lenet5.evil")]
    assert re.match(r"lenet5\.evil +│ +\? │ +- │ +- │ evil\\x1b", row), row
    from cnnreg.registry import Registry
    from cnnreg.zoo.index import register_zoos

    registry = Registry()
    register_zoos(registry)
    assert registry.get("weights", "lenet5.evil").summary == "lenet5\\x1b[2J\\nrm -rf trained on digits\\x07"


@pytest.mark.parametrize("text, problem", [
    ('{"cnnreg_zoo": 1, "entries": [{"name": "a.b", "metrics": [{"top1": NaN}]}]}', "NaN is not JSON"),
    ('{"cnnreg_zoo": 1, "entries": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
])
def test_a_zoo_json_that_json_would_not_take_is_one_warning(tmp_path, monkeypatch, text, problem):
    folder = tmp_path / "zoo"
    folder.mkdir()
    (folder / "zoo.json").write_text(text)
    monkeypatch.setenv("CNNREG_ZOO", str(folder))
    listed = run_cli("list", "weights")
    assert listed.exit_code == 0, listed.output
    (warning,) = zoo_warnings(listed, f"zoo {folder}")
    assert problem in warning and "its entries are skipped" in warning, warning


def test_a_zoo_of_thousands_of_entries_lists_every_one(published, tmp_path, monkeypatch):
    """The listing of a large zoo (timed in benchmarks/zoo_scale.py: 100,000 entries) shows each
    entry once, one line each, and commands that read no weights do not read it."""
    _, zoo = published
    entry = entry_json(zoo)
    entries = [{**entry, "name": f"lenet5.t{i}"} for i in range(5000)]
    folder = write_zoo(tmp_path / "big", *entries)
    monkeypatch.setenv("CNNREG_ZOO", str(folder))
    listed = run_cli("list", "weights", "--filter", "lenet5.t*")
    assert listed.exit_code == 0, listed.output
    rows = [line.split(" ")[0] for line in listed.stdout.splitlines() if line.startswith("lenet5.t")]
    assert sorted(rows) == sorted(e["name"] for e in entries)
    (folder / "zoo.json").write_text("{not json")  # a command that reads no weights never notices
    for args in (["list", "architectures"], ["run", "lenet5", "--dry-run"]):  # (`registry or ...` once read all kinds)
        other = run_cli(*args)
        assert other.exit_code == 0 and "zoo" not in other.stderr, other.output
    assert zoo_warnings(run_cli("list", "weights"), f"zoo {folder}")


@pytest.mark.parametrize("text", ["{not json", "[]", '{"cnnreg_zoo": 2, "entries": []}', '{"cnnreg_zoo": 1, "entries": 3}'])
def test_a_zoo_json_that_is_not_one_is_one_warning(tmp_path, monkeypatch, text):
    folder = tmp_path / "zoo"
    folder.mkdir()
    (folder / "zoo.json").write_text(text)
    monkeypatch.setenv("CNNREG_ZOO", f"{folder},{tmp_path / 'nowhere'}")
    listed = run_cli("list", "weights", "--json")
    assert listed.exit_code == 0, listed.output
    assert len(zoo_warnings(listed, f"zoo {folder}")) == 1 and len(zoo_warnings(listed, "nowhere: no zoo.json")) == 1


def test_nothing_leaves_the_zoo_folder(published, tmp_path, monkeypatch):
    """A relative url that a link turns outside the folder is refused when the file is fetched."""
    from cnnreg.errors import CnnregError
    from cnnreg.zoo.cache import fetch_entry
    from cnnreg.kinds.weights import WeightsEntry

    _, zoo = published
    folder = tmp_path / "linked"
    (folder / "lenet5.digits").mkdir(parents=True)
    outside = tmp_path / "secret.keras"
    outside.write_bytes(b"secret")
    (folder / "lenet5.digits" / "lenet5.digits.keras").symlink_to(outside)
    entry = WeightsEntry.from_dict({**entry_json(zoo), "zoo": str(folder)}, where="test")
    with pytest.raises(CnnregError, match="leads outside the zoo folder"):
        fetch_entry(entry)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


# --- hf:// ----------------------------------------------------------------------------------------

def test_hf_without_huggingface_hub_or_offline_is_one_line(published, tmp_path, monkeypatch):
    run, zoo = published
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # not installed
    result = run_cli("publish", str(run), "hf://someone/zoo", "--license", "MIT")
    assert result.exit_code == 2 and len(errors(result)) == 1, result.output
    assert "needs huggingface_hub: pip install 'cnnreg[hub]'" in result.stderr
    entry = entry_json(zoo)
    entry["files"]["model"]["url"] = "hf://someone/zoo/lenet5.digits/lenet5.digits.keras"
    monkeypatch.setenv("CNNREG_ZOO", str(write_zoo(tmp_path / "hub", entry)))
    result = run_cli("weights", "pull", "lenet5.digits")
    assert result.exit_code == 2 and len(errors(result)) == 1, result.output
    assert "needs huggingface_hub" in result.stderr
    # an hf:// zoo is read with the standard library: offline is one warning
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("CNNREG_ZOO", "hf://someone/zoo")
    listed = run_cli("list", "weights")
    (warning,) = zoo_warnings(listed, "zoo hf://someone/zoo (http://127.0.0.1:")
    assert listed.exit_code == 0 and "/someone/zoo/resolve/main/zoo.json) cannot be reached" in warning


def test_an_hf_zoo_through_huggingface_hub(published, tmp_path, monkeypatch):
    """hf://someone/zoo against a stand-in Hub on 127.0.0.1 (HF_ENDPOINT): the index and the
    file come from /someone/zoo/resolve/main/..., and the hash is checked as for any zoo."""
    pytest.importorskip("huggingface_hub")
    run, zoo = published
    hub = tmp_path / "hub"
    shutil.copytree(zoo, hub / "someone" / "zoo" / "resolve" / "main")
    with serve(hub) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
        monkeypatch.setenv("CNNREG_ZOO", "hf://someone/zoo")
        pulled = run_cli("weights", "pull", "lenet5.digits", "--json")
    assert pulled.exit_code == 0, pulled.output
    item = json.loads(pulled.stdout)["pulled"]["files"]["model"]
    assert item["url"] == "hf://someone/zoo/lenet5.digits/lenet5.digits.keras" and item["action"] == "downloaded"
    assert Path(item["path"]).read_bytes() == (run / "model.keras").read_bytes()


def test_class_names_come_from_the_entry_or_its_class_names_file(tmp_path):
    from cnnreg.files import sha256_of
    from cnnreg.zoo.cache import class_names
    from cnnreg.kinds.weights import WeightsEntry

    (tmp_path / "classes.json").write_text(json.dumps({"0": ["n01", "tench"], "1": ["n02", "goldfish"], "2": ["n03", "shark"]}))
    model = {"url": "m.keras", "hash": "sha256:" + "0" * 64, "filename": "m.keras"}
    base = {"name": "net.three", "architecture": "net", "num_classes": 3, "input_shape": [8, 8, 3],
            "files": {"model": model}, "zoo": str(tmp_path)}
    listed = {**base, "class_names_file": {"url": "classes.json", "hash": sha256_of(tmp_path / "classes.json"),
                                           "filename": "net-classes.json"}}
    assert class_names(WeightsEntry.from_dict(listed, where="test")) == ["tench", "goldfish", "shark"]
    assert class_names(WeightsEntry.from_dict({**base, "class_names": ["a", "b", "c"]}, where="test")) == ["a", "b", "c"]
    assert class_names(WeightsEntry.from_dict(base, where="test")) == ["0", "1", "2"]


# --- the rest -------------------------------------------------------------------------------------

def test_zoo_locations_keep_urls_whole():
    from cnnreg.zoo.index import zoo_locations

    text = "/srv/zoo:http://127.0.0.1:8000/zoo.json:hf://me/zoo,https://example.org/z/zoo.json,,/srv/zoo"
    expected = ["/srv/zoo", "http://127.0.0.1:8000/zoo.json", "hf://me/zoo", "https://example.org/z/zoo.json"]
    assert zoo_locations(text) == (expected if os.pathsep == ":" else zoo_locations(text))


def test_listing_a_served_zoo_imports_nothing_heavy(published, subprocess_env):
    _, zoo = published
    probe = ("import sys\nfrom cnnreg.cli import main\ntry:\n    main(['list', 'weights'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "{'keras', 'tensorflow', 'jax', 'torch', 'pooch', 'requests', 'huggingface_hub', 'numpy'}))")
    with serve(zoo) as url:
        env = {**subprocess_env, "CNNREG_ZOO": f"{url}/zoo.json"}
        for name in PROXY_VARIABLES:
            env.pop(name, None)
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert "lenet5.digits" in proc.stdout, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_an_unknown_weights_name_says_where_zoos_come_from_and_suggests_a_handful(published, monkeypatch):
    _, zoo = published
    unset = [run_cli("weights", "pull", "lenet5.digits"), run_cli("show", "lenet5.digits"),
             run_cli("predict", "lenet5.digits", "image.png")]
    for result in unset:
        assert result.exit_code == 2 and len(errors(result)) == 1 and "Traceback" not in result.output, result.output
        assert "CNNREG_ZOO is not set" in result.stderr and "cnnreg publish RUN ZOO" in result.stderr, result.stderr
        assert "keras-" not in result.stderr and len(result.stderr) < 300, result.stderr  # not the 1,300-character list
    close = run_cli("weights", "pull", "keras-resnet50.imagenett")
    assert "did you mean 'keras-resnet50.imagenet'?" in close.stderr and close.stderr.count("keras-") == 2, close.stderr
    monkeypatch.setenv("CNNREG_ZOO", str(zoo))
    for result in (run_cli("weights", "pull", "lenet5.digitz"),
                   run_cli("run", "lenet5", "--weights", "lenet5.digitz", "--epochs", "1")):
        assert result.exit_code == 2 and len(errors(result)) == 1, result.output
        assert "did you mean 'lenet5.digits'?" in result.stderr and f"no zoo in CNNREG_ZOO={zoo} lists it" in result.stderr
        assert "keras-" not in result.stderr, result.stderr
    other = run_cli("weights", "pull", "lenet5.fashion-mnist-v2")  # nothing close: the architecture's entries
    assert "weights for lenet5: 'lenet5.digits'" in other.stderr, other.stderr
