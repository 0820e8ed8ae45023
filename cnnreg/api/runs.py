"""Training runs from Python: ``cnnreg.run``, ``resume``, ``rerun``, ``list_runs``, ``evaluate``,
``predict``, ``lr_find``, ``diagnose`` and ``publish``, the functions under the commands of the
same names.

    import cnnreg
    result = cnnreg.run("lenet5", epochs=3, run_dir="runs/lenet5")
    result.status, result.test["accuracy"]
    cnnreg.evaluate("runs/lenet5").to_dict()

A run shows its progress as it goes: one live bar in a Jupyter notebook, a bar per epoch on a
terminal, a line per epoch otherwise, nothing with ``quiet=True``.  A run that fails (a NaN
loss, a full disk) or is interrupted returns its result with that ``status`` and ``message``;
the run directory keeps what was done, and ``cnnreg.resume(run_dir)`` goes on from it.  A
mistake in what was asked raises a :class:`cnnreg.errors.CnnregError` of one line before
anything heavy is imported.

``display`` (a :class:`RunDisplay`) is how the CLI shows a run as it goes: the header once the
model is built, the status lines, the progress bar; the default shows warnings and progress.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnreg.api.results import Result
from cnnreg.errors import CnnregError
from cnnreg.training.config import run_config, shape_option, specs_option
from cnnreg.training.execute import DEFAULT_ROOT, RunDisplay, execute
from cnnreg.version import __version__

__all__ = [
    "run", "resume", "rerun", "list_runs", "evaluate", "predict", "lr_find", "diagnose", "publish", "RunDisplay",
    "RunResult", "RunsResult", "EvaluationResult", "PredictionResult", "LRFindResult", "DiagnoseResult",
    "PublishResult",
]



# --- results -------------------------------------------------------------------------------------


@dataclass(repr=False)
class RunResult(Result):
    """What ``run``, ``resume`` and ``rerun`` return: the run's outcome (``dry_run``: the plan)."""

    run_dir: Path | None
    status: str
    message: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] | None = None
    seconds: float = 0.0
    #: ``(index, processes)`` for a process other than 0 of a multi-process run (it writes no run).
    process: tuple[int, int] | None = None
    #: The resolved run (components, data, model): :class:`cnnreg.training.config.Plan`.
    plan: Any = field(default=None, repr=False)
    #: ``dry_run``: the manifest the run would write.
    manifest: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, "run": {
            "run_dir": str(self.run_dir) if self.run_dir is not None else None, "status": self.status,
            "message": self.message, "epochs_done": len(self.history), "best_epoch": self.best_epoch,
            "best": self.best, "test": self.test, "seconds": round(self.seconds, 3), "history": self.history,
            "process": list(self.process) if self.process else None, "manifest": self.manifest,
        }}

    def title(self) -> str:
        where = f" in {self.run_dir}" if self.run_dir else ""
        test = f"; test accuracy {self.test['accuracy']:.4f}" if self.test else ""
        return f"run {self.status}{where}: {len(self.history)} epochs{test}" + (f" ({self.message})" if self.message else "")

    def table(self) -> tuple[list[str], list[list[Any]]]:
        columns = ["epoch", "phase", "lr", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
        return columns, [[row.get(c) for c in columns] for row in self.history]

    @classmethod
    def from_execution(cls, done: Any) -> "RunResult":
        """From what :func:`cnnreg.training.execute.execute` returns."""
        if done.outcome is None:  # a dry run: the plan and the manifest it would write
            return cls(run_dir=None, status="dry-run", plan=done.plan, manifest=done.manifest)
        return cls.from_outcome(done.outcome, done.plan)

    @classmethod
    def from_outcome(cls, outcome: Any, plan: Any = None) -> "RunResult":
        return cls(run_dir=outcome.run_dir, status=outcome.status, message=outcome.message, history=outcome.history,
                   best_epoch=outcome.best_epoch, best=outcome.best, test=outcome.test, seconds=outcome.seconds,
                   process=outcome.extra.get("process"), plan=plan)


@dataclass(repr=False)
class LogResult(Result):
    """``log_run``: the tracker runs a finished run was sent to (``{spec: run_id}``), and the
    loggers that failed (``{spec: reason}``)."""

    run_dir: str
    epochs: int
    trackers: dict[str, str | None]
    failed: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, "run_dir": self.run_dir, "epochs": self.epochs, "trackers": dict(self.trackers),
                "failed": dict(self.failed)}

    def title(self) -> str:
        return f"{self.run_dir}: {self.epochs} epochs sent to {', '.join(self.trackers) or 'no logger'}"


