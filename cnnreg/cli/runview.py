"""Rendering of a run: the header before training and the closing summary after it."""

from __future__ import annotations

import contextlib
from typing import Optional

from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from cnnreg.api.runs import RunDisplay


def _grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    return grid


def _component(resolved) -> str:
    c = resolved.component
    return f"{escape(resolved.spec)}  [dim]({escape(c.provider)} {escape(c.provider_version)})[/]"


def header(plan, *, resumed: int | None = None) -> Panel:
    """The run header: resolved components, data, model size and cost, device and precision.
    ``resumed``: the epochs on record when ``cnnreg resume`` goes on from them."""
    from cnnreg.training.loop import environment

    config = plan.config
    grid = _grid()
    grid.add_row("architecture", _component(plan.architecture))
    shape = "x".join(str(d) for d in plan.input_shape)
    grid.add_row("input", f"{shape}  [dim]({plan.input_reason})[/]")
    sizes = plan.dataset.sizes()
    data = ", ".join(f"{k} {v:,}" for k, v in sizes.items())
    grid.add_row("dataset", f"{_component(plan.dataset_component)}: {plan.dataset.num_classes} classes; {data}")
    if plan.dataset.skipped:
        grid.add_row("skipped", escape(f"{len(plan.dataset.skipped)} unreadable files: {', '.join(plan.dataset.skipped[:5])}"))
    grid.add_row("init", _component(plan.init) if plan.init else "architecture defaults")
    if plan.regularisers:
        grid.add_row("regularisers", escape("; ".join(f"{r.spec}: {reg.describe()}" for r, reg in plan.regularisers)))
    opt = _component(plan.optimizer)
    if plan.clip:
        opt += "  clip " + ", ".join(f"{k}={v:g}" for k, v in plan.clip.items())
    if plan.schedule:
        resolved, schedule = plan.schedule
        opt += f"  schedule {escape(resolved.spec)}: {escape(schedule.describe())}"
    grid.add_row("optimizer", opt)
    train = f"{config.epochs} epochs × {plan.steps_per_epoch} steps, batch {config.batch_size}, seed {config.seed}"
    if config.fine_tune_epochs:
        train += f"; then {config.fine_tune_epochs} fine-tuning epochs"
    if plan.bn_momentum is not None:
        train += f"; BatchNorm momentum {plan.bn_momentum:g}"
    grid.add_row("training", train)
    if config.log is not None:  # --log given (the default, TensorBoard alone, is not shown)
        grid.add_row("log", escape("; ".join(f"{r.spec}: {logger.describe()}" for r, logger in plan.loggers)) or "none")
    if resumed is not None:
        total = config.epochs + config.fine_tune_epochs
        grid.add_row("resumed", f"after epoch {resumed} of {total}" if resumed else f"from epoch 1 of {total} (no epoch was on record)")
    model = plan.model
    total = model.count_params()
    trainable = sum(int(_size(w)) for w in model.trainable_weights)
    grid.add_row("parameters", f"{total:,} ({trainable:,} trainable, {total - trainable:,} non-trainable)")
    for label, text in _cost_rows(plan):
        grid.add_row(label, text)
    env = environment()
    devices = ", ".join(f"{d['name']}" + (f" ({d['memory_bytes'] / 2**30:.1f} GiB)" if d.get("memory_bytes") else "") for d in env["devices"]) or "CPU"
    grid.add_row("device", f"{devices}; backend {env['backend']}; precision {config.precision}")
    if plan.distribution is not None and plan.distribution.mode != "none":
        grid.add_row("distribution", plan.distribution.describe(config.batch_size))
    for note in plan.notes:
        grid.add_row("note", note)
    command = "run" if resumed is None else "resume"
    return Panel(grid, title=f"cnnreg {command} {plan.architecture.component.name}", title_align="left", expand=False)


def _size(weight) -> int:
    n = 1
    for d in weight.shape:
        n *= int(d)
    return n


def _cost_rows(plan) -> list[tuple[str, str]]:
    """MACs per instance and the training-memory estimate (cnnreg.analysis)."""
    from cnnreg.training.costs import run_costs

    return run_costs(plan)


def closing(outcome) -> Panel:
    grid = _grid()
    style = {"completed": "green", "failed": "red", "interrupted": "yellow"}.get(outcome.status, "")
    grid.add_row("status", f"[{style}]{outcome.status}[/]" + (f": {outcome.message}" if outcome.message else ""))
    if outcome.history:
        last = outcome.history[-1]
        metrics = "  ".join(f"{k} {last[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if isinstance(last.get(k), (int, float)))
        grid.add_row("last epoch", f"{last['epoch']}: {metrics}")
    if outcome.best_epoch:
        (metric, value), = outcome.best.items()
        grid.add_row("best epoch", f"{outcome.best_epoch} ({metric} {value:.4f})")
    if outcome.test:
        test = f"accuracy {outcome.test['accuracy']:.4f}  loss {outcome.test['loss']:.4f}"
        if "top5" in outcome.test:
            test += f"  top-5 {outcome.test['top5']:.4f}"
        grid.add_row("test", f"{test}  ({outcome.test['examples']} examples, best model)")
    grid.add_row("time", f"{outcome.seconds:.1f} s")
    grid.add_row("files", f"{outcome.run_dir}/  (run.json, history.csv, model.keras, curves.png, summary.txt)")
    return Panel(grid, title="run summary", title_align="left", expand=False)


class CliDisplay(RunDisplay):
    """A run on the terminal: a status line while the data loads, the header panel (and the
    warnings), a progress bar per epoch, or a line per epoch through a pipe."""

    def __init__(self, *, quiet: bool, dry_run: bool = False) -> None:
        super().__init__(quiet=quiet)
        self.dry = dry_run
        self._status = None

    def status(self, text: str):
        from cnnreg.cli.render import console

        if not console.is_terminal or self.quiet:
            return contextlib.nullcontext()
        self._status = console.status(text)
        return self._status

    def update(self, text: str) -> None:
        if self._status is not None:
            self._status.update(text)

    def note(self, line: str) -> None:
        from cnnreg.cli.render import console

        if not self.quiet or self.dry:
            console.print(line, highlight=False, soft_wrap=True)

    def warn(self, line: str) -> None:
        from cnnreg.cli.render import warn

        warn(line)

    def prepared(self, plan, *, resumed: Optional[int] = None) -> None:
        from cnnreg.cli.render import console

        panel = header(plan, resumed=resumed)  # computes the cost model, which may add warnings
        for line in plan.warnings:
            self.warn(line)
        if not self.quiet or self.dry:
            console.print(panel)

    def dry_run(self, plan) -> None:
        from cnnreg.cli.render import console

        plan.model.summary(print_fn=lambda text, line_break=True: console.print(text, markup=False, highlight=False))

    def progress(self, steps_per_epoch: int):
        from cnnreg.cli.render import console
        from cnnreg.training.progress import make_progress

        mode = "quiet" if self.quiet else ("rich" if console.is_terminal else "plain")
        return make_progress(mode, console, steps_per_epoch)
