"""The cnnreg plugin module named by the entry point. Keep it light: no keras import here."""

import cnnreg

_PKG = "cnnreg_lookahead"
PAPER = {
    "authors": "Zhang, Lucas, Hinton, Ba",
    "year": 2019,
    "title": "Lookahead Optimizer: k steps forward, 1 step back",
    "url": "https://arxiv.org/abs/1907.08610",
}


@cnnreg.hookimpl
def register_optimizers(registry):
    registry.add(
        "lookahead",
        f"{_PKG}.factory:lookahead",  # lazy, and light: keras is imported when the optimizer is built
        summary="Lookahead around another optimizer: every k steps, slow += alpha (fast - slow) (Zhang et al. 2019)",
        tags=("wrapper", "lookahead"),
        primary="inner",  # --optimizer lookahead=sgd
        keras_class=f"{_PKG}.optimizer.Lookahead",
        keras_objects=f"{_PKG}.optimizer",  # imported before a checkpoint holding it is loaded
        wraps="any registered optimizer (inner=SPEC)",
        paper=PAPER,
    )