@dataclass(repr=False)
class RunsResult(Result):
    """``list_runs``: one row per run directory under ``root``."""

    root: Path
    runs: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, "runs": self.runs}

    def title(self) -> str:
        return f"{len(self.runs)} runs under {self.root}/"

    def table(self) -> tuple[list[str], list[list[Any]]]:
        columns = ["run_dir", "architecture", "dataset", "status", "best", "test", "epochs", "seconds"]
        rows = [[r["run_dir"], r["architecture"], r["dataset"], r["status"], next(iter(r["best"].values()), None)
                 if r["best"] else None, r["test"], f"{r['epochs_done']}/{r['epochs']}", r["seconds"]] for r in self.runs]
        return columns, rows


@dataclass(repr=False)
class EvaluationResult(Result):
    """``evaluate``: loss, accuracy, top-5, per-class precision and recall, the confusion matrix."""

    evaluation: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, "evaluation": self.evaluation}

    def __getitem__(self, key: str) -> Any:
        return self.evaluation[key]

    def title(self) -> str:
        e = self.evaluation
        top5 = f", top-5 {e['top5']:.4f}" if "top5" in e else ""
        return f"{e['split']}: {e['examples']} examples, loss {e['loss']:.4f}, accuracy {e['accuracy']:.4f}{top5}"

    def table(self) -> tuple[list[str], list[list[Any]]]:
        e = self.evaluation
        return ["class", "precision", "recall", "examples"], [
            [name, p, r, sum(row)] for name, p, r, row in zip(e["class_names"], e["precision"], e["recall"], e["confusion"])]


@dataclass(repr=False)
class PredictionResult(Result):
    """``predict``: the top classes of each image with their probabilities."""

    predictions: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, "predictions": self.predictions}

    def title(self) -> str:
        return f"{len(self.predictions)} images"

    def table(self) -> tuple[list[str], list[list[Any]]]:
        return ["image", "class", "class id", "probability"], [
            [item["image"], t["class"], t["class_id"], t["probability"]] for item in self.predictions for t in item["top"]]


@dataclass(repr=False)
class LRFindResult(Result):
    """``lr_find``: the range test, its suggestion and every step's rate and loss."""

    architecture: str
    dataset: str
    optimizer: str
    batch_size: int
    seed: int
    test: Any  #: :class:`cnnreg.training.lr_find.LRFind`
    title_text: str
    files: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def suggested_lr(self) -> float | None:
        return self.test.suggested_lr

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, "architecture": self.architecture, "dataset": self.dataset,
                "optimizer": self.optimizer, "batch_size": self.batch_size, "seed": self.seed, **self.test.to_dict(),
                "files": self.files}

    def title(self) -> str:
        from cnnreg.training.lr_find import describe

        return f"lr-find {self.title_text}: {describe(self.test)}"

    def table(self) -> tuple[list[str], list[list[Any]]]:
        return ["step", "lr", "loss", "smoothed"], [
            [i + 1, lr, loss, smooth] for i, (lr, loss, smooth) in enumerate(zip(self.test.lrs, self.test.losses, self.test.smoothed))]


@dataclass(repr=False)
class DiagnoseResult(Result):
    """``diagnose``: per hidden layer, at initialisation, for each initialiser."""

    result: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.result)

    @property
    def warnings(self) -> list[str]:
        return list(self.result["warnings"])

    def title(self) -> str:
        r = self.result
        ratios = "; ".join(f"{one['label']}: forward {one['forward_ratio']}, backward {one['backward_ratio']}"
                           for one in r["results"])
        return f"{r['architecture']} at initialisation ({r['hidden_layers']} hidden layers): {ratios}"

    def table(self) -> tuple[list[str], list[list[Any]]]:
        columns = ["init", "#", "layer", "activation", "mean", "std", "grad std", "weights std"]
        return columns, [[one["label"], layer["index"], layer["name"], layer["activation"], layer["mean"], layer["std"],
                          layer["grad_std"], layer["weights_std"]] for one in self.result["results"] for layer in one["layers"]]


