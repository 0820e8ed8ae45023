"""Glorot vs He initialisation on a deep ReLU network (Glorot & Bengio 2010; He et al. 2015).

Pushes a batch through 30 Dense(100, relu) layers initialised by each initialiser and prints the
variance of the activations at depth 1, 10, 20 and 30: with Glorot they shrink layer after layer
(each ReLU layer halves the variance when σ² = 1/fan_avg), with He (σ² = 2/fan_in) they stay put.

    python examples/glorot_vs_he.py
"""

import numpy as np

import cnnreg

DEPTH, WIDTH = 30, 100
x0 = np.random.default_rng(0).normal(size=(512, WIDTH)).astype("float32")

for spec in ("glorot_uniform", "he_normal", "lecun_normal"):
    x, variances = x0, {}
    for depth in range(1, DEPTH + 1):
        w = np.asarray(cnnreg.build("initialiser", f"{spec}:seed={depth}")((WIDTH, WIDTH)))
        x = np.maximum(x @ w, 0.0)
        if depth in (1, 10, 20, 30):
            variances[depth] = float(x.var())
    print(f"{spec:<16}" + "  ".join(f"depth {d}: {v:9.3g}" for d, v in variances.items()))
