"""The logger kind: where a run's configuration, metrics and files are also recorded — an
experiment tracker (MLflow, Weights & Biases), TensorBoard, a CSV file.

``--log NAME[:K=V,...]``, repeatable, names them (``mlflow:uri=http://127.0.0.1:5000,experiment=x``,
``csv``, ``tensorboard``, the default; ``--log none`` for none).  The factory takes the logger's
parameters and returns a :class:`Logger`; it runs when the spec is resolved, before keras is
imported, so it only stores them.  cnnreg then calls, in this order:

1. :meth:`Logger.start` with a :class:`TrackedRun`: the run directory, its manifest, tags
   (architecture, dataset, cnnreg version; a sweep trial's study and trial number) and, when the
   run goes on (``cnnreg resume``), the id :attr:`Logger.run_id` had the first time, kept in the
   manifest under ``trackers``: continue that run instead of starting another;
2. :meth:`Logger.log_params` once with the resolved configuration, every component with its
   parameters, flattened to ``"key.sub": "text"`` (not again on a resume);
3. :meth:`Logger.log_metrics` after every epoch with the row just written to history.csv (its
   numbers, step = the epoch), and once at the end with the test metrics (``test_accuracy``...);
4. :meth:`Logger.log_file` for ``model.keras``, ``curves.png`` and ``run.json``;
5. :meth:`Logger.end` with the run's status (``completed``, ``failed``, ``interrupted``).

Plus :meth:`Logger.callbacks`: Keras callbacks for ``fit`` (TensorBoard's own).

**A tracker never costs the run.** cnnreg makes every call in a worker thread bounded by
:attr:`Logger.timeout` seconds; the first call that raises or takes longer prints one warning
line, and that logger is not called again for the run (a hung call is left behind in its
thread).  The run directory always has everything: ``cnnreg log RUN --log ...`` sends a finished
run's history and files to a tracker afterwards.  A logger should still bound its own network
calls (MLflow's client retries for minutes by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnreg.kinds import KindSpec, Labelled, Scaffold

__all__ = ["KIND", "Logger", "TrackedRun", "DEFAULT_LOGGERS", "STATUSES"]

#: What a run logs to without ``--log``: today's TensorBoard logs in ``RUN/logs``.
DEFAULT_LOGGERS = ("tensorboard",)
#: The statuses :meth:`Logger.end` is given.
STATUSES = ("completed", "failed", "interrupted")


@dataclass
class TrackedRun:
    """What a logger is told about the run when it starts."""

    run_dir: Path
    manifest: dict[str, Any]  #: run.json as written when training starts (read-only)
    name: str  #: the run directory's name
    tags: dict[str, str] = field(default_factory=dict)  #: architecture, dataset, cnnreg_version ...
    resume_id: str | None = None  #: this logger's run_id from the first start, on a resume
    epochs_done: int = 0  #: the epochs already on record (a resume)


class Logger(Labelled):
    """Base class: records nothing.  Subclasses override what they record."""

    #: One short line of plain text saying where it records, e.g. ``"MLflow at http://...,
    #: experiment x"``; the run header prints it.  Empty: the class name is shown.
    label: str = ""
    #: The tracker's id of this run once started (an MLflow run id, a W&B run id), or None.
    #: cnnreg keeps it in the manifest and passes it back as ``TrackedRun.resume_id``.
    run_id: str | None = None
    #: The longest a call may take, in seconds, before cnnreg gives up on this logger.
    timeout: float = 30.0

    def start(self, run: TrackedRun) -> None:
        """Start (or, with ``run.resume_id``, continue) recording the run."""

    def log_params(self, params: dict[str, str]) -> None:
        """The resolved configuration, flattened (``"optimizer.params.learning_rate": "0.001"``)."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Numbers of one epoch (``step`` = the epoch, 1-based) or the final test metrics."""

    def log_file(self, path: Path) -> None:
        """A file of the run directory (model.keras, curves.png, run.json)."""

    def end(self, status: str) -> None:
        """The run ended with ``status`` (:data:`STATUSES`)."""



#: What ``cnnreg plugin new --kind logger`` writes: a working component and its test.
SCAFFOLD = Scaffold(
    register='''\
    registry.add(
        "$name",
        "$module.$kmod:$name",  # lazy: imported when the logger is built or shown
        summary="Appends every epoch's metrics to a JSON-lines file",
    )
''',
    factories='''\
"""The logger's factory: returns a cnnreg.kinds.loggers.Logger (it only stores its parameters)."""

import json
from pathlib import Path

from cnnreg.kinds.loggers import Logger


class JsonLines(Logger):
    def __init__(self, path: str) -> None:
        self.path = path
        self.label = f"JSON lines in {path}"

    def start(self, run):
        self.file = Path(self.path) if Path(self.path).is_absolute() else run.run_dir / self.path
        self.run_id = run.resume_id or run.name

    def log_metrics(self, metrics, step):
        with open(self.file, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"run": self.run_id, "step": step, **metrics}) + "\\n")


def $name(path: str = "metrics.jsonl") -> Logger:
    """Append every epoch's metrics to ``path`` (relative paths: in the run directory)."""
    return JsonLines(path)
''',
    test='''

def test_the_logger_appends_a_line_per_call(tmp_path):
    import json

    from cnnreg.kinds.loggers import TrackedRun

    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        logger = cnnreg.build("logger", "$name:path=m.jsonl")
    logger.start(TrackedRun(run_dir=tmp_path, manifest={}, name="r"))
    logger.log_metrics({"loss": 0.5}, step=1)
    logger.log_metrics({"loss": 0.25}, step=2)
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert rows == [{"run": "r", "step": 1, "loss": 0.5}, {"run": "r", "step": 2, "loss": 0.25}]
''',
)


KIND = KindSpec(
    "logger", "loggers", words=("tracker", "trackers", "log"),
    contract=__name__,
    doc="""Add loggers (experiment trackers): the factory returns a :class:`cnnreg.kinds.loggers.Logger`.

    cnnreg calls ``start(run)``, ``log_params(params)``, ``log_metrics(metrics, step)`` per
    epoch, ``log_file(path)`` and ``end(status)``, each bounded in time; a failing logger costs
    one warning, never the run.  See cnnreg.kinds.loggers for the contract.
    """,
    scaffold=SCAFFOLD,
)
