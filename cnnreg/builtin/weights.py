"""Built-in plugin: the ImageNet weights of every keras.applications model, as weights entries.

One entry per weight file the keras-* bridge can load, named ``keras-<model>.imagenet`` (and
``keras-mobilenet.imagenet-128`` ... for the other input sizes MobileNet v1 / v2 have weights
for), made from the table in :mod:`cnnreg.builtin.keras_weights`.  Registering them reads a table
and imports no keras; the files are downloaded only when an entry is used.
"""

from __future__ import annotations

from cnnreg.builtin.keras_weights import keras_entries
from cnnreg.hookspecs import hookimpl

#: What every weights component's factory is: fetch the entry's file into the cache.
FETCH = "cnnreg.zoo.cache:fetch_entry"


@hookimpl
def register_weights(registry) -> None:
    """Register the keras.applications ImageNet weights."""
    for entry, summary in keras_entries():
        registry.add(entry.name, FETCH, summary=summary, tags=("keras-applications", "imagenet"),
                     **entry.to_metadata())
