"""The model zoo: pretrained weights as registry components of kind ``weights``.

An entry (:class:`cnnreg.zoo.entry.WeightsEntry`) names an architecture spec, its classes, input
shape and preprocessing, the files with their URLs and hashes, the metrics it reached and where
it comes from.  Entries are data: plugins register them through ``register_weights``
(the keras.applications ImageNet weights are built in, :mod:`cnnreg.builtin.weights`), and zoos
named by ``CNNREG_ZOO`` add theirs (:mod:`cnnreg.zoo.index`).  Files are downloaded only when an
entry is used, into a cache, and their hash is checked (:mod:`cnnreg.zoo.cache`).

Importing this package imports nothing heavy: ``cnnreg list weights`` must stay fast.
"""
