"""What a run is made of: :class:`RunConfig` (what the manifest stores and ``rerun`` replays) and
:class:`Plan` (the config resolved: components with checked parameters, then data and model).

:func:`resolve` checks every spec and option of a config before anything heavy is imported, so
that a user's mistake is one line before keras loads; :func:`rerun_config` reads a config back
from a run directory, with ``--set`` overrides.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cnnreg.errors import ParameterError
from cnnreg.plugins import get_host
from cnnreg.spec import format_spec, parse
from cnnreg.training import optim, rundir

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclass
class RunConfig:
    """Everything a run is made of; the manifest stores it, ``rerun`` replays it."""

    architecture: str
    dataset: str = "digits"
    init: str | None = None
    regularisers: list[str] = field(default_factory=list)
    clip: str | None = None
    optimizer: str = "adam"
    #: a number, None (the optimizer's own) or ``"auto"``: a range test chooses it
    #: (:mod:`cnnreg.training.lr_find`) and the number found replaces "auto" before the
    #: manifest is written, so that rerun and resume use it rather than search again.
    lr: float | Literal["auto"] | None = None
    schedule: str | None = None
    epochs: int = 10
    batch_size: int = 32
    precision: str = "float32"
    seed: int = 0
    input_shape: tuple[int, int, int] | None = None
    weights: str = "none"
    freeze_base: bool = False
    fine_tune_epochs: int = 0
    fine_tune_lr: float | None = None
    early_stop: int | None = None
    bn_momentum: str = "auto"
    class_weight: str | None = None
    backend: str | None = None
    distribute: str = "auto"
    #: ``--log`` specs (cnnreg.kinds.loggers); None: the default, TensorBoard; ``["none"]``: none.
    log: list[str] | None = None
    #: When the resumable checkpoint is written (:mod:`cnnreg.training.loop`): ``"auto"``, ``"epoch"``
    #: or a number of seconds of training between two checkpoints.
    checkpoint: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["input_shape"] = list(self.input_shape) if self.input_shape else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("input_shape"):
            values["input_shape"] = tuple(values["input_shape"])
        return cls(**values)

    def validate(self) -> None:
        """Check the options that are plain numbers and words, in one line each (the config may
        also come from a run.json, so types are checked too).  Numbers are finite; seeds fit
        Keras' and NumPy's 32-bit seeds; counts fit a 32-bit integer."""
        from cnnreg.errors import choices_text
        from cnnreg.training.optim import check_rate

        def count(option: str, value: Any, low: int, unit: str = "") -> None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ParameterError(f"{option} must be an integer (got {value!r})")
            if value < low:
                raise ParameterError(f"{option} must be >= {low}{unit} (got {value})")
            if value > 2**31 - 1:
                raise ParameterError(f"{option} must be at most {2**31 - 1} (got {value})")

        count("--epochs", self.epochs, 1)
        count("--batch-size", self.batch_size, 1)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= 2**32 - 1:
            raise ParameterError(f"--seed must be an integer from 0 to {2**32 - 1} (2**32 - 1) (got {self.seed!r})")
        if self.lr is not None and self.lr != "auto":
            check_rate(self.lr, "--lr")
        if self.fine_tune_lr is not None:
            check_rate(self.fine_tune_lr, "--fine-tune-lr")
        if self.precision not in PRECISIONS:
            raise ParameterError(f"unknown precision '{self.precision}'" + choices_text(str(self.precision), PRECISIONS))
        count("--fine-tune-epochs", self.fine_tune_epochs, 0)
        if self.early_stop is not None:
            count("--early-stop", self.early_stop, 1, " epoch of patience")
        checkpoint_seconds(self.checkpoint)  # "auto", "epoch" or seconds: one line otherwise
        if self.class_weight not in (None, "balanced"):
            raise ParameterError(f"--class-weight must be balanced (got {self.class_weight})")
        if self.bn_momentum != "auto":
            try:
                value = float(self.bn_momentum)
            except (TypeError, ValueError):
                value = -1
            if not 0 < value < 1:  # nan and inf fail this too
                raise ParameterError(f"--bn-momentum must be auto or a number in (0, 1) (got {self.bn_momentum})")
        if self.input_shape is not None:
            shape = self.input_shape
            if (not isinstance(shape, (tuple, list)) or len(shape) != 3
                    or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
                    or shape[2] not in (1, 3) or min(shape) < 1 or max(shape) > 2**31 - 1):
                text = "x".join(map(str, shape)) if isinstance(shape, (tuple, list)) else repr(shape)
                raise ParameterError(f"--input-shape must be HxWxC with 1 or 3 channels (got {text})")


@dataclass
class Resolved:
    """A component with its checked parameters."""

    component: Any
    params: dict[str, Any]

    @property
    def spec(self) -> str:
        return format_spec(self.component.name, self.params)

    def to_dict(self) -> dict[str, Any]:
        c = self.component
        return {"name": c.name, "spec": self.spec, "params": self.params, "provider": c.provider, "provider_version": c.provider_version}


@dataclass
class Plan:
    """A resolved run: components, data and model, ready to train."""

    config: RunConfig
    architecture: Resolved
    dataset_component: Resolved
    init: Resolved | None
    regularisers: list[tuple[Resolved, Any]]
    #: The optimizer component; ``params["learning_rate"]`` is the run's initial rate.
    optimizer: Resolved
    #: The schedule component and the :class:`cnnreg.kinds.schedules.Schedule` it made, or None.
    schedule: tuple[Resolved, Any] | None
    #: Keras' clipping (``{"clipnorm": 1.0}``) from ``--clip``.
    clip: dict[str, float]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dataset: Any = None
    input_shape: tuple[int, int, int] | None = None
    input_reason: str = ""
    model: Any = None
    preprocess: Any = None
    preprocess_ref: str = ""
    bn_momentum: float | None = None
    #: NumPy splits fitted to the input shape: name → (x float32 0..255, y).
    arrays: dict[str, Any] = field(default_factory=dict)
    #: Files and tf.data splits: name → :class:`cnnreg.datasets.pipeline.Source`.
    streams: dict[str, Any] = field(default_factory=dict)
    #: Keras ``class_weight`` (``--class-weight balanced``), else None.
    class_weights: dict[int, float] | None = None
    #: How the run is spread over devices (cnnreg.training.distribute.Distribution).
    distribution: Any = None
    #: Multi-process launch arguments (per process, so not part of the config).
    launch: dict[str, Any] = field(default_factory=dict)
    #: Where the starting weights come from (cnnreg.training.pretrained.Source); None when
    #: not looked up (``cnnreg resume`` from a checkpoint, which holds the weights).
    source: Any = None
    #: The ``weights`` record of the run replayed by ``cnnreg rerun``: a changed file is said.
    replayed_weights: dict[str, Any] | None = None
    #: ``--lr auto``: how the rate was found (the manifest's ``lr_find``), and the whole test
    #: (:class:`cnnreg.training.lr_find.LRFind`, for its plot).
    lr_find: dict[str, Any] | None = None
    lr_find_result: Any = None
    #: The regularisers' training-step transforms, chained and tried once
    #: (:func:`cnnreg.training.steps.check_step_transforms`): ``(transform, pixel space)`` or None.
    step_transforms: Any = field(default=None, repr=False)
    step_transforms_checked: bool = False
    #: Keras callbacks a caller adds to ``fit`` (a sweep trial's pruning), each made anew per
    #: phase by calling it with the plan.
    extra_callbacks: list[Any] = field(default_factory=list, repr=False)
    #: ``(status, message)`` that one of them sets to end the run early (``"pruned"``).
    stop: tuple[str, str] | None = None
    #: Fields the manifest gets besides its own (a sweep trial's study and number).
    record: dict[str, Any] = field(default_factory=dict)
    #: ``--log``: each logger component with its parameters and the Logger it made.
    loggers: list[tuple[Resolved, Any]] = field(default_factory=list)
    #: Where a warning during training goes (a tracker that stopped): the display's ``warn``.
    warn: Any = field(default=None, repr=False)

    @property
    def steps_per_epoch(self) -> int:
        if "train" in self.arrays:  # as trained on (trimmed for several devices)
            size = len(self.arrays["train"][1])
        elif "train" in self.streams:
            size = len(self.streams["train"])
        else:
            size = len(self.dataset.train)
        return max(1, math.ceil(size / self.config.batch_size))


def resolve(config: RunConfig, *, weights: bool = True) -> Plan:
    """Check every spec and option; nothing heavy is imported here.

    ``weights=False`` leaves ``--weights`` unlooked-up (``cnnreg resume``: the checkpoint holds
    the weights, and what they started from may be gone)."""
    config.validate()
    registry = get_host().registry
    arch_spec = parse(config.architecture)
    arch = registry.get("architecture", arch_spec.name)
    arch_params = arch.resolve(arch_spec.params)
    if "include_top" in arch_params:  # a run trains a classifier: cnnreg builds the top itself
        raise ParameterError(
            f"architecture '{arch.name}': include_top is set by cnnreg run (it trains a classifier); "
            "for the base alone use `cnnreg summary` or --weights with --freeze-base"
        )
    from cnnreg.datasets import resolve_dataset

    ds, ds_params = resolve_dataset(config.dataset, registry)
    init = None
    if config.init:
        init_component, init_params = registry.resolve("initialiser", config.init)
        init = Resolved(init_component, init_params)
    regs = []
    from cnnreg.errors import PluginError
    from cnnreg.kinds.regularisers import Regulariser

    for text in config.regularisers:
        component, params = registry.resolve("regulariser", text)
        made = component.load()(**params)
        if not isinstance(made, Regulariser):  # a plugin's mistake: one line, before any training
            raise PluginError(
                f"regulariser '{component.name}' from {component.provider} returned {type(made).__name__}, "
                "not a cnnreg.kinds.regularisers.Regulariser (see docs/plugins.md)"
            )
        regs.append((Resolved(component, params), made))
    optimizer = optim.resolve_optimizer(registry, config.optimizer, lr=None if config.lr == "auto" else config.lr)
    schedule = optim.resolve_schedule(registry, config.schedule)
    from cnnreg.training.trackers import resolve_loggers

    if config.log is not None and (not isinstance(config.log, list) or not all(isinstance(s, str) for s in config.log)):
        raise ParameterError(f"--log must be logger specs (got {config.log!r})")
    loggers = resolve_loggers(registry, config.log)
    clip = optim.parse_clip(config.clip)
    if config.fine_tune_lr is not None and not config.fine_tune_lr > 0:
        raise ParameterError(f"--fine-tune-lr must be > 0 (got {config.fine_tune_lr})")
    source = None
    if weights:
        from cnnreg.training.pretrained import resolve_source

        source = resolve_source(config.weights, arch, registry)
        config.weights = source.stored  # a path made absolute: rerun and resume find it from anywhere
    declared = {p.name for p in arch.parameters()}
    if (config.weights or "none").lower() == "imagenet" and "weights" not in declared:
        raise ParameterError(
            f"architecture '{arch.name}' has no pretrained ImageNet weights; use a keras-* architecture "
            "(e.g. keras-xception), a weights name (`cnnreg list weights`) or --weights PATH"
        )
    if (config.freeze_base or config.fine_tune_epochs) and (config.weights or "none").lower() == "none":
        raise ParameterError("--freeze-base and --fine-tune-epochs need pretrained weights (--weights imagenet, "
                             "a weights name, a run directory or a weights file)")
    for resolved, reg in regs:
        for name in reg.required_architecture_params():
            if name not in declared:
                raise ParameterError(f"regulariser '{resolved.component.name}' needs an architecture with a '{name}' parameter; '{arch.name}' has none")
    plan = Plan(
        config=config,
        architecture=Resolved(arch, arch_params),
        dataset_component=Resolved(ds, ds_params),
        init=init,
        regularisers=regs,
        optimizer=optimizer,
        schedule=schedule,
        clip=clip,
        source=source,
        loggers=loggers,
    )
    _check_initialiser(plan)
    return plan


def _check_initialiser(plan: Plan) -> None:
    from cnnreg.kinds.initialisers import suggest_for, suits

    # an architecture whose activation is a parameter (plain_net:activation=tanh) says which in its spec
    chosen = plan.architecture.params.get("activation")
    activation = chosen if isinstance(chosen, str) else plan.architecture.component.metadata.get("activation", "")
    if plan.init is None or not activation:
        return
    if suits(plan.init.component, activation) is False:
        plan.warnings.append(
            f"initialiser '{plan.init.component.name}' does not suit {plan.architecture.component.name}'s "
            f"{activation} activation; '{suggest_for(activation)}' would (see `cnnreg show {plan.init.component.name}`)"
        )


def run_names(plan: Plan) -> tuple[str, str]:
    """The architecture and dataset names in a run directory's name: the canonical component
    names (``Lenet5`` is ``lenet5``), an image folder by its own name, a TFDS data set by its."""
    dataset = plan.dataset_component
    name = dataset.component.name
    if name == "folder" and isinstance(dataset.params.get("path"), str):
        name = Path(dataset.params["path"]).name or name
    elif name == "tfds" and isinstance(dataset.params.get("name"), str):
        name = dataset.params["name"].split("/")[0].split(":")[0] or name
    return plan.architecture.component.name, name


def rerun_config(run_dir: Path, overrides: list[str]) -> RunConfig:
    """The config of ``run_dir`` with ``KEY=VALUE`` overrides (``epochs=3``, ``seed=1``)."""
    import dataclasses
    import typing

    from cnnreg.errors import ParameterError, choices_text
    from cnnreg.spec import coerce

    manifest_data = rundir.load_manifest(Path(run_dir))
    rundir.run_config(manifest_data, Path(run_dir))  # one line when the stored config is damaged
    data = dict(manifest_data["config"])
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    hints = typing.get_type_hints(RunConfig)
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ParameterError(f"--set needs KEY=VALUE (got '{item}')")
        if key not in fields:
            raise ParameterError(f"--set: unknown setting '{key}'" + choices_text(key, fields))
        if key == "regularisers":
            data[key] = [v for v in value.split(";") if v]
            continue
        data[key] = coerce(value, hints[key], where=f"--set {key}")
    return RunConfig.from_dict(data)


# --- options as the CLI gives them, or as Python values ------------------------------------------


def parse_lr(value: float | str | None) -> float | str | None:
    """``lr``: a number, ``"auto"`` (any case), or the text of a number; one line naming both
    for anything else."""
    from cnnreg.errors import suggestion_text
    from cnnreg.training.optim import check_rate

    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return "auto"
        try:
            number = float(value)
        except ValueError:
            raise ParameterError(f"--lr must be a number > 0 or auto (got '{value}')"
                                 f"{suggestion_text(value.strip().lower(), ['auto'])}") from None
        return check_rate(number, "--lr")  # inf, nan, 0 and negative numbers: its own line
    return check_rate(value, "--lr")


def specs_option(value: Sequence[str] | str | None) -> list[str]:
    """A repeatable option: one spec, or a list of them."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def shape_option(value: str | Sequence[int] | None) -> tuple[int, int, int] | None:
    """``input_shape``: ``"64x64x3"`` or ``(64, 64, 3)``; the run checks it with the rest of its
    config."""
    from cnnreg.spec import coerce

    if value is None:
        return None
    if isinstance(value, str):
        return coerce(value, tuple[int, int, int], where="--input-shape")
    return tuple(value)


