"""Assembling a training run: components → data, model, optimizer → ``model.fit`` → run directory.

``plan(config)`` resolves every spec (errors come before anything heavy is imported), loads the
data and builds the model; ``train(plan, run_dir)`` fits it, writing the run directory as it
goes; ``resume`` and ``rerun`` start from a run directory's manifest.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cnnreg.version import __version__
from cnnreg.errors import CnnregError, ParameterError
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
    #: (:func:`cnnreg.training.loop.check_step_transforms`): ``(transform, pixel space)`` or None.
    step_transforms: Any = field(default=None, repr=False)
    step_transforms_checked: bool = False

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


# --- data and model -------------------------------------------------------------------------


def prepare(plan: Plan, *, input_shape: tuple[int, int, int] | None = None, pretrained: bool = True,
            find_lr: bool = True) -> Plan:
    """Load the data and build the model (imports keras).  ``input_shape``: the run's own
    (``cnnreg resume``); ``pretrained=False`` builds the model without its starting weights
    (resume loads a checkpoint instead).  With ``--lr auto`` the range test then chooses the
    rate (:func:`cnnreg.training.lr_find.choose_lr`) unless ``find_lr`` is False (the CLI runs
    it itself, to show its progress)."""
    import keras

    config = plan.config
    from cnnreg import backends

    if keras.backend.backend() != "tensorflow":  # Keras imports TensorFlow for any check of it
        from cnnreg.backends.tensorflow import hide_until_imported

        hide_until_imported()
    keras.utils.set_random_seed(config.seed)  # TensorFlow's too, where it is in use (else needs_tensorflow)

    backends.make_deterministic()
    keras.config.set_dtype_policy(config.precision)
    from cnnreg.training import distribute

    plan.distribution = distribute.setup(config.distribute, **plan.launch)
    distribute.check_batch(config.batch_size, plan.distribution)
    if plan.distribution.note:
        plan.warnings.append(plan.distribution.note)
    prepare_data(plan, input_shape=input_shape)
    replicas = plan.distribution.replicas
    if replicas > 1:
        for name, (x, y) in list(plan.arrays.items()):
            keep = distribute.trim(len(y), replicas)  # every batch, the last one too, splits evenly
            plan.arrays[name] = (x[:keep], y[:keep])
        for name, source in plan.streams.items():
            if source.images is not None:  # cached in memory: trimmed like arrays
                source.trim(distribute.trim(len(source), replicas))
            elif plan.distribution.processes > 1:
                raise CnnregError(
                    f"the {name} split of {plan.config.dataset} does not fit in memory; several processes "
                    "need it cached (each feeds its part of every batch): use one process per machine's devices"
                )
    with plan.distribution.scope():
        plan.model = build_model(plan, pretrained=pretrained)
    plan.bn_momentum = _bn_momentum(plan)
    apply_training_settings(plan, plan.model)
    if find_lr and config.lr == "auto":
        from cnnreg.training.lr_find import choose_lr

        choose_lr(plan)
    return plan


def prepare_data(
    plan: Plan, *, input_shape: tuple[int, int, int] | None = None, splits: tuple[str, ...] | None = None
) -> Plan:
    """Load the dataset, choose the input shape (and say why), fit every split to it.

    NumPy splits are resized here (:func:`cnnreg.kinds.datasets.fit_images`); files and tf.data splits
    become :mod:`cnnreg.datasets.pipeline` sources (decoded, resized and, when they fit, cached
    in memory).  ``splits`` limits the work to those splits (``cnnreg evaluate``).
    """
    from cnnreg.kinds.datasets import class_weights, fit_images

    config = plan.config
    ds = plan.dataset_component
    if "tfds" in ds.component.tags:  # TensorFlow Datasets imports TensorFlow: quietly, and seeded
        needs_tensorflow(config.seed)
    from cnnreg.datasets import build_dataset

    plan.dataset = build_dataset(ds.component, ds.params)  # with the spec's classes= / per_class=
    dataset = plan.dataset
    if dataset.num_classes < 2:
        raise CnnregError(f"dataset '{dataset.name}' has {dataset.num_classes} class; at least 2 are needed")
    arch = plan.architecture.component
    source = plan.source if splits is None else None  # evaluation takes the run's shape
    bridge = "weights" in {p.name for p in arch.parameters()}
    wants_rgb = arch.metadata.get("channels") == 3 or (source is not None and source.wants_rgb(bridge))
    trained_at = source.input_shape() if source is not None else None
    if input_shape is not None:
        plan.input_shape, plan.input_reason = tuple(input_shape), "the run's input shape"
    elif config.input_shape:
        plan.input_shape, plan.input_reason = tuple(config.input_shape), "--input-shape"
    elif trained_at is not None:  # the weights were trained on it: every layer fits
        plan.input_shape, plan.input_reason = trained_at, f"the input shape of the weights ({source.describe()})"
    else:
        shape = dataset.default_input_shape or dataset.image_shape
        reason = dataset.input_shape_reason or "the dataset's image size"
        if shape[0] is None or shape[1] is None:  # images of many sizes: the architecture's own
            height, width = (arch.metadata.get("default_input_shape") or (224, 224, 3))[:2]
            shape = (height, width, shape[2])
            reason += f"; {arch.name}'s default {height}x{width}"
        minimum = int(arch.metadata.get("min_input_size") or 1)
        if min(shape[:2]) < minimum:
            shape = (max(shape[0], minimum), max(shape[1], minimum), shape[2])
            reason += f"; raised to {arch.name}'s minimum {minimum}x{minimum}"
        if wants_rgb and shape[2] != 3:
            shape = (shape[0], shape[1], 3)
            reason += "; grayscale repeated to 3 channels for RGB weights"
        plan.input_shape, plan.input_reason = tuple(int(d) for d in shape), reason
    plan.preprocess_ref, plan.preprocess = preprocess_of(arch)
    wanted = {n: s for n, s in dataset.splits().items() if splits is None or n in splits}
    for name, split in wanted.items():
        if split.kind == "arrays":
            plan.arrays[name] = (fit_images(split.x, plan.input_shape, resize=dataset.resize), split.y)
    if any(split.kind != "arrays" for split in wanted.values()):
        needs_tensorflow(config.seed)  # files and tf.data splits go through tf.data
        from cnnreg.datasets.pipeline import prepare_sources

        plan.streams = prepare_sources(dataset, plan.input_shape, tuple(wanted))
    if dataset.skipped:
        shown = ", ".join(dataset.skipped[:5]) + (f", ... {len(dataset.skipped) - 5} more" if len(dataset.skipped) > 5 else "")
        plan.warnings.append(f"skipped {len(dataset.skipped)} unreadable image file(s): {shown}")
    if config.class_weight == "balanced" and "train" in wanted:
        plan.class_weights = class_weights(dataset.train.labels(), dataset.num_classes)
        low, high = min(plan.class_weights.values()), max(plan.class_weights.values())
        plan.notes.append(f"class weights (balanced): {low:.3g} to {high:.3g}")
    return plan


def needs_tensorflow(seed: int) -> None:
    """Import TensorFlow for tf.data (TFDS, image folders) without its native start-up lines,
    and give it the run's seed when Keras runs on another backend (there ``prepare`` left it
    unimported, so ``keras.utils.set_random_seed`` did not seed it)."""
    import sys

    if "tensorflow" in sys.modules:
        return
    from cnnreg.backends.tensorflow import quiet_import

    try:
        quiet_import()
    except ImportError:
        return  # the dataset's own code says what to install
    import keras

    if keras.backend.backend() != "tensorflow":
        import tensorflow as tf

        tf.random.set_seed(seed)


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


def preprocess_of(component) -> tuple[str, Any]:
    """An architecture's registered ``preprocess`` (default
    :data:`cnnreg.kinds.architectures.DEFAULT_PREPROCESS`): its reference and the function.  The
    reference comes from the installed plugin's registration."""
    from cnnreg.kinds.architectures import DEFAULT_PREPROCESS
    from cnnreg.registry import resolve_reference

    ref = component.metadata.get("preprocess") or DEFAULT_PREPROCESS
    return ref, resolve_reference(ref, what=f"preprocess of {component.name}")