@dataclass(repr=False)
class PublishResult(Result):
    """``publish``: the entry written into the zoo (:class:`cnnreg.training.publish.Published`)."""

    published: Any

    def __getattr__(self, name: str) -> Any:  # entry, dest, folder, entries, notes
        if name == "published":
            raise AttributeError(name)
        return getattr(self.published, name)

    def to_dict(self) -> dict[str, Any]:
        return {"cnnreg": __version__, "published": self.published.to_dict()}

    def title(self) -> str:
        return f"published {self.published.entry.name} to {self.published.dest}"


# --- run, resume, rerun ----------------------------------------------------------------------------


def run(
    architecture: str,
    *,
    dataset: str = "digits",
    init: str | None = None,
    reg: Sequence[str] | str = (),
    clip: str | None = None,
    optimizer: str = "adam",
    lr: float | str | None = None,
    schedule: str | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    precision: str = "float32",
    seed: int = 0,
    input_shape: str | Sequence[int] | None = None,
    weights: str = "none",
    freeze_base: bool = False,
    fine_tune_epochs: int = 0,
    fine_tune_lr: float | None = None,
    early_stop: int | None = None,
    bn_momentum: str | float = "auto",
    class_weight: str | None = None,
    log: Sequence[str] | str = (),
    checkpoint: str | float = "auto",
    run_dir: str | Path | None = None,
    dry_run: bool = False,
    quiet: bool = False,
    backend: str | None = None,
    distribute: str = "auto",
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    coordinator_timeout: int = 60,
    display: RunDisplay | None = None,
) -> RunResult:
    """Train ``architecture`` on a dataset and write a run directory (``cnnreg run``).

    Every option of ``cnnreg run`` is a keyword argument of the same name: components are
    specs (``"sgd:momentum=0.9"``), ``reg`` a list of them, ``lr`` a number or ``"auto"``,
    ``input_shape`` ``"64x64x3"`` or ``(64, 64, 3)``, ``log`` logger specs (``["csv",
    "mlflow:uri=http://127.0.0.1:5000"]``; none given: TensorBoard; ``"none"``: no logger), ``checkpoint``
    ``"auto"``, ``"epoch"`` or seconds between resumable checkpoints.  ``run_dir`` defaults to
    ``runs/<UTC time>-<arch>-<dataset>/``.  ``dry_run``: resolve everything and build the model
    without training or writing anything (the result holds the manifest the run would write).
    """
    from cnnreg.backends import select
    from cnnreg.training.config import resolve
    from cnnreg.training.distribute import check_args

    config = run_config(
        architecture, dataset=dataset, init=init, reg=reg, clip=clip, optimizer=optimizer, lr=lr, schedule=schedule,
        epochs=epochs, batch_size=batch_size, precision=precision, seed=seed, input_shape=input_shape, weights=weights,
        freeze_base=freeze_base, fine_tune_epochs=fine_tune_epochs, fine_tune_lr=fine_tune_lr, early_stop=early_stop,
        bn_momentum=bn_momentum, class_weight=class_weight, log=log, checkpoint=checkpoint,
    )
    config.backend = select(backend, activate=False)
    config.distribute = check_args(distribute, config.backend, coordinator=coordinator, num_processes=num_processes,
                                   process_id=process_id)
    select(config.backend)
    plan = resolve(config)  # every user mistake is caught here, before keras is imported
    plan.launch = _launch(coordinator, num_processes, process_id, coordinator_timeout)
    return RunResult.from_execution(execute(plan, run_dir=run_dir, dry_run=dry_run, display=display or RunDisplay(quiet=quiet)))


