"""Loggers (`--log`): the kind, the csv logger, and MLflow against a real tracking server that
the tests start on 127.0.0.1 (SQLite backend store, telemetry off); a server that is down,
killed mid-run or hangs costs one warning, never the run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import cnnreg
from cnnreg.testing import run_cli
from runhelpers import history, interrupted_run

FAST = ["--dataset", "digits:size=8", "--batch-size", "64", "--quiet"]
# telemetry off; no background job workers (seven huey processes that a tracking server does not need)
ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(root: Path) -> tuple[subprocess.Popen, str]:
    """`mlflow server` on 127.0.0.1 with a SQLite store and a local artifact folder; its URI once
    /health answers."""
    port = _free_port()
    root.mkdir(parents=True, exist_ok=True)
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ENV}, cwd=root,
        start_new_session=True,  # its own process group: the server's workers go with it
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited: {(root / 'server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return proc, uri
        except OSError:
            time.sleep(0.3)
    _stop(proc, signal.SIGKILL)
    raise RuntimeError("mlflow server did not start in 120 s")


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """The server and its workers (uvicorn's processes outlive a killed parent)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc, uri = _start_server(tmp_path_factory.mktemp("mlflow"))
    yield uri
    _stop(proc)


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _tracked(run_dir: Path, spec: str) -> dict:
    return json.loads((run_dir / "run.json").read_text())["trackers"][spec]


def _metric_history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_the_kind_and_its_builtins_are_listed():
    result = run_cli("list", "loggers", "--json")
    assert result.exit_code == 0, result.output
    assert {c["name"] for c in json.loads(result.stdout)["components"]} >= {"csv", "mlflow", "tensorboard"}
    wrong = run_cli("run", "mlp_bn", "--epochs", "1", *FAST, "--log", "mlfow", "--dry-run")
    assert wrong.exit_code == 2 and "unknown logger 'mlfow'; did you mean 'mlflow'?" in wrong.stderr
    both = run_cli("run", "mlp_bn", "--epochs", "1", *FAST, "--log", "none", "--log", "csv", "--dry-run")
    assert both.exit_code == 2 and "--log none means no logger" in both.stderr


def test_csv_logger_and_the_default(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("run", "mlp_bn", "--epochs", "2", *FAST, "--run-dir", str(run_dir), "--log", "csv")
    assert result.exit_code == 0, result.output
    import csv

    rows = list(csv.DictReader(open(run_dir / "logs" / "csv" / "metrics.csv")))
    recorded = history(run_dir)
    assert [float(r["loss"]) for r in rows[:2]] == [float(r["loss"]) for r in recorded]
    assert float(rows[2]["test_accuracy"]) == json.loads((run_dir / "run.json").read_text())["test"]["accuracy"]
    params = json.loads((run_dir / "logs" / "csv" / "params.json").read_text())
    assert params["config.architecture"] == "mlp_bn" and params["resolved.optimizer.name"] == "adam"
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["config"]["log"] == ["csv"] and manifest["trackers"]["csv"]["epochs"] == 2
    assert [r["name"] for r in manifest["resolved"]["loggers"]] == ["csv"]


def test_a_run_puts_its_history_params_and_files_on_the_server(server, tmp_path):
    run_dir = tmp_path / "run"
    spec = f"mlflow:uri={server},experiment=x"
    result = run_cli("run", "lenet5", "--epochs", "2", "--batch-size", "64", "--quiet", "--run-dir", str(run_dir),
                     "--log", spec)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr, result.stderr
    client = _client(server)
    run_id = _tracked(run_dir, spec)["run_id"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and client.get_experiment(run.info.experiment_id).name == "x"
    recorded = history(run_dir)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
        assert _metric_history(client, run_id, key) == [(int(r["epoch"]), float(r[key])) for r in recorded], key
    test = json.loads((run_dir / "run.json").read_text())["test"]
    assert _metric_history(client, run_id, "test_accuracy") == [(2, test["accuracy"])]
    assert run.data.params["config.architecture"] == "lenet5" and run.data.params["config.epochs"] == "2"
    assert run.data.params["resolved.optimizer.name"] == "adam"
    assert run.data.tags["architecture"] == "lenet5" and run.data.tags["dataset"] == "digits"
    assert run.data.tags["cnnreg_version"] == cnnreg.__version__
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"model.keras", "curves.png", "run.json"} <= artifacts
    local = client.download_artifacts(run_id, "model.keras", str(tmp_path))
    assert Path(local).read_bytes() == (run_dir / "model.keras").read_bytes()


def test_resume_continues_the_same_mlflow_run(server, tmp_path):
    run_dir = tmp_path / "run"
    spec = f"mlflow:uri={server},experiment=resume"
    stopped = interrupted_run(run_dir, "mlp_bn", "--epochs", "4", *FAST, "--log", spec, after=2)
    assert stopped.exit_code != 0 and json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    first = _tracked(run_dir, spec)
    # the Ctrl-C came as epoch 2 was handed to the writer: the run waits for its files, then logs it
    assert first["epochs"] == 2
    client = _client(server)
    assert client.get_run(first["run_id"]).info.status == "KILLED"
    resumed = run_cli("resume", str(run_dir), "--quiet")
    assert resumed.exit_code == 0, resumed.output
    tracked = _tracked(run_dir, spec)
    assert (tracked["run_id"], tracked["epochs"]) == (first["run_id"], 4) and tracked["seconds"] > 0
    recorded = history(run_dir)
    assert _metric_history(client, first["run_id"], "loss") == [(int(r["epoch"]), float(r["loss"])) for r in recorded]
    assert client.get_run(first["run_id"]).info.status == "FINISHED"
    runs = client.search_runs([client.get_experiment_by_name("resume").experiment_id])
    assert len(runs) == 1


def test_a_server_that_is_down_costs_one_warning(tmp_path):
    closed = _free_port()  # bound then released: nothing listens there
    run_dir = tmp_path / "run"
    result = run_cli("run", "mlp_bn", "--epochs", "2", *FAST, "--run-dir", str(run_dir),
                     "--log", f"mlflow:uri=http://127.0.0.1:{closed},timeout=3")
    assert result.exit_code == 0, result.output
    assert len(history(run_dir)) == 2 and (run_dir / "model.keras").is_file()
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: logger mlflow") and "training goes on" in lines[0], lines


def test_a_server_killed_mid_run_costs_one_warning(tmp_path, subprocess_env):
    proc, uri = _start_server(tmp_path / "server")
    run_dir = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-m", "cnnreg", "run", "mlp_bn", "--epochs", "6", *FAST, "--run-dir", str(run_dir),
         "--log", f"mlflow:uri={uri},timeout=3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**subprocess_env, **ENV},
    )
    try:
        deadline = time.time() + 240
        while not (run_dir / "history.csv").exists() and time.time() < deadline and child.poll() is None:
            time.sleep(0.02)
        _stop(proc, signal.SIGKILL)  # mid-run: after epoch 1 is on record
        out, err = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
        _stop(proc, signal.SIGKILL)
    assert child.returncode == 0, err
    assert len(history(run_dir)) == 6 and json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "logger mlflow" in warnings[0], err


def test_a_hung_logger_is_given_up_after_its_timeout(tmp_path):
    from cnnreg import testing
    from cnnreg.kinds.loggers import Logger

    class Hangs(Logger):
        timeout = 0.5

        def log_metrics(self, metrics, step):
            time.sleep(30)

    def hangs() -> Logger:
        """Never returns from log_metrics."""
        return Hangs()

    class Plugin:
        @cnnreg.hookimpl
        def register_loggers(self, registry):
            registry.add("hangs", hangs)

    run_dir = tmp_path / "run"
    with testing.plugin(Plugin(), distribution="hanging-logger"):
        started = time.time()
        result = run_cli("run", "mlp_bn", "--epochs", "2", *FAST, "--run-dir", str(run_dir), "--log", "hangs")
        seconds = time.time() - started
    assert result.exit_code == 0, result.output
    assert seconds < 25 and len(history(run_dir)) == 2
    assert result.stderr.count("warning: logger hangs stopped (log_metrics took more than 0.5 s)") == 1, result.stderr


def test_log_sends_a_finished_run_later(server, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    assert run_cli("run", "mlp_bn", "--epochs", "2", *FAST, "--run-dir", str(run_dir), "--log", "none").exit_code == 0
    assert not (run_dir / "logs").exists()  # --log none: not even TensorBoard
    spec = f"mlflow:uri={server},experiment=later"
    result = run_cli("log", str(run_dir), "--log", spec, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    run_id = data["trackers"][spec]
    assert data["epochs"] == 2 and data["failed"] == {} and _tracked(run_dir, spec)["run_id"] == run_id
    client = _client(server)
    recorded = history(run_dir)
    assert _metric_history(client, run_id, "val_loss") == [(int(r["epoch"]), float(r["val_loss"])) for r in recorded]
    assert client.get_run(run_id).info.status == "FINISHED"
    closed = _free_port()
    down = run_cli("log", str(run_dir), "--log", f"mlflow:uri=http://127.0.0.1:{closed},timeout=2")
    assert down.exit_code == 1 and len(down.stderr.strip().splitlines()) == 1 and "logger mlflow" in down.stderr
    api = cnnreg.log_run(run_dir, log="csv")
    assert api.trackers == {"csv": "run"} and api.to_dict()["epochs"] == 2