def run_architecture(data: dict[str, Any], run_dir: Path):
    """The registered architecture a manifest names (``resolved.architecture``: provider and
    name), looked up in the registry."""
    resolved = data.get("resolved")
    resolved = resolved.get("architecture") if isinstance(resolved, dict) else None
    registry = get_host().registry
    if isinstance(resolved, dict) and isinstance(resolved.get("provider"), str) and isinstance(resolved.get("name"), str):
        return registry.get("architecture", f"{resolved['provider']}/{resolved['name']}")
    architecture = data["config"].get("architecture")  # a manifest from before 'resolved'
    if not isinstance(architecture, str):
        raise CnnregError(f"{rundir.MANIFEST} in {run_dir} is damaged: field 'resolved' names no architecture")
    return registry.get("architecture", parse(architecture).name)


def run_preprocess(data: dict[str, Any], run_dir: Path):
    """The preprocessing of a run read back from its manifest: its architecture's registered
    function, or one of :data:`cnnreg.kinds.architectures.PREPROCESS`.  Nothing named in the file is imported: any
    other value of ``preprocess`` is refused in one line."""
    return checked_preprocess(data.get("preprocess"), run_architecture(data, run_dir),
                              f"{rundir.MANIFEST} in {run_dir}: field 'preprocess'")


