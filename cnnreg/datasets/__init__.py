"""Datasets beyond arrays: image folders, TensorFlow Datasets, and the tf.data input pipeline.

* :mod:`cnnreg.datasets.folder` — ``folder:PATH`` (one sub-folder per class), no TensorFlow;
* :mod:`cnnreg.datasets.catalog` — the TFDS entries, the split grammar and the offline checks,
  no TensorFlow;
* :mod:`cnnreg.datasets.tfds` — loading TFDS builders (imports ``tensorflow_datasets``);
* :mod:`cnnreg.datasets.pipeline` — decode, resize, cache, shuffle, augment, preprocess, batch,
  prefetch with ``tf.data`` (imports TensorFlow);
* :mod:`cnnreg.datasets.explore` — what ``cnnreg data info`` and ``cnnreg data show`` compute.

This module turns what the user typed after ``--dataset`` into a component and parameters
(:func:`resolve_dataset`), and those into a :class:`cnnreg.kinds.datasets.Dataset` (:func:`build_dataset`).

Two parameters belong to every dataset, built-in or plugin, because the framework applies them
to whatever the factory returns: ``classes`` (which classes to keep: ``5-9``, ``0,2,4``,
``daisy,tulips``; relabelled 0..k-1 in the dataset's order) and ``per_class`` (at most that many
training images per class, a seeded draw).  A factory that declares a parameter of either name
keeps it as its own (``synthetic:classes=3`` is how many classes it generates); the framework's
subset is then not offered under that name for that component.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cnnreg.errors import ParameterError

__all__ = ["SUBSET_PARAMS", "resolve_dataset", "build_dataset", "subset_params"]

#: The framework's parameters of every dataset spec (see the module docstring).
SUBSET_PARAMS = ("classes", "per_class")


def resolve_dataset(text: str, registry: Any = None) -> tuple[Any, dict[str, Any]]:
    """``--dataset`` text → ``(component, checked parameters)``; nothing heavy is imported.

    A registered name wins; an existing folder (``./flowers``, ``/data/flowers``) means
    ``folder:PATH``.  The component's ``check`` metadata (a light ``"module:attr"`` function,
    called as ``check(name, params)``) then validates the parameters, so a missing folder or a
    bad TFDS split is reported before keras or TensorFlow is loaded.
    """
    from cnnreg.errors import UnknownComponentError
    from cnnreg.plugins import get_host
    from cnnreg.registry import resolve_reference
    from cnnreg.spec import SpecError, parse

    registry = registry if registry is not None else get_host().registry
    stripped = text.strip()
    path = Path(os.path.expanduser(stripped))
    component = spec = None
    if not stripped.startswith(("/", ".", "~")):
        try:
            spec = parse(stripped)
            component = registry.get("dataset", spec.name)
        except (SpecError, UnknownComponentError):
            if not path.is_dir():  # `data/flowers` parses as provider/name: a folder wins over the error
                raise
    if component is None:
        if not path.exists():
            raise ParameterError(f"dataset folder {stripped} does not exist")
        if not path.is_dir():
            raise ParameterError(f"dataset path {stripped} is not a folder (give a folder with one sub-folder per class)")
        component, params = registry.get("dataset", "folder"), {"path": str(path.resolve())}
    else:
        params = dict(spec.params)
    typed = list(params)
    subset = _take_subset(component, params)
    resolved = component.resolve(params)
    check = component.metadata.get("check")
    if check:
        resolve_reference(check, what=f"the check of dataset '{component.name}'")(component.name, resolved)
    return component, _in_order({**resolved, **subset}, typed, component)


def _in_order(params: dict[str, Any], typed: list[str], component: Any) -> dict[str, Any]:
    """``params`` in the order they were typed, so the recorded spec reads as the user wrote it."""
    from cnnreg.spec import PRIMARY

    keys = [component.primary if key == PRIMARY else key for key in typed]
    ordered = {key: params[key] for key in keys if key in params}
    return {**ordered, **{key: value for key, value in params.items() if key not in ordered}}


def subset_params(component: Any) -> tuple[str, ...]:
    """The framework's subset parameters this component takes (those it does not declare itself)."""
    own = {p.name for p in component.parameters()}
    return tuple(name for name in SUBSET_PARAMS if name not in own)


def _take_subset(component: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Remove and check ``classes`` / ``per_class`` from ``params`` (a spec's strings).

    Unknown keys are reported here, so the valid list names the two as well.  Class names and
    indices are checked against the data in :func:`build_dataset` (only the data knows them).
    """
    from typing import Annotated

    from cnnreg.errors import choices_text
    from cnnreg.spec import PRIMARY, Range, coerce, shown

    framework = subset_params(component)
    declared = [p.name for p in component.parameters()]
    if not component.accepts_any_keyword():
        for key in params:
            if key != PRIMARY and key not in declared and key not in framework:
                raise ParameterError(
                    f"unknown parameter '{key}' for dataset '{component.name}'" + choices_text(key, [*declared, *framework])
                )
    subset: dict[str, Any] = {}
    if "classes" in framework and "classes" in params:
        text = str(params.pop("classes")).strip()
        if not text or any(not item.strip() for item in text.split(",")):
            raise ParameterError(
                f"dataset '{component.name}': classes={shown(text)} has an empty item; write e.g. classes=0,2 or classes=0-4"
            )
        subset["classes"] = text
    if "per_class" in framework and "per_class" in params:
        subset["per_class"] = coerce(
            params.pop("per_class"), Annotated[int, Range(1, None)], where=f"dataset '{component.name}' parameter 'per_class'"
        )
    return subset


def build_dataset(component: Any, params: dict[str, Any]):
    """Call the dataset's factory with its own ``params`` and apply ``classes`` / ``per_class``.

    ``params`` are what :func:`resolve_dataset` returned.  The ``per_class`` draw is seeded by
    the dataset's ``split_seed`` when it has one (so it follows the split), else by 0.
    """
    framework = subset_params(component)
    subset = {k: v for k, v in params.items() if k in framework}
    own = {k: v for k, v in params.items() if k not in subset}
    dataset = component.load()(**own)
    if not subset:
        return dataset
    from cnnreg.kinds.datasets import class_indices

    label = f"dataset '{component.name}'"
    text = subset.get("classes")
    classes = None if text is None else class_indices(text, dataset.class_names, dataset=label)
    seed = own.get("split_seed", next((p.default for p in component.parameters() if p.name == "split_seed"), 0))
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else 0
    before = dataset.num_classes
    dataset = dataset.select(classes, subset.get("per_class"), seed=seed)
    parts = []
    if classes is not None:
        parts.append(f"classes {text} ({dataset.num_classes} of {before})")
    if "per_class" in subset:
        parts.append(f"at most {subset['per_class']} training images per class (seed {seed})")
    dataset.description = "; ".join(filter(None, [dataset.description, "subset: " + ", ".join(parts)]))
    return dataset
