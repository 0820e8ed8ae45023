"""The wandb logger on a real (offline) W&B run: a cnnreg run writes it, and the test reads the
run's transaction log back with wandb's own protobuf records (``wandb.proto.wandb_internal_pb2``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cnnreg import testing
from cnnreg.testing import run_cli

import cnnreg_wandb.plugin as plugin

FAST = ["--dataset", "digits:size=8", "--batch-size", "64", "--quiet"]
BLOCK = 32 * 1024  # the LevelDB log format's block, which W&B's .wandb files use


def records(path: Path):
    """Every record of a .wandb file: a 7-byte W&B header, then LevelDB log chunks (4 bytes
    checksum, 2 bytes length, 1 byte type: 1 full, 2 first, 3 middle, 4 last) in 32 KiB blocks."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def _key(item) -> str:
    """An item's key: ``key``, or its ``nested_key`` path (what wandb-core writes)."""
    return item.key or "/".join(item.nested_key)


def _offline_run(run_dir: Path) -> Path:
    found = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert found, list(run_dir.rglob("*"))
    return found[-1]


@pytest.fixture(autouse=True)
def _quiet_wandb(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))


def test_the_logger_is_listed_without_importing_wandb():
    import sys

    with testing.isolated(), testing.plugin(plugin, distribution="cnnreg-wandb"):
        result = run_cli("list", "loggers", "--json")
    assert result.exit_code == 0, result.output
    assert {c["name"] for c in json.loads(result.stdout)["components"]} == {"csv", "mlflow", "tensorboard", "wandb"}
    assert "cnnreg_wandb.logger" not in sys.modules  # the factory's module loads when a run uses it


def test_an_offline_run_has_the_history_config_and_status(tmp_path):
    run_dir = tmp_path / "run"
    with testing.isolated(), testing.plugin(plugin, distribution="cnnreg-wandb"):
        result = run_cli("run", "mlp_bn", "--epochs", "2", *FAST, "--run-dir", str(run_dir),
                         "--log", "wandb:project=lecture,mode=offline")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr, result.stderr
    manifest = json.loads((run_dir / "run.json").read_text())
    [(spec, tracked)] = manifest["trackers"].items()
    assert spec.startswith("wandb:") and tracked["epochs"] == 2
    run_id = tracked["run_id"]
    history = list(csv.DictReader(open(run_dir / "history.csv")))
    logged, config, exit_code, files, run_record = {}, {}, None, set(), None
    for record in records(_offline_run(run_dir)):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            step = record.history.step.num
            logged.setdefault(step, {}).update({_key(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "config":
            config.update({_key(item): json.loads(item.value_json) for item in record.config.update})
        elif kind == "exit":
            exit_code = record.exit.exit_code
        elif kind == "files":
            files.update(Path(f.path).name for f in record.files.files)
        elif kind == "run":
            run_record = record.run
    assert run_record.run_id == run_id and run_record.project == "lecture" and run_record.display_name == "run"
    assert "architecture=mlp_bn" in run_record.tags
    for row in history:
        epoch = int(row["epoch"])
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
            assert logged[epoch][key] == float(row[key]), (epoch, key)
    assert logged[2]["test_accuracy"] == manifest["test"]["accuracy"]
    assert config["config.architecture"] == "mlp_bn" and config["resolved.optimizer.name"] == "adam"
    assert exit_code == 0
    assert {"model.keras", "curves.png", "run.json"} <= files
