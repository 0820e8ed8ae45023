"""``cnnreg diagnose``: an architecture at initialisation under several initialisers, on one
batch of real data (Glorot & Bengio 2010; He et al. 2015).

:func:`diagnose` resolves the architecture once per initialiser exactly as ``cnnreg run`` would
(same resolution, data preparation and ``--init``), builds each model, measures it with
:func:`cnnreg.analysis.diagnose.layer_statistics` on the same batch, and compares the ratios
(:func:`ratio_warnings`); :func:`cnnreg.analysis.diagnose.plot` draws diagnose.png.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from cnnreg.analysis.diagnose import HEALTHY, SPLIT, VANISHING, layer_statistics, plot
from cnnreg.errors import CnnregError

def resolve(architecture: str, inits: Sequence[str | None] = (None,), *, dataset: str = "digits", batch: int = 128,
            seed: int = 0, input_shape: tuple[int, int, int] | None = None) -> list[Any]:
    """One :class:`cnnreg.training.config.Plan` per initialiser (None: the architecture's own), as
    ``cnnreg run`` resolves them: every user mistake is one line here, before keras loads."""
    from cnnreg.training.config import RunConfig
    from cnnreg.training.config import resolve as resolve_run

    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise CnnregError(f"--batch must be an integer >= 1 (got {batch!r})")
    plans = []
    for init in list(inits) or [None]:
        config = RunConfig(architecture=architecture, dataset=dataset, init=init, batch_size=batch, seed=seed,
                           input_shape=input_shape)
        plan = resolve_run(config, weights=False)  # diagnose starts from random weights only
        plan.warnings.clear()  # the init/activation check is redone below, on the layers themselves
        plans.append(plan)
    return plans


def diagnose(architecture: str, inits: Sequence[str | None] = (None,), *, dataset: str = "digits", batch: int = 128,
             seed: int = 0, input_shape: tuple[int, int, int] | None = None, out: Path | None = None,
             progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Build ``architecture`` once per initialiser and measure :func:`layer_statistics` on the
    same batch of ``batch`` training examples (drawn with ``seed``, preprocessed as in a run).
    ``out``: a folder for diagnose.png.  Returns the JSON of ``cnnreg diagnose``."""
    plans = resolve(architecture, inits, dataset=dataset, batch=batch, seed=seed, input_shape=input_shape)
    return run(plans, [None if i is None else str(i) for i in (list(inits) or [None])], out=out, progress=progress)


def run(plans: list[Any], inits: list[str | None], *, out: Path | None = None,
        progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Measure the plans :func:`resolve` made (imports keras)."""
    import keras

    from cnnreg.version import __version__
    from cnnreg.training.model import build_model
    from cnnreg.training.batches import prepare_data

    first = plans[0]
    config = first.config
    prepare_data(first, input_shape=config.input_shape, splits=(SPLIT,))
    warnings = list(first.warnings)
    x, y = _batch(first, config.batch_size, config.seed)
    results = []
    for step, (plan, init) in enumerate(zip(plans, inits)):
        label = init or "architecture's own"
        if progress is not None:
            progress(step, len(plans), label)
        for name in ("dataset", "input_shape", "input_reason", "preprocess", "preprocess_ref"):
            setattr(plan, name, getattr(first, name))
        keras.utils.set_random_seed(config.seed)  # every initialiser draws from the same seed
        model = build_model(plan, pretrained=False)
        try:
            stats = layer_statistics(model, x, y)
        finally:
            del model
            keras.backend.clear_session()
        results.append({"init": init, "spec": plan.init.spec if plan.init else None, "label": label, **stats})
    if progress is not None:
        progress(len(plans), len(plans), "done")
    warnings += ratio_warnings(results, config.architecture)
    result = {
        "cnnreg": __version__, "architecture": config.architecture, "dataset": config.dataset, "split": SPLIT,
        "batch": int(len(x)), "seed": config.seed, "input_shape": list(first.input_shape),
        "backend": keras.backend.backend(), "hidden_layers": len(results[0]["layers"]),
        "results": results, "warnings": warnings, "files": {},
    }
    if out is not None:
        path = Path(out) / "diagnose.png"
        plot(result, path)
        result["files"]["plot"] = str(path)
    return result


def _batch(plan, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``size`` training examples drawn with ``seed`` (the whole split when it has fewer),
    preprocessed like a run's; a split too large to cache: its first ``size`` examples."""
    classes = plan.dataset.num_classes
    if SPLIT in plan.arrays:
        images, labels = plan.arrays[SPLIT]
    elif SPLIT in plan.streams and plan.streams[SPLIT].images is not None:  # cached: a uint8 tf tensor
        images, labels = np.asarray(plan.streams[SPLIT].images), plan.streams[SPLIT].labels
    elif SPLIT in plan.streams:
        from cnnreg.training.batches import held_out

        for x, y in held_out(plan, SPLIT).as_numpy_iterator():
            return np.asarray(x, dtype="float32"), np.asarray(y, dtype="float32")
        raise CnnregError(f"the {SPLIT} split of {plan.config.dataset} is empty")
    else:
        raise CnnregError(f"dataset {plan.config.dataset} has no {SPLIT} split")
    if len(labels) == 0:
        raise CnnregError(f"the {SPLIT} split of {plan.config.dataset} is empty")
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(labels), size=min(size, len(labels)), replace=False))
    x = plan.preprocess(np.array(images[index], dtype="float32"))
    return np.asarray(x, dtype="float32"), np.eye(classes, dtype="float32")[np.asarray(labels)[index]]


def _main_activation(layers: Sequence[dict[str, Any]]) -> str:
    return Counter(layer["activation"] for layer in layers).most_common(1)[0][0]


def ratio_warnings(results: Sequence[dict[str, Any]], architecture: str) -> list[str]:
    """One line per initialiser whose forward or backward ratio leaves :data:`HEALTHY`, naming
    the initialiser that suits the hidden layers' activation (the table of
    :mod:`cnnreg.kinds.initialisers`)."""
    from cnnreg.kinds.initialisers import suggest_for, suits
    from cnnreg.plugins import get_host

    low, high = HEALTHY
    lines = []
    for result in results:
        problems = []
        for key, what in (("forward_ratio", "activations"), ("backward_ratio", "gradients")):
            value = result[key]
            if value is None:
                problems.append(f"{what} are all zero at one end")
            elif not low <= value <= high:
                if value < VANISHING[0] or value > VANISHING[1]:
                    change = "vanish" if value < low else "explode"
                else:
                    change = f"{'shrink' if value < low else 'grow'} by more than a decade"
                problems.append(f"{what} {change} ({key.replace('_', ' ')} {value:.2g})")
        if not problems:
            continue
        layers = result["layers"]
        activation = _main_activation(layers)
        suggested = suggest_for(activation)
        fits = None
        if result["spec"]:
            component = get_host().registry.get("initialiser", result["spec"].split(":")[0])
            fits = suits(component, activation)
        head = f"{result['label']}: {' and '.join(problems)} over {len(layers)} hidden layers"
        if result["spec"] is None:  # the architecture's own initialisation: unknown here
            lines.append(f"{head} (outside [{low:g}, {high:g}]); try --init {suggested} (it suits {activation}), or "
                         "batch normalisation or shortcuts (residual connections)")
        elif fits:
            lines.append(f"{head}, although it suits {activation}: a plain net this deep needs batch normalisation "
                         "or shortcuts (residual connections)")
        else:
            lines.append(f"{head} (outside [{low:g}, {high:g}]); for {activation}, '{suggested}' suits: "
                         f"cnnreg diagnose {architecture} --init {suggested}")
    return lines