def checkpoint_seconds(value: Any) -> float | None:
    """``--checkpoint``: ``"epoch"`` → 0 (every epoch), a number of seconds ≥ 0 → itself,
    ``"auto"`` → None (:func:`cnnreg.training.loop.checkpoint_due` decides); else one line."""
    text = str(value).strip().lower()
    if text == "auto":
        return None
    if text == "epoch":
        return 0.0
    try:
        seconds = float(text.removesuffix("s"))
    except ValueError:
        seconds = -1.0
    if not (math.isfinite(seconds) and 0 <= seconds <= 10**7) or isinstance(value, bool):
        raise ParameterError(f"--checkpoint must be auto, epoch or a number of seconds such as 300 (got {value!r})")
    return seconds


def run_config(architecture: str, **options: Any) -> RunConfig:
    """A :class:`RunConfig` from the options of ``cnnreg run`` as the CLI or a Python caller
    gives them: ``reg`` one spec or a list, ``lr`` a number, its text or ``"auto"``,
    ``input_shape`` ``"64x64x3"`` or a tuple, ``bn_momentum`` ``"auto"`` or a number; the
    other options are RunConfig's fields of the same names."""
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    values = dict(options)
    if "reg" in values:
        values["regularisers"] = specs_option(values.pop("reg"))
    if "lr" in values:
        values["lr"] = parse_lr(values["lr"])
    if "input_shape" in values:
        values["input_shape"] = shape_option(values["input_shape"])
    if "bn_momentum" in values:
        values["bn_momentum"] = str(values["bn_momentum"])
    if "checkpoint" in values:
        values["checkpoint"] = str(values["checkpoint"])
    if "log" in values:  # one spec or a list; empty or None: the default (TensorBoard)
        values["log"] = specs_option(values["log"]) or None
    unknown = sorted(set(values) - fields)
    if unknown:
        raise TypeError(f"run_config() got unknown options {unknown}")
    return RunConfig(architecture=architecture, **values)
