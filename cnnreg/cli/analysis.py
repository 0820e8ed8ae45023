"""``cnnreg summary``, ``cnnreg estimate`` and ``cnnreg compare``: the cost model on the command line.

Thin commands over :mod:`cnnreg.api.analysis` (see docs/cost-model.md): parse, call, render.
Every option is checked before keras is imported, so a typo costs no model build; keras is
imported inside the commands only, so ``cnnreg --help`` stays fast.
"""

from __future__ import annotations

from typing import List, Optional

import typer

from cnnreg.cli.common import backend_option


def register(app: typer.Typer) -> None:
    app.command("summary")(summary_command)
    app.command("estimate")(estimate_command)
    app.command("compare")(compare_command)


# --- options shared by the three commands ------------------------------------------------------


def _input_shape_option():
    return typer.Option(None, "--input-shape", help="Model input HxWxC, e.g. 224x224x3 (default: the architecture's own).")


def _classes_option():
    return typer.Option(None, "--classes", help="Output classes (default: the architecture's own, else 1000).")


def _precision_option():
    return typer.Option("float32", "--precision", help="float32, mixed_float16 or mixed_bfloat16.")


def _optimizer_option():
    return typer.Option("adam", "--optimizer", help="Optimizer whose slots count: adam, sgd, momentum, rmsprop, ... "
                        "or a `cnnreg run` spec such as sgd:momentum=0.9.")


def _json_option():
    return typer.Option(False, "--json", help="Machine-readable output (see docs/cli.md).")


# --- cnnreg summary ----------------------------------------------------------------------------