def checked_preprocess(value: Any, component, where: str, *, none_is_own: bool = False):
    """The preprocessing ``value`` names (read from a file: a manifest, a weights entry) if it
    is ``component``'s registered one or one of :data:`cnnreg.kinds.architectures.PREPROCESS`; else one line
    starting with ``where``.  ``none_is_own``: ``None`` means the architecture's own (an entry
    that does not say)."""
    from cnnreg.kinds.architectures import PREPROCESS

    ref, function = preprocess_of(component)
    if value == ref or (value is None and none_is_own):
        return function
    if isinstance(value, str) and value in PREPROCESS:
        return PREPROCESS[value]
    raise CnnregError(
        f"{where} ({value!r}) is not the preprocessing registered for architecture '{component.name}'; "
        "refusing to import it"
    )


def build_model(plan: Plan, *, pretrained: bool = True, num_classes: int | None = None, initialise: bool = True):
    """The run's model: the architecture with the dataset's classes, regularisers' layers, the
    initialiser, then the starting weights (``--weights``; not when ``pretrained`` is False).

    With weights on an architecture that takes a ``weights`` parameter (the keras-* bridge) the
    model is the lecture's transfer model: the architecture's base (``include_top=False``),
    global average pooling and a new softmax head.  ``num_classes`` builds it for another
    number of classes (to read a file made for them)."""
    import keras

    config = plan.config
    arch = plan.architecture
    declared = {p.name for p in arch.component.parameters()}
    params = dict(arch.params)
    inserted_head: list[Any] = []
    for resolved, reg in plan.regularisers:
        extra = reg.architecture_params()
        usable = {k: v for k, v in extra.items() if k in declared}
        params.update(usable)
        if extra and not usable:
            inserted_head.extend(reg.head_layers())
    transfer = (config.weights or "none").lower() != "none"
    num_classes = num_classes or plan.dataset.num_classes
    factory = arch.component.load()
    if transfer and "weights" in declared:  # the base is built bare; its weights are copied in
        base = factory(input_shape=plan.input_shape, num_classes=num_classes, include_top=False,
                       **{**params, "weights": "none"})
        base._name = "base" if hasattr(base, "_name") else base.name
        inputs = keras.Input(plan.input_shape, name="image")
        x = base(inputs, training=False if config.freeze_base else None)
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        for layer in inserted_head:
            x = layer(x)
        outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
        model = keras.Model(inputs, outputs, name=f"{arch.component.name}_transfer")
        inserted_head = []
    else:
        model = factory(input_shape=plan.input_shape, num_classes=num_classes, include_top=True, **params)
    if plan.init is not None and initialise:  # before the weights: only layers they leave keep it
        _initialise(model, plan.init, config.seed)
    if pretrained and transfer:
        load_weights(plan, model)
    if inserted_head:  # after the weights, which were saved without these layers
        model = _insert_before_classifier(model, inserted_head)
    return model


