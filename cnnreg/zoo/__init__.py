"""The model zoo's services: zoos named by ``CNNREG_ZOO`` and the weights cache.

An entry (:class:`cnnreg.kinds.weights.WeightsEntry`, the weights kind's contract) names an
architecture spec, its classes, input shape and preprocessing, the files with their URLs and
hashes, the metrics it reached and where it comes from.  Entries are data: plugins register them
through ``register_weights`` (the keras.applications ImageNet weights are built in), and zoos
named by ``CNNREG_ZOO`` add theirs (:mod:`cnnreg.zoo.index`).  Files are downloaded only when an
entry is used, into a cache, and their hash is checked (:mod:`cnnreg.zoo.cache`).  Publishing a
run into a zoo is on the run side (:mod:`cnnreg.training.publish`): this package never imports
training.

Importing this package imports nothing heavy: ``cnnreg list weights`` must stay fast.
"""
