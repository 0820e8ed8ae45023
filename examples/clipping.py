"""Gradient clipping as in the lecture: clipvalue loses the direction, clipnorm keeps it.

The gradient [0.9, 100] becomes [0.9, 1.0] under clipvalue=1 and [0.00899964, 0.99995950] under
clipnorm=1 — the same optimizers `cnnreg run --clip value=1` / `--clip norm=1` build.

    python examples/clipping.py
"""

import numpy as np

import cnnreg
from cnnreg.training import optim


def clipped(spec: str) -> np.ndarray:
    import keras

    sgd = optim.resolve_optimizer(cnnreg.get_registry(), "sgd", lr=1.0)  # the optimizer component `sgd`
    optimizer = optim.make_optimizer(sgd, clip=optim.parse_clip(spec), steps_per_epoch=1, epochs=1)
    variable = keras.Variable(np.zeros(2, dtype="float32"))
    optimizer.apply_gradients([(keras.ops.convert_to_tensor(np.array([0.9, 100.0], "float32")), variable)])
    return -keras.ops.convert_to_numpy(variable)  # SGD with lr 1 moves by exactly the clipped gradient


for spec in ("value=1", "norm=1", "global_norm=1"):
    print(f"--clip {spec:<14} [0.9, 100] -> {np.array2string(clipped(spec), precision=8)}")