def resume(
    run_dir: str | Path,
    *,
    quiet: bool = False,
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    coordinator_timeout: int = 60,
    display: RunDisplay | None = None,
) -> RunResult:
    """Continue an interrupted, crashed or failed run from its last completed epoch
    (``cnnreg resume``), on the backend it started on."""
    from cnnreg.backends import load_keras, select
    from cnnreg.training import rundir
    from cnnreg.training.distribute import check_args
    from cnnreg.training.resume import launch_rank
    from cnnreg.training.resume import resume as resume_run
    from cnnreg.training.saved import run_preprocess

    display = display or RunDisplay(quiet=quiet)
    run_dir = Path(run_dir)
    data = rundir.load_manifest(run_dir)
    if data.get("status") == "completed":
        raise CnnregError(f"run {run_dir} is already completed; `cnnreg rerun {run_dir}` starts a new one")
    config = rundir.run_config(data, run_dir)
    select(config.backend)  # a run continues on the backend it started on
    check_args(config.distribute, config.backend, coordinator=coordinator, num_processes=num_processes,
               process_id=process_id)
    arguments = _launch(coordinator, num_processes, process_id, coordinator_timeout)
    rank = launch_rank(arguments)
    run_preprocess(data, run_dir)  # refused before keras loads
    # checked and locked before keras loads; the loop takes the same lock again
    lock = rundir.claim(run_dir, fresh=False) if rank == 0 else contextlib.nullcontext()

    def announce(plan, done: int) -> None:  # as a new run shows it, once the run is recovered
        display.prepared(plan, resumed=done)

    with lock:
        load_keras()
        train = (data.get("data") or {}).get("train", config.batch_size)
        quiet_here = display.quiet or rank != 0
        saved, display.quiet = display.quiet, quiet_here
        try:
            progress = display.progress(max(1, math.ceil(train / config.batch_size)))
        finally:
            display.quiet = saved
        outcome = resume_run(run_dir, progress=progress, launch=arguments, report=display.warn, announce=announce)
    return RunResult.from_outcome(outcome)


def rerun(
    run_dir: str | Path,
    *,
    set: Sequence[str] | str = (),  # noqa: A002 - named as the option, --set
    new_dir: str | Path | None = None,
    quiet: bool = False,
    display: RunDisplay | None = None,
) -> RunResult:
    """Start a new run from another run's manifest (``cnnreg rerun``); ``set`` changes settings
    (``["epochs=3", "seed=1"]``), ``new_dir`` is where the new run goes."""
    from cnnreg.backends import select
    from cnnreg.training import rundir
    from cnnreg.training.config import rerun_config, resolve

    config = rerun_config(Path(run_dir), specs_option(set))
    config.backend = select(config.backend)  # the original run's backend unless --set backend=...
    plan = resolve(config)
    replayed = rundir.load_manifest(Path(run_dir)).get("weights")
    if isinstance(replayed, dict) and (config.weights or "none") == replayed.get("weights"):
        plan.replayed_weights = replayed  # a changed file is said in a warning
    return RunResult.from_execution(execute(plan, run_dir=new_dir, dry_run=False, display=display or RunDisplay(quiet=quiet)))


# --- looking at runs -------------------------------------------------------------------------------


def log_run(run_dir: str | Path, *, log: Sequence[str] | str) -> LogResult:
    """Send a run that has ended to loggers (``cnnreg log``): a new tracker run per ``log`` spec
    with the run's parameters, every epoch of history.csv, its test metrics, model.keras,
    curves.png and run.json, and its status.  Their ids are kept in the manifest.  Every call is
    bounded in time; a logger that fails is in the result's ``failed``."""
    from cnnreg.kinds.loggers import STATUSES
    from cnnreg.plugins import get_host
    from cnnreg.training import rundir
    from cnnreg.training.loop import keep_tracker_ids
    from cnnreg.training.trackers import Trackers, metric_row, resolve_loggers

    run_dir = Path(run_dir)
    specs = specs_option(log)
    if not specs or [s.lower() for s in specs] == ["none"]:
        raise CnnregError("give the loggers to send the run to: --log mlflow:uri=URL (`cnnreg list loggers`)")
    data = rundir.load_manifest(run_dir)
    status = rundir.shown_status(run_dir, data)
    if status == "running":
        raise CnnregError(f"run {run_dir} is still running; send it when it has ended (its --log sends it as it goes)")
    loggers = resolve_loggers(get_host().registry, specs)
    trackers = Trackers([(resolved.spec, logger) for resolved, logger in loggers])
    history = rundir.read_history(run_dir / "history.csv")
    ids = trackers.start(run_dir, data)
    for row in history:
        trackers.metrics(metric_row(row), int(row.get("epoch") or 0))
    test = data.get("test") if isinstance(data.get("test"), dict) else None
    trackers.end(run_dir, status if status in STATUSES else "failed", test, len(history))
    keep_tracker_ids(run_dir, trackers)
    failed = dict(trackers.failed)
    result = LogResult(str(run_dir), len(history), {spec: ids.get(spec) for spec, _ in trackers.loggers if spec not in failed},
                       failed)
    if failed and not result.trackers:
        error = CnnregError("; ".join(f"logger {spec}: {reason}" for spec, reason in failed.items()))
        error.exit_code = 1
        raise error
    return result


