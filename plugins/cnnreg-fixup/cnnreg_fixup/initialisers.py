"""The ``fixup`` initialiser: He normal scaled for a residual branch, L^(-1/(2m-2)).

Fixup (Zhang, Dauphin & Ma 2019) initialises a residual network without normalisation in
three steps: (1) the classification layer and the last layer of every residual branch get
zero weights; (2) every other layer gets a standard initialisation (He et al. 2015); (3) the
weight layers *inside* the residual branches are scaled by L^(-1/(2m-2)), where L is the number
of residual branches and m the number of weight layers in each.  Scaling a weight by s scales
its variance by s², so step (3) multiplies He's variance 2 / fan_in by L^(-1/(m-1)).

An initialiser only sees the shape of the tensor it fills: it cannot know whether a layer is
inside a branch, is a branch's last layer, or is the classifier.  So this component does step
(3) alone, for the L and m you give it.  The ``fixup_*`` architectures do all three steps.
"""

from __future__ import annotations

from typing import Annotated

from cnnreg.spec import Range


def fixup(
    branches: Annotated[int, Range(1, None)],
    m: Annotated[int, Range(2, None)] = 2,
    seed: int | None = None,
):
    """He normal scaled for Fixup: variance 2 / fan_in × L^(-1/(m-1)), with L = ``branches``.

    That is a standard deviation scaled by L^(-1/(2m-2)) (Zhang, Dauphin & Ma 2019): for basic
    residual units (m = 2 layers per branch) 1/sqrt(L), for bottleneck units (m = 3) L^(-1/4).
    Use it for the layers inside residual branches except the last one; the branch's last layer
    and the classifier start at zero, the stem and projection skips keep plain He normal.  As
    ``--init`` on a whole network it rescales *every* Conv and Dense layer and zeroes none,
    which is not Fixup: use a ``fixup_*`` architecture for that.
    """
    import keras

    return keras.initializers.VarianceScaling(
        scale=2.0 * float(branches) ** (-1.0 / (m - 1)), mode="fan_in", distribution="truncated_normal", seed=seed
    )