def summary_command(
    name: str = typer.Argument(..., help="Architecture spec, e.g. resnet34 or single_conv:filters=200,kernel=5."),
    input_shape: Optional[str] = _input_shape_option(),
    classes: Optional[int] = _classes_option(),
    expand: bool = typer.Option(False, "--expand", help="List the layers inside nested models and blocks."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Also estimate the training memory at this batch size."),
    precision: str = _precision_option(),
    optimizer: str = _optimizer_option(),
    as_json: bool = _json_option(),
    backend: Optional[str] = backend_option(),
) -> None:
    """Layer table: parameters, MACs and activation bytes.

    With --batch, the training-memory budget too.

    Examples:

      cnnreg summary resnet34 --classes 10

      cnnreg summary single_conv:filters=200,kernel=5 --input-shape 150x100x3 --batch 100

      cnnreg summary resnet50 --batch 64 --precision mixed_bfloat16 --json
    """
    from cnnreg.api.analysis import summary as summarize
    from cnnreg.cli.render import warn

    result = summarize(name, input_shape=input_shape, classes=classes, expand=expand, batch=batch,
                       precision=precision, optimizer=optimizer, backend=backend)
    for line in result.warnings:
        warn(line)
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
        return
    from cnnreg.cli.render import console, print_wide

    summary, budget, target = result.summary, result.budget, result.target
    console.print(_title(target, precision), soft_wrap=True)
    print_wide(_layer_table(summary))
    print_wide(_footer(summary))
    if budget is not None:
        console.print()
        print_wide(_budget_panel(budget, summary))


def _title(target, precision: str):
    from rich.text import Text

    from cnnreg.spec import shape_text

    text = Text()
    text.append(f'Model "{target.spec}"', style="bold")
    text.append(f": input {shape_text(target.input_shape)}, {target.num_classes} classes, {precision}, per instance")
    return text


def _int(n: int) -> str:
    return f"{n:,}"


def _shape_text(shape) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    return str(tuple(shape))


def _layer_table(summary):
    """The Keras-like layer table. Column widths are computed here from the cell strings, so Rich
    does not measure every cell (a 500-row ResNet152 table renders in about 0.3 s)."""
    from rich.table import Column, Table
    from rich.text import Text

    headers = ["layer (type)", "output shape", "params", "trainable", "MACs", "other ops",
               f"activation bytes ({summary.precision})", "param bytes"]
    rows = []
    for r in summary.rows:
        indent = ("   " * r.depth + "└ ") if r.depth else ""
        calls = f" ×{r.calls}" if r.calls > 1 else ""
        partial = "*" if r.note.startswith("partial") else ""
        if r.counted:
            macs, ops = _int(r.macs) + partial, _int(r.other_ops) + partial
        else:
            macs = ops = "?"
        rows.append([f"{indent}{r.name} ({r.type}){calls}", _shape_text(r.output_shape), _int(r.params),
                     _int(r.trainable_params), macs, ops, _int(r.activation_bytes), _int(r.param_bytes)])
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    columns = [Column(h, width=w, no_wrap=True, justify="left" if i < 2 else "right", header_style="bold")
               for i, (h, w) in enumerate(zip(headers, widths))]
    table = Table(*columns, show_edge=False, pad_edge=False, show_header=True)
    for row in rows:
        table.add_row(*map(Text, row))  # Text: names are never read as markup
    return table


def _sizes(n: int) -> str:
    """``12.0 MB = 11.4 MiB`` (the lecture's style); below 1 MB the unit that keeps a figure."""
    from cnnreg.analysis import format_bytes, format_mb, format_mib

    if n >= 10**6:
        return f"{format_mb(n)} = {format_mib(n)}"
    return f"{format_bytes(n)} = {format_bytes(n, binary=True)}"


def _bytes(n: int) -> str:
    return f"{_int(n)} bytes = {_sizes(n)}"


def _footer(summary):
    """Totals under the table: parameters, MACs / FLOPs, activation memory, uncounted layers."""
    from rich.markup import escape
    from rich.table import Table

    from cnnreg.cli.render import human_count

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    non_trainable_bytes = summary.param_bytes - summary.trainable_param_bytes
    grid.add_row("total params", f"{_int(summary.total_params)} ({_sizes(summary.param_bytes)})")
    grid.add_row("trainable params", f"{_int(summary.trainable_params)} ({_sizes(summary.trainable_param_bytes)})")
    grid.add_row("non-trainable params", f"{_int(summary.non_trainable_params)} ({_sizes(non_trainable_bytes)})")
    grid.add_row("MACs per instance", f"{_int(summary.macs)} ({human_count(summary.macs)} MACs)")
    grid.add_row("FLOPs per instance", f"{_int(summary.flops)} ({human_count(summary.flops)} FLOPs, 2 × MACs)")
    grid.add_row("other ops per instance", _int(summary.other_ops))
    grid.add_row("activations per instance",
                 f"{_bytes(summary.activation_bytes)}  (every layer output, {summary.bytes_per_activation} bytes a value)")
    grid.add_row("kept for backprop", f"{_bytes(summary.saved_activation_bytes)} per instance")
    if summary.uncounted:
        shown = ", ".join(summary.uncounted[:20])
        if len(summary.uncounted) > 20:
            shown += f", ... {len(summary.uncounted) - 20} more (all in --json)"
        grid.add_row("[yellow]not costed[/]", f"{len(summary.uncounted)} layer(s) with no cost rule or unknown shape "
                     f"(MACs and ops leave them out, shown as ?): {escape(shown)}")
    else:
        grid.add_row("not costed", "none: every layer has a cost rule")
    if any(r.note.startswith("partial") for r in summary.rows):
        grid.add_row("", "* partial: some layers inside have no cost rule")
    return grid


def _budget_table(budget, *, title: str, width: int | None = None):
    """Every term of a training budget in MB and MiB, with its share; the total last.  A note
    column where the terminal has room for it (``width``; None: any), else each note under its term."""
    from rich.markup import escape
    from rich.table import Table

    from cnnreg.analysis import format_mb, format_mib

    rows = [(t.name, format_mb(t.bytes), format_mib(t.bytes), f"{t.share:.1%}",
             ("× batch; " if t.per_instance else "") + t.note) for t in budget.terms]
    total = budget.total_bytes
    rows.append(("total", format_mb(total), format_mib(total), "100.0%",
                 f"{format_mb(budget.fixed_bytes)} fixed + {budget.batch_size} × "
                 f"{format_mb(budget.per_instance_bytes, 2)} per instance"))
    headers = ("MB (10^6 bytes)", "MiB (2^20 bytes)")

    def build(stacked: bool):
        table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
        table.add_column("term", no_wrap=not stacked, overflow="fold")
        for header in headers:
            table.add_column(header.replace(" (", "\n(") if stacked else header, justify="right", no_wrap=True)
        table.add_column("share", justify="right", no_wrap=True)
        if not stacked:
            table.add_column("note")
        for name, mb, mib, share, note in rows:
            last = name == "total"
            cells = [_stacked(name, note) if stacked else f"[bold]{escape(name)}[/]", mb, mib, share]
            table.add_row(*cells, *([] if stacked else [escape(note)]), end_section=stacked or rows[-2][0] == name,
                          style="bold" if last else None)
        return table

    return _wide_or_stacked(build, width)


#: The fewest columns a note under its term gets before a figures column goes.
NOTE_ROOM = 24


def _stacked(name: str, note: str):
    """A term and, under it, its note (dim): the narrow layout of a table with a note column."""
    from rich.text import Text

    text = Text(name, style="bold")
    text.append("\n" + note, style="dim")
    return text


def _wide_or_stacked(build, width: int | None):
    """``build(False)`` (a column each) where it fits ``width`` columns with its last column whole,
    else ``build(True)`` (notes under their names)."""
    from cnnreg.cli.render import natural_width

    wide = build(False)
    return wide if width is None or natural_width(wide) <= width else build(True)


def _budget_panel(budget, summary):
    """The budget table, and the largest layer's output at the batch (the lecture's 1.2 GB)."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    from cnnreg.analysis import format_bytes

    table = _budget_table(budget, title="")
    parts = [table]
    largest = max(summary.leaves, key=lambda r: r.activation_elements, default=None)
    if largest is not None and largest.activation_bytes:
        at_batch = largest.activation_bytes * budget.batch_size
        parts += [Text(), Text(f"largest layer output: {largest.path} ({largest.type}), "
                               f"{_bytes(largest.activation_bytes)} per instance"),
                  Text(f"  at batch {budget.batch_size}: {_int(at_batch)} bytes = {format_bytes(at_batch)} = "
                       f"{format_bytes(at_batch, binary=True)}")]
    for kind, why in (("separable", "keep the depthwise result inside the layer as well as their output"),
                      (None, "keep their output before and after the fused activation (×2)")):
        more = [r for r in summary.leaves if r.saved_elements > r.activation_elements and (r.rule == "separable") == bool(kind)]
        extra = sum(r.saved_elements - r.activation_elements for r in more)
        if summary.saved_elements and extra >= 0.01 * summary.saved_elements:  # worth a line when it shows
            names = ", ".join(r.path for r in more[:3]) + (", ..." if len(more) > 3 else "")
            parts.append(Text(f"activations: {names} {why}"))
    title = (f"training memory at batch {budget.batch_size} ({budget.precision}, {budget.optimizer}): "
             f"{format_bytes(budget.total_bytes)} = {format_bytes(budget.total_bytes, binary=True)}")
    return Panel(Group(*parts), title=title, title_align="left", expand=False)


# --- cnnreg estimate ---------------------------------------------------------------------------


def estimate_command(
    name: str = typer.Argument(..., help="Architecture spec, e.g. resnet50."),
    device_memory: Optional[str] = typer.Option(
        None, "--device-memory", help="Memory to plan for: 16GB, 80GiB, 512MiB (default: the detected GPU's)."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Batch size to check; remedies are listed when it does not fit."),
    input_shape: Optional[str] = _input_shape_option(),
    classes: Optional[int] = _classes_option(),
    precision: str = _precision_option(),
    optimizer: str = _optimizer_option(),
    method: str = typer.Option(
        "analytic", "--method", help="analytic (the cost model, instant) or compiled (XLA's plan of the compiled "
        "training step; JAX backend, seconds a compile)."),
    platform: Optional[str] = typer.Option(
        None, "--platform", help="Whose XLA plan the analytic budget models: gpu (default) or cpu."),
    as_json: bool = _json_option(),
    backend: Optional[str] = backend_option(),
) -> None:
    """The largest batch that fits a device's memory.

    When --batch does not fit, the remedies ranked by bytes saved.

    --method compiled reads XLA's plan of the compiled training step (JAX, nothing allocated).

    Examples:

      cnnreg estimate resnet50 --device-memory 16GiB --batch 256

      cnnreg estimate vgg16 --device-memory 80GiB --precision mixed_bfloat16

      cnnreg estimate resnet50 --method compiled --device-memory 16GiB

      cnnreg estimate resnet50 --platform cpu --device-memory 16GiB
    """
    from cnnreg.api.analysis import estimate
    from cnnreg.cli.render import steps, warn

    with steps(f"estimating {name}…", shown=not as_json) as say:  # a compile takes seconds to minutes
        result = estimate(name, device_memory=device_memory, batch=batch, input_shape=input_shape, classes=classes,
                          precision=precision, optimizer=optimizer, method=method, platform=platform, backend=backend,
                          progress=say)
    for line in result.warnings:
        warn(line)
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
        return
    if result.method == "compiled":
        _print_compiled(result)
        return
    _print_estimate(result.target, precision, result.optimizer, result.device, result.max_batch_size, result.budget,
                    result.advice)


def _both(n: int) -> str:
    from cnnreg.analysis import format_bytes

    return f"{format_bytes(n)} = {format_bytes(n, binary=True)}"


def _print_header(target, precision, optimizer, device) -> None:
    """The model, precision and optimizer; the device memory and where it came from."""
    from rich.markup import escape

    from cnnreg.cli.render import console
    from cnnreg.spec import shape_text

    memory = device["memory_bytes"]
    console.print(f"[bold]{escape(target.spec)}[/]: input {shape_text(target.input_shape)}, {target.num_classes} classes, "
                  f"{precision}, {optimizer}")
    source = (f"{device['name']}, detected; the framework and CUDA context need some of it" if device["detected"]
              else f"--device-memory {device['given']}")
    console.print(f"[bold]device[/]: {_int(memory)} bytes = {_both(memory)}  [dim]({escape(source)})[/]")


def _plan_note(budget) -> str:
    return "" if budget.platform == "gpu" else f" (modelled on XLA's {budget.platform} plan)"


def _print_estimate(target, precision, optimizer, device, largest, budget, advice) -> None:
    from cnnreg.cli.render import console

    memory = device["memory_bytes"]
    _print_header(target, precision, optimizer, device)
    if largest:
        console.print(f"[bold]largest batch that fits[/]: {largest}")
    else:
        console.print("[bold]largest batch that fits[/]: none: batch 1 does not fit")
    if advice is None:
        console.print()
        console.print(_budget_table(budget, title=f"training memory at batch {largest}" + _plan_note(budget),
                                    width=console.width))
        return
    need = budget.total_bytes
    if advice.fits:
        console.print(f"batch {budget.batch_size} [green]fits[/]: {_both(need)} ({need / memory:.0%} of the device)")
    else:
        console.print(f"batch {budget.batch_size} [red]does not fit[/]: needs {_both(need)}, "
                      f"{_both(need - memory)} more than the device")
    console.print()
    console.print(_budget_table(budget, title=f"training memory at batch {budget.batch_size}" + _plan_note(budget),
                                width=console.width))
    if advice.fits:
        return
    console.print()
    console.print(_remedies_table(advice.remedies, console.width))
    if any(r.key.startswith("devices_") for r in advice.remedies):
        console.print("[dim]several devices: figures are per device (data parallel)[/]")


def _remedies_table(remedies, width: int):
    """Remedies as a row each: what, bytes needed and saved (GB = GiB), whether it fits, how;
    where that is wider than ``width``, how goes under the remedy and GB over GiB."""
    from rich.markup import escape
    from rich.table import Table

    from cnnreg.analysis import format_bytes

    def build(stacked: bool):
        table = Table(title="remedies, most bytes saved first (lecture: smaller batch, stride, fewer layers, "
                      "16-bit floats, several devices)", title_justify="left", show_edge=False, pad_edge=False)
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("remedy", no_wrap=not stacked, overflow="fold")
        table.add_column("needs", justify="right", no_wrap=True)
        table.add_column("saves", justify="right", no_wrap=True)
        table.add_column("fits", justify="center", no_wrap=True)
        if not stacked:
            table.add_column("how")
        for i, r in enumerate(remedies, start=1):
            sizes = [f"{format_bytes(n)}{chr(10) if stacked else ' = '}{format_bytes(n, binary=True)}"
                     for n in (r.total_bytes, r.saved_bytes)]
            what = _stacked(r.title, r.detail) if stacked else f"[bold]{escape(r.title)}[/]"
            table.add_row(str(i), what, *sizes, "[green]yes[/]" if r.fits else "[red]no[/]",
                          *([] if stacked else [escape(r.detail)]), end_section=stacked)
        return table

    return _wide_or_stacked(build, width)


def _print_compiled(result) -> None:
    """``--method compiled``: XLA's plan of the compiled step at --batch (else at the largest
    batch), and the largest batch that fits, found by bisection over compiled plans."""
    from rich.markup import escape

    from cnnreg.cli.render import console, hidden_note

    target, precision, plan, device = result.target, result.precision, result.budget, result.device
    largest, batch, fits = result.max_batch_size, result.batch, result.fits
    memory = device["memory_bytes"]
    _print_header(target, precision, plan.optimizer, device)
    compiles = f"{result.compiles} compile{'s' if result.compiles != 1 else ''}"
    how = f"(compiled on {escape(plan.platform)}, {compiles}, {result.seconds:.1f} s)"
    console.print(f"[bold]largest batch that fits[/]: {largest or 'none: batch 1 does not fit'} {how}")
    need = plan.total_bytes
    if batch is not None or not largest:
        if fits:
            console.print(f"batch {plan.batch_size} [green]fits[/]: {_both(need)} ({need / memory:.0%} of the device)",
                          )
        else:
            console.print(f"batch {plan.batch_size} [red]does not fit[/]: needs {_both(need)}, "
                          f"{_both(need - memory)} more than the device")
            console.print("[dim]remedies ranked by bytes saved come from the cost model: the same command with "
                          "--method analytic[/]")
    console.print()
    # stacked, the notes under the terms keep NOTE_ROOM columns: else the exact bytes go (MB and MiB stay)
    figures = max(len(_int(n)) for n in (plan.total_bytes, plan.temp_bytes, plan.argument_bytes, -plan.alias_bytes))
    hidden = ["bytes"] if console.width - (figures + 2 * len("(10^6 bytes)") + 9) < NOTE_ROOM else []
    console.print(plan_table(plan, console.width, set(hidden)))
    if hidden:
        console.print(hidden_note(hidden))


def plan_table(plan, width: int | None = None, hidden: set[str] = frozenset()):
    """XLA's four figures of a compiled step (and its code size) in bytes, MB and MiB; the total
    last.  Notes under their terms where a note column does not fit ``width``; ``hidden``: the
    columns left out ("bytes")."""
    from rich.markup import escape
    from rich.table import Table

    from cnnreg.analysis import format_mb, format_mib

    where = plan.platform if plan.device.lower() == plan.platform else f"{plan.platform}, {plan.device}"
    title = f"XLA's plan of the training step at batch {plan.batch_size} ({where})"
    rows = [
        ("arguments", plan.argument_bytes, "weights, optimizer slots, metrics state and the input batch"),
        ("outputs", plan.output_bytes, "the updated weights, slots and metrics state, and the logs"),
        ("temporaries", plan.temp_bytes, "what the step allocates: activations kept for backprop, gradients, scratch"),
        ("aliased", -plan.alias_bytes, "donated state buffers reused for the outputs (counted in both above)"),
        ("generated code", plan.generated_code_bytes, "the compiled program (not in the total)"),
        ("total", plan.total_bytes, "arguments + outputs + temporaries - aliased"),
    ]

    def build(stacked: bool):
        table = Table(title=escape(title), title_justify="left", show_edge=False, pad_edge=False)
        table.add_column("term", no_wrap=not stacked, overflow="fold")
        if "bytes" not in hidden:
            table.add_column("bytes", justify="right", no_wrap=True)
        for header in ("MB (10^6 bytes)", "MiB (2^20 bytes)"):
            table.add_column(header.replace(" (", "\n(") if stacked else header, justify="right", no_wrap=True)
        if not stacked:
            table.add_column("note")
        for name, n, note in rows:
            figures = ([] if "bytes" in hidden else [_int(n)]) + [format_mb(n), format_mib(n)]
            table.add_row(_stacked(name, note) if stacked else f"[bold]{name}[/]", *figures,
                          *([] if stacked else [note]), end_section=stacked or name == "generated code",
                          style="bold" if name == "total" else None)
        return table

    return _wide_or_stacked(build, width)


# --- cnnreg compare ----------------------------------------------------------------------------


def compare_command(
    names: List[str] = typer.Argument(..., help="Two or more architecture specs, e.g. resnet34 resnet50 vgg16."),
    input_shape: Optional[str] = _input_shape_option(),
    classes: Optional[int] = _classes_option(),
    batch: int = typer.Option(32, "--batch", help="Batch size of the training-memory column."),
    precision: str = _precision_option(),
    optimizer: str = _optimizer_option(),
    as_json: bool = _json_option(),
    backend: Optional[str] = backend_option(),
) -> None:
    """Architectures side by side: parameters, MACs, memory.

    Parameters, MACs, activation memory and training memory at a batch.

    Examples:

      cnnreg compare resnet34 resnet50 vgg16

      cnnreg compare resnet50 mobilenet_v2 --batch 64 --precision mixed_float16 --json
    """
    from cnnreg.api.analysis import compare
    from cnnreg.cli.render import warn

    result = compare(names, input_shape=input_shape, classes=classes, batch=batch, precision=precision,
                     optimizer=optimizer, backend=backend)
    for line in result.warnings:
        warn(line)
    if as_json:
        from cnnreg.cli.render import print_json

        print_json(result.to_dict())
        return
    rows, targets = result.rows, result.targets
    from rich.markup import escape
    from rich.table import Table

    from cnnreg.analysis import format_mb, format_mib
    from cnnreg.cli.render import human_count, print_wide
    from cnnreg.spec import shape_text

    table = Table(title=f"per instance, and training memory at batch {batch} ({precision}, {rows[0].optimizer})",
                  title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("", style="bold", no_wrap=True)
    for r in rows:
        table.add_column(escape(r.name), justify="right", no_wrap=True)
    lines = [
        ("input", [f"{shape_text(t.input_shape)}, {t.num_classes} classes" for t in targets]),
        ("parameters", [_int(r.params) for r in rows]),
        ("trainable", [_int(r.trainable_params) for r in rows]),
        ("MACs", [f"{_int(r.macs)} ({human_count(r.macs)})" for r in rows]),
        ("FLOPs (2 × MACs)", [human_count(r.flops) for r in rows]),
        ("activations (MB)", [format_mb(r.activation_bytes) for r in rows]),
        ("activations (MiB)", [format_mib(r.activation_bytes) for r in rows]),
        ("kept for backprop (MiB)", [format_mib(r.saved_activation_bytes) for r in rows]),
        (f"training, batch {batch} (MB)", [format_mb(r.budget_bytes) for r in rows]),
        (f"training, batch {batch} (MiB)", [format_mib(r.budget_bytes) for r in rows]),
        ("layers not costed", [str(r.uncounted) for r in rows]),
    ]
    for label, cells in lines:
        table.add_row(label, *cells)
    print_wide(table)