def list_runs(root: str | Path = DEFAULT_ROOT) -> RunsResult:
    """Every run under ``root`` (``cnnreg runs``): architecture, dataset, regularisers, status (a ``running`` run
    whose process is gone is ``interrupted``), best validation accuracy, epochs, duration."""
    from cnnreg.training.rundir import list_runs as found_runs
    from cnnreg.training.rundir import shown_status

    root = Path(root)
    if root.exists() and not root.is_dir():
        raise CnnregError(f"--root {root} is a file, not a folder of runs")
    rows = []
    for path, data in found_runs(root):
        if not isinstance(data, dict):
            continue
        config = data.get("config") if isinstance(data.get("config"), dict) else {}
        best = data.get("best") if isinstance(data.get("best"), dict) else {}
        rows.append({
            "run_dir": str(path), "architecture": config.get("architecture"), "dataset": config.get("dataset"),
            "regularisers": config.get("regularisers") if isinstance(config.get("regularisers"), list) else [],
            "status": shown_status(path, data), "best": best, "epochs_done": data.get("epochs_done", 0),
            "epochs": total_epochs(config), "seconds": data.get("seconds"), "test": (data.get("test") or {}).get("accuracy"),
        })
    return RunsResult(root, rows)


def total_epochs(config: dict) -> Any:
    """Both phases' epochs (--epochs, then --fine-tune-epochs), as the run counts them."""
    epochs, more = config.get("epochs"), config.get("fine_tune_epochs")
    if type(epochs) is int and type(more) is int and more > 0:
        return epochs + more
    return epochs


def evaluate(model: str | Path, *, dataset: str | None = None, split: str = "test") -> EvaluationResult:
    """Evaluate a run's best model or a weights entry (``cnnreg evaluate``) on one split of a
    dataset (default: the one it was trained on): loss, accuracy, top-5, per-class precision and
    recall; a run directory also gets confusion.png."""
    from cnnreg.training.report import check_split
    from cnnreg.training.report import evaluate as evaluate_trained
    from cnnreg.training.saved import open_trained

    trained = open_trained(model)
    chosen = check_split(trained, split, dataset)  # a wrong dataset or split costs no keras import
    _load_backend_of(trained)
    return EvaluationResult(evaluate_trained(trained, chosen))


def predict(model: str | Path, images: Sequence[str | Path] | str | Path, *, top: int = 3) -> PredictionResult:
    """Classify image files with a run's best model or a weights entry (``cnnreg predict``),
    preprocessed exactly as in training: the ``top`` classes of each with their probabilities."""
    from cnnreg.training.report import decode_images
    from cnnreg.training.report import predict as predict_trained
    from cnnreg.training.saved import open_trained

    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise CnnregError(f"--top must be >= 1 (got {top})")
    paths = [Path(images)] if isinstance(images, (str, Path)) else [Path(p) for p in images]
    trained = open_trained(model)
    decoded = decode_images(trained, paths)  # a missing or broken image costs no keras import
    _load_backend_of(trained)
    return PredictionResult(predict_trained(trained, paths, top, decoded=decoded))


def _load_backend_of(trained: Any) -> None:
    """Select the backend of a trained model (a run's, or the default for a weights entry) and
    load it, once the manifest has passed its checks."""
    from cnnreg.backends import load_keras, select

    select(trained.backend)
    load_keras()


# --- the range test, initialisation health, publishing -------------------------------------------


