"""A run's model: built from the architecture with the dataset's classes, the regularisers'
layers, the initialiser and the starting weights (:func:`prepare`, :func:`build_model`), the
training settings put on its layers (:func:`apply_training_settings`) and compiled with the
run's optimizer, schedule and clipping (:func:`compile_model`).
"""

from __future__ import annotations

import contextlib
from typing import Any

from cnnreg.errors import CnnregError
from cnnreg.plugins import get_host
from cnnreg.spec import shape_text
from cnnreg.training import optim
from cnnreg.training.batches import prepare_data
from cnnreg.training.config import Plan, Resolved


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
    base_only = transfer and "weights" in declared  # the base is built bare; its weights are copied in
    bare = {"weights": "none"} if "weights" in declared else {}

    def build(**override):
        return factory(input_shape=plan.input_shape, num_classes=num_classes, include_top=not base_only,
                       **{**params, **override})

    check_buildable(lambda: build(**bare), f"{arch.component.name} at {shape_text(plan.input_shape)}")
    if base_only:
        base = build(**bare)
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
        model = build()
    if plan.init is not None and initialise:  # before the weights: only layers they leave keep it
        _initialise(model, plan.init, config.seed)
    if pretrained and transfer:
        load_weights(plan, model)
    if inserted_head:  # after the weights, which were saved without these layers
        model = _insert_before_classifier(model, inserted_head)
    return model


#: A model whose weights alone would take more than this share of the machine's memory is
#: refused before it is built (its gradients and optimizer slots need as much again, and more).
WEIGHTS_FRACTION = 0.5


def check_buildable(build, what: str) -> int:
    """Build the model with ``build()`` once without allocating a weight (in
    ``keras.StatelessScope(initialize_variables=False)`` a variable is its shape: 0.02-0.1 s)
    and refuse it in one line when its weights alone would take more than
    :data:`WEIGHTS_FRACTION` of this machine's memory: VGG-16 at 2048x2048x3 is 8.6 billion
    parameters (34 GB), which Keras would otherwise start allocating and the operating system
    kill the process for.  Keras' layer-name counters and the random generators are put back,
    so the model built next has the names and initial weights it would have had.  Returns the
    weights' bytes."""
    import math
    import random

    import keras
    import numpy as np

    from cnnreg.analysis.costs import weights_bytes
    from cnnreg.analysis.units import format_bytes
    from cnnreg.datasets.pipeline import memory_bytes

    names = _name_counters()
    saved = dict(names) if names is not None else None
    # initialisers made without a seed draw one from Python's generator: the model built next
    # must get the weights it would have had (a rerun reproduces a run)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    waiting = {id(v) for v in _deferred_variables() or ()}  # variables Keras initialises at a scope's end
    try:
        with keras.StatelessScope(initialize_variables=False):
            weights = build().weights
            count, need = sum(math.prod(v.shape) for v in weights), weights_bytes(weights)
    except CnnregError:
        raise
    except Exception:  # a plugin's model that cannot be built without its weights (a constant
        return 0  # initial value): it is built as it is, unchecked
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        if names is not None:
            names.clear()
            names.update(saved)
        deferred = _deferred_variables()
        if deferred is not None:  # this model's never are: the next StatelessScope would allocate them
            deferred[:] = [v for v in deferred if id(v) in waiting]
    room = int(memory_bytes() * WEIGHTS_FRACTION)
    if need > room:
        raise CnnregError(f"{what} has {count:,} parameters: {format_bytes(need)} of weights, more than "
                          f"{format_bytes(room)} (half of this machine's memory), before gradients and optimizer "
                          "state; choose a smaller --input-shape or an architecture that pools before its classifier")
    return need


def _name_counters():
    """Keras' counters of automatic layer names (``dense``, ``dense_1``...), or None."""
    counters = _keras_global("object_name_uids")
    return counters if isinstance(counters, dict) else None


def _deferred_variables():
    """Keras' list of the variables made in a ``StatelessScope`` and not initialised yet, or None."""
    waiting = _keras_global("uninitialized_variables")
    return waiting if isinstance(waiting, list) else None


def _keras_global(name: str):
    try:
        from keras.src.backend.common import global_state
    except ImportError:
        return None
    return global_state.get_global_attribute(name)


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


def kernel_layers(model):
    return [layer for layer in iter_layers(model) if getattr(layer, "kernel", None) is not None
            or getattr(layer, "depthwise_kernel", None) is not None]


def _initialise(model, init: Resolved, seed: int) -> None:
    """Re-draw the kernel of every Conv and Dense layer with the chosen initialiser; biases 0."""
    import keras

    takes_seed = any(p.name == "seed" for p in init.component.parameters())
    for index, layer in enumerate(kernel_layers(model)):
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
    for layer in kernel_layers(model):
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


def set_base_trainable(model, trainable: bool) -> None:
    for layer in model.layers:
        if layer.name in ("image", "avg_pool", "predictions", "reg_dropout") or layer.__class__.__name__ == "InputLayer":
            continue
        layer.trainable = trainable


#: summary.txt's width: Keras' layer table with all its columns ("Connected to" included).
SUMMARY_WIDTH = 110


def model_summary(model, width: int = SUMMARY_WIDTH) -> str:
    """Keras' layer summary at ``width`` columns whatever the terminal's.  Keras renders it
    with a Rich console that takes its width from the terminal (``COLUMNS``, or
    ``JUPYTER_COLUMNS`` in a notebook) and crops the table to it, so both are set while it
    renders.  In a notebook Rich would also show what it renders: that output is captured."""
    import contextlib
    import os

    from cnnreg.training.progress import in_notebook

    lines: list[str] = []
    names = ("COLUMNS", "JUPYTER_COLUMNS")
    saved = {name: os.environ.get(name) for name in names}
    quiet = contextlib.nullcontext()
    if in_notebook():
        from IPython.utils.capture import capture_output

        quiet = capture_output()
    try:
        for name in names:
            os.environ[name] = str(width)
        with quiet:
            model.summary(print_fn=lambda text, line_break=True: lines.append(text), line_length=width)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return "\n".join(line.rstrip("\n") for line in lines)
