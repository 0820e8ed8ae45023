"""Built-in plugin: the weights kind's own entries, and the zoos named by ``CNNREG_ZOO``.

* The ImageNet weights of every keras.applications model, one entry per weight file the keras-*
  bridge can load, named ``keras-<model>.imagenet`` (and ``keras-mobilenet.imagenet-128`` ... for
  the other input sizes MobileNet v1 / v2 have weights for), made from the table in
  :mod:`cnnreg.builtin.weights.applications`.  Registering them reads a table and imports no
  keras; the files are downloaded only when an entry is used.
* The entries of the zoos in ``CNNREG_ZOO`` (:mod:`cnnreg.zoo.index`), registered the first time
  the weights kind is read (an http zoo's index is a download: ``--help`` and a run without
  ``--weights`` skip it).  Each problem is one warning line (an unreachable zoo, a bad entry),
  and the rest of cnnreg keeps working.
"""

from __future__ import annotations

import os

from cnnreg.builtin.weights.applications import keras_entries
from cnnreg.errors import CnnregError
from cnnreg.hookspecs import hookimpl
from cnnreg.kinds.weights import FETCH, ZOO_ENV


@hookimpl
def register_weights(registry) -> None:
    """Register the keras.applications ImageNet weights, and the ``CNNREG_ZOO`` zoos (deferred)."""
    for entry, summary in keras_entries():
        registry.add(entry.name, FETCH, summary=summary, tags=("keras-applications", "imagenet"),
                     **entry.to_metadata())
    if os.environ.get(ZOO_ENV, "").strip():
        registry.defer(register_zoos)


def register_zoos(registry) -> None:
    """Register every ``CNNREG_ZOO`` zoo's entries with ``registry``; say each problem in one line."""
    from cnnreg.zoo.index import register_zoos as register

    try:
        lines = register(registry)
    except CnnregError as exc:  # a mistake in CNNREG_ZOO itself: say it, load the rest
        lines = [str(exc)]
    for line in lines:
        registry.report(line)