def lr_find(
    architecture: str,
    *,
    dataset: str = "digits",
    init: str | None = None,
    reg: Sequence[str] | str = (),
    clip: str | None = None,
    optimizer: str = "adam",
    batch_size: int = 32,
    precision: str = "float32",
    seed: int = 0,
    input_shape: str | Sequence[int] | None = None,
    weights: str = "none",
    freeze_base: bool = False,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    out: str | Path | None = None,
    backend: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LRFindResult:
    """The learning-rate range test of a run's setup (``cnnreg lr-find``; Smith 2017): from the
    run's initial weights, train while the rate grows from ``start`` to ``end``, and suggest the
    rate of the steepest descent.  Nothing is kept; ``out`` gets lr_find.png.
    ``progress(done, total)`` is told each step."""
    from cnnreg.backends import load_keras, select
    from cnnreg.files import writable_folder
    from cnnreg.training import lr_find as range_test
    from cnnreg.training.config import RunConfig, resolve
    from cnnreg.training.model import prepare

    start, end, steps = range_test.check_sweep(start, end, steps)
    config = RunConfig(
        architecture=architecture, dataset=dataset, init=init, regularisers=specs_option(reg), clip=clip, optimizer=optimizer,
        batch_size=batch_size, precision=precision, seed=seed, input_shape=shape_option(input_shape), weights=weights,
        freeze_base=freeze_base,
    )
    config.backend = select(backend)
    plan = resolve(config)  # every user mistake is caught here, before keras is imported
    if out is not None:
        writable_folder(Path(out), "--out")
    load_keras()
    prepare(plan, find_lr=False)
    warnings = list(plan.warnings)
    test = range_test.range_test(plan, start=start, end=end, steps=steps, progress=progress)
    title = (f"{plan.architecture.spec} on {plan.dataset_component.spec}: {plan.optimizer.component.name}"
             + (f" (clip {config.clip})" if config.clip else "") + f", batch {config.batch_size}")
    files = {}
    if out is not None:
        range_test.plot(test, Path(out) / "lr_find.png", title=title)
        files["plot"] = str(Path(out) / "lr_find.png")
    if test.suggested_lr is None:
        warnings.append(f"no learning rate suggested: {test.problem}")
    return LRFindResult(architecture=plan.architecture.spec, dataset=plan.dataset_component.spec,
                        optimizer=config.optimizer, batch_size=config.batch_size, seed=config.seed, test=test,
                        title_text=title, files=files, warnings=warnings)


def diagnose(
    architecture: str,
    *,
    init: Sequence[str] | str = (),
    dataset: str = "digits",
    batch: int = 64,
    seed: int = 0,
    input_shape: str | Sequence[int] | None = None,
    out: str | Path | None = None,
    backend: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> DiagnoseResult:
    """Initialisation health (``cnnreg diagnose``): per hidden layer, at initialisation, on one
    batch of real data, the activations' and gradients' spread under each initialiser in
    ``init`` (none: the architecture's own), and the Glorot / He forward and backward ratios.
    ``out`` gets diagnose.png; ``progress(done, total, what)`` is told each model."""
    from cnnreg.backends import load_keras, select
    from cnnreg.files import writable_folder
    from cnnreg.training import diagnose as initialisation

    chosen = select(backend, activate=False)
    inits = specs_option(init) or [None]
    plans = initialisation.resolve(architecture, inits, dataset=dataset, batch=batch, seed=seed,
                                   input_shape=shape_option(input_shape))  # every mistake: one line, before keras loads
    if out is not None:
        writable_folder(Path(out), "--out")
    select(chosen)
    load_keras()
    return DiagnoseResult(initialisation.run(plans, inits, out=None if out is None else Path(out), progress=progress))


def publish(run_dir: str | Path, dest: str, *, name: str | None = None, license: str | None = None,  # noqa: A002
            format: Sequence[str] | str | None = None, with_preprocess: bool = False,  # noqa: A002
            progress: Callable[[str], None] | None = None) -> PublishResult:
    """Publish a run's best model into a zoo (``cnnreg publish``): the weights, a model card, the
    recipe and the zoo's index; ``dest`` is a folder or ``hf://USER/REPO``.  ``license``: an
    SPDX or Hugging Face id (``"MIT"``); without one the Hub is refused and a folder's card says
    ``license: unknown`` (a note).  ``format`` (onnx, litert, or a list): exports added to the
    entry with their hashes, each checked against the model as ``cnnreg export`` checks it.
    ``with_preprocess``: also ``NAME.raw.keras``, which takes raw pixels of any size.
    ``progress(line)`` is told each step that takes seconds (exports, their checks, an upload)."""
    from cnnreg.training.publish import publish as publish_run

    formats = [format] if isinstance(format, str) else list(format or ())
    return PublishResult(publish_run(Path(run_dir), dest, name=name, license=license, formats=formats,
                                     with_preprocess=with_preprocess, progress=progress))


# --- arguments as the CLI gives them, or as Python values -----------------------------------------


def _launch(coordinator: str | None, num_processes: int | None, process_id: int | None, timeout: int) -> dict:
    """The per-process launch arguments of a multi-process run (not part of its config)."""
    return {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id, "timeout": timeout}
