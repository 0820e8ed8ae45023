"""Built-in plugin: loggers (kind ``logger``): ``tensorboard`` (the default), ``csv`` and
``mlflow``.  The contract, and how cnnreg bounds every call: :mod:`cnnreg.kinds.loggers`.

``mlflow`` talks to a tracking server (or a local ``mlruns`` store) through ``MlflowClient``,
imported when the run starts; it needs the extra ``pip install 'cnnreg[mlflow]'``.  Weights &
Biases is the ``cnnreg-wandb`` plugin package.
"""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path
from typing import Annotated, Any

from cnnreg.errors import CnnregError
from cnnreg.hookspecs import hookimpl
from cnnreg.kinds.loggers import Logger, TrackedRun
from cnnreg.spec import Range

Seconds = Annotated[float, Range(0.1, 3600)]


class TensorBoard(Logger):
    """Keras' TensorBoard callback writing RUN/logs (TensorFlow backend, tensorboard installed)."""

    label = "TensorBoard logs in RUN/logs"

    def start(self, run: TrackedRun) -> None:
        self.log_dir = run.run_dir / "logs"

    def callbacks(self) -> list[Any]:
        import importlib.util

        import keras

        if keras.backend.backend() != "tensorflow" or importlib.util.find_spec("tensorboard") is None:
            return []  # TensorBoard's writer needs TensorFlow's summary ops
        return [keras.callbacks.TensorBoard(log_dir=str(self.log_dir), write_graph=False, profile_batch=0)]


class CSVLogger(Logger):
    """metrics.csv (a row per call: step and every metric logged, Lightning's CSVLogger layout)
    and params.json in a folder of the run directory (or an absolute folder)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.label = f"CSV in {folder}/"

    def start(self, run: TrackedRun) -> None:
        folder = Path(self.folder).expanduser()
        self.path = folder if folder.is_absolute() else run.run_dir / folder
        self.path.mkdir(parents=True, exist_ok=True)
        self.run_id = run.resume_id or run.name
        self.rows = _read_rows(self.path / "metrics.csv")
        if run.resume_id is None:
            self.rows = []

    def log_params(self, params: dict[str, str]) -> None:
        from cnnreg.files import write_json

        write_json(self.path / "params.json", params)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from cnnreg.files import write_atomic

        self.rows.append({"step": step, **metrics})
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.rows)
        write_atomic(self.path / "metrics.csv", buffer.getvalue())


def _read_rows(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return [{k: v for k, v in row.items() if v not in (None, "")} for row in csv.DictReader(handle)]
    except OSError:
        return []


#: MLflow's run status for each of ours.
MLFLOW_STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}


class MLflow(Logger):
    """A run in an MLflow experiment, through ``MlflowClient`` (the server's REST API, or a
    local store).  Parameters in batches of 100 (MLflow's limit), values cut at 6000 characters
    (its limit); files under the run's artifacts."""

    def __init__(self, uri: str | None, experiment: str, timeout: float) -> None:
        self.uri, self.experiment, self.timeout = uri, experiment, timeout
        self.label = f"MLflow at {uri or 'MLFLOW_TRACKING_URI or ./mlruns'}, experiment {experiment}"

    def start(self, run: TrackedRun) -> None:
        # MLflow's HTTP client retries for minutes by default: a short timeout, one retry
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, int(self.timeout))))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        # its "View run at URL" lines would land in the middle of `--json` output on stdout
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise CnnregError("the mlflow logger needs mlflow: pip install 'cnnreg[mlflow]'") from None
        self.client = MlflowClient(tracking_uri=self.uri)
        if run.resume_id:
            self.client.update_run(run.resume_id, status="RUNNING")
            self.run_id = run.resume_id
            return
        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found is not None else self.client.create_experiment(self.experiment)
        created = self.client.create_run(experiment_id, run_name=run.name, tags=run.tags)
        self.run_id = created.info.run_id

    def log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(key[:250], value[:6000]) for key, value in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])

    def log_file(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def end(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=MLFLOW_STATUS.get(status, "FAILED"))


def tensorboard() -> Logger:
    """TensorBoard logs in RUN/logs (Keras' callback; TensorFlow backend): the default."""
    return TensorBoard()


def csv_logger(dir: str = "logs/csv") -> Logger:  # noqa: A002 - the parameter users write
    """metrics.csv and params.json in ``dir`` (relative: inside the run directory)."""
    return CSVLogger(dir)


def mlflow(uri: str | None = None, experiment: str = "cnnreg", timeout: Seconds = 10.0) -> Logger:
    """An MLflow run: tracking server ``uri`` (default: MLFLOW_TRACKING_URI, else ./mlruns), in
    ``experiment``; every call gives up after ``timeout`` seconds."""
    return MLflow(uri, experiment, timeout)


@hookimpl
def register_loggers(registry) -> None:
    """Register the built-in loggers."""
    registry.add("tensorboard", tensorboard, aliases=("tb",))
    registry.add("csv", csv_logger)
    registry.add("mlflow", mlflow)


__all__ = ["TensorBoard", "CSVLogger", "MLflow", "tensorboard", "csv_logger", "mlflow", "register_loggers"]
