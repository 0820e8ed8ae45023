"""Datasets beyond arrays: image folders, TensorFlow Datasets, and the tf.data input pipeline.

* :mod:`cnnreg.datasets.folder` — ``folder:PATH`` (one sub-folder per class), no TensorFlow;
* :mod:`cnnreg.datasets.catalog` — the TFDS entries, the split grammar and the offline checks,
  no TensorFlow;
* :mod:`cnnreg.datasets.tfds` — loading TFDS builders (imports ``tensorflow_datasets``);
* :mod:`cnnreg.datasets.pipeline` — decode, resize, cache, shuffle, augment, preprocess, batch,
  prefetch with ``tf.data`` (imports TensorFlow);
* :mod:`cnnreg.datasets.explore` — what ``cnnreg data info`` and ``cnnreg data show`` compute.

This module only turns what the user typed after ``--dataset`` into a component and parameters.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cnnreg.errors import ParameterError

__all__ = ["resolve_dataset"]


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

    registry = registry or get_host().registry
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
        params = spec.params
    resolved = component.resolve(params)
    check = component.metadata.get("check")
    if check:
        resolve_reference(check, what=f"the check of dataset '{component.name}'")(component.name, resolved)
    return component, resolved