def load_weights(plan: Plan, model) -> None:
    """Put the starting weights (``--weights``) into ``model``, a model :func:`build_model`
    built for ``plan``; say what was loaded in the run's notes and manifest."""
    from cnnreg.training import pretrained

    if plan.source is None:  # resolved without them (cnnreg resume), needed after all
        plan.source = pretrained.resolve_source(plan.config.weights, plan.architecture.component, get_host().registry)
    if not plan.source.pretrained:
        return
    plan.notes.append(pretrained.load_into(plan, model, plan.source))
    before = (plan.replayed_weights or {}).get("sha256")
    now = plan.source.record.get("sha256")
    if before and now and before != now:
        plan.warnings.append(f"--weights {plan.source.text} changed since the run this one replays "
                             f"(sha256 {before[:12]}... then, {now[:12]}... now)")


def _insert_before_classifier(model, layers):
    """Rebuild a functional model with ``layers`` between its features and its last layer."""
    import keras

    head = model.layers[-1]
    features = head.input
    x = features
    for layer in layers:
        x = layer(x)
    return keras.Model(model.inputs, head(x), name=model.name)


def iter_layers(model):
    """Every layer, descending into nested models and blocks."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers") and layer.layers:
            yield from iter_layers(layer)


def _kernel_layers(model):
    return [layer for layer in iter_layers(model) if getattr(layer, "kernel", None) is not None
            or getattr(layer, "depthwise_kernel", None) is not None]


def _initialise(model, init: Resolved, seed: int) -> None:
    """Re-draw the kernel of every Conv and Dense layer with the chosen initialiser; biases 0."""
    import keras

    takes_seed = any(p.name == "seed" for p in init.component.parameters())
    for index, layer in enumerate(_kernel_layers(model)):
        params = dict(init.params)
        if takes_seed and params.get("seed") is None:
            params["seed"] = (seed * 100_003 + index) % 2**32  # a different, reproducible draw per layer (JAX: uint32)
        initializer = init.component.load()(**params)
        for attr in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            variable = getattr(layer, attr, None)
            if variable is not None:
                variable.assign(keras.ops.cast(initializer(tuple(variable.shape), dtype="float32"), variable.dtype))
        bias = getattr(layer, "bias", None)
        if bias is not None:
            bias.assign(keras.ops.zeros(tuple(bias.shape), dtype=bias.dtype))


def _bn_momentum(plan: Plan) -> float | None:
    """BatchNorm momentum: with few steps per epoch, Keras' 0.99 leaves the moving statistics
    far from the data (validation accuracy near chance after a few epochs), so ``auto`` picks
    0.9 when an epoch has fewer than 500 steps — the moving averages then forget their
    initial values within one epoch (0.9^40 ≈ 1.5%).  None for a model without BatchNorm."""
    import keras

    if plan.model is not None and not any(isinstance(layer, keras.layers.BatchNormalization) for layer in iter_layers(plan.model)):
        return None  # nothing to set, nothing to report (lenet5, alexnet)
    if plan.config.bn_momentum != "auto":
        return float(plan.config.bn_momentum)
    return 0.9 if plan.steps_per_epoch < 500 else None


def apply_training_settings(plan: Plan, model) -> None:
    """Kernel penalties and constraints, BatchNorm momentum (again after loading a checkpoint)."""
    import keras

    regularizers = [r.kernel_regularizer() for _, r in plan.regularisers]
    regularizers = [r for r in regularizers if r is not None]
    constraints = [r for _, r in plan.regularisers]
    for layer in _kernel_layers(model):
        for attr in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            variable = getattr(layer, attr, None)
            if variable is None:
                continue
            if regularizers:
                variable.regularizer = _sum_regularizers(regularizers)
            for reg in constraints:
                constraint = reg.kernel_constraint(len(variable.shape))
                if constraint is not None:
                    variable.constraint = constraint
    if plan.bn_momentum is not None:
        for layer in iter_layers(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = plan.bn_momentum


def _sum_regularizers(regularizers):
    if len(regularizers) == 1:
        return regularizers[0]
    return lambda w: sum(r(w) for r in regularizers)


def compile_model(plan: Plan, model, *, learning_rate: float | None = None, epochs: int | None = None,
                  schedule: bool = True) -> None:
    """Compile ``model`` with the run's optimizer, clipping, loss and metrics; ``schedule=False``
    leaves the learning-rate schedule out (the range test sets the rate itself)."""
    import contextlib

    scope = plan.distribution.scope() if plan.distribution is not None else contextlib.nullcontext()
    with scope:
        _compile(plan, model, learning_rate=learning_rate, epochs=epochs, schedule=schedule)


def _compile(plan: Plan, model, *, learning_rate: float | None, epochs: int | None, schedule: bool = True) -> None:
    import keras

    if plan.config.lr == "auto" and learning_rate is None:  # a caller's bug: prepare(find_lr=False), no choose_lr
        raise RuntimeError("--lr auto: the learning rate has not been chosen (cnnreg.training.lr_find.choose_lr)")
    optimizer = optim.make_optimizer(
        plan.optimizer, clip=plan.clip, schedule=plan.schedule[1] if schedule and plan.schedule else None,
        steps_per_epoch=plan.steps_per_epoch, epochs=epochs or plan.config.epochs, learning_rate=learning_rate,
    )
    loss_params: dict[str, Any] = {}
    for _, reg in plan.regularisers:
        loss_params.update(reg.loss_params())
    # Top-5 is computed by evaluation (`cnnreg evaluate`, the closing test metrics), not per step.
    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    model.compile(optimizer=optimizer, loss=keras.losses.CategoricalCrossentropy(**loss_params), metrics=metrics)


def environment() -> dict[str, Any]:
    """Versions, backend and devices, for the manifest and the run header."""
    import keras

    from cnnreg import backends

    versions = {"cnnreg": __version__, "keras": keras.__version__, "python": platform.python_version()}
    versions.update(backends.framework_versions())
    return {"versions": versions, "backend": keras.backend.backend(), "devices": backends.devices(), "platform": platform.platform()}


def manifest(plan: Plan, *, status: str, argv: list[str] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    data = {
        "schema": rundir.SCHEMA,
        "status": status,
        "config": plan.config.to_dict(),
        "command": argv if argv is not None else sys.argv,
        "resolved": {
            "architecture": plan.architecture.to_dict(),
            "dataset": plan.dataset_component.to_dict(),
            "init": plan.init.to_dict() if plan.init else None,
            "regularisers": [r.to_dict() for r, _ in plan.regularisers],
            "optimizer": {**plan.optimizer.to_dict(), "clip": plan.clip,
                          "schedule": plan.schedule[0].to_dict() if plan.schedule else None},
        },
        "input_shape": list(plan.input_shape) if plan.input_shape else None,
        "input_shape_reason": plan.input_reason,
        "preprocess": plan.preprocess_ref,
        "resize": plan.dataset.resize if plan.dataset else "stretch",
        "class_weights": {str(k): v for k, v in plan.class_weights.items()} if plan.class_weights else None,
        "skipped": len(plan.dataset.skipped) if plan.dataset else 0,
        "skipped_files": list(plan.dataset.skipped[:100]) if plan.dataset else [],
        "bn_momentum": plan.bn_momentum,
        "weights": (plan.source.record or None) if plan.source is not None else None,
        "class_names": list(plan.dataset.class_names) if plan.dataset else None,
        "data": _used_sizes(plan),
        "distribution": plan.distribution.to_dict() if plan.distribution is not None else None,
        "lr_find": plan.lr_find,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    data.update(extra or {})
    return data


def _used_sizes(plan: Plan) -> dict[str, int] | None:
    """Examples per split as trained on (after trimming for several devices)."""
    if plan.dataset is None:
        return None
    sizes = plan.dataset.sizes()
    sizes.update({name: len(y) for name, (_, y) in plan.arrays.items()})
    sizes.update({name: len(source) for name, source in plan.streams.items()})
    return sizes
