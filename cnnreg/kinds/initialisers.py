"""The initialiser kind: a factory that returns a ``keras.initializers.Initializer``.

``cnnreg run --init SPEC`` re-draws the kernel (``kernel``, ``depthwise_kernel``,
``pointwise_kernel``) of every layer that has one (Conv and Dense layers, nested models too)
after the architecture is built, and sets their biases to zero.  The factory is called once per
layer, with the spec's parameters; when it declares a parameter ``seed`` that the user left
``None``, cnnreg passes a different seed for each layer, ``(run seed × 100003 + layer index) mod
2**32``.  Any callable ``init(shape, dtype="float32")`` returning an array of that shape works.

Metadata ``suits=("relu", ...)`` names the lower-case activations an initialiser suits; ``cnnreg
run`` compares it with the architecture's ``activation`` (:func:`suits`) and warns on a
mismatch, suggesting what the lecture's table recommends (:func:`suggest_for`):

=========  ============================================  ===========  ================
family     suits activations                             normal σ²    uniform limit r
=========  ============================================  ===========  ================
Glorot     none (linear), tanh, sigmoid, softmax         1 / fan_avg  sqrt(3 / fan_avg)
He         ReLU and variants (leaky ReLU, ELU, GELU...)  2 / fan_in   sqrt(6 / fan_in)
LeCun      SELU                                          1 / fan_in   sqrt(3 / fan_in)
=========  ============================================  ===========  ================

(Glorot & Bengio 2010; He et al. 2015; LeCun et al. 1998; fan_avg = (fan_in + fan_out) / 2.)
"""

from __future__ import annotations

from typing import Any

from cnnreg.kinds import KindSpec, Scaffold

__all__ = ["KIND", "GLOROT_SUITS", "HE_SUITS", "LECUN_SUITS", "suits", "suggest_for"]

#: Activations each family suits (the lecture's table).
GLOROT_SUITS = ("linear", "tanh", "sigmoid", "softmax")
HE_SUITS = ("relu", "leaky_relu", "relu6", "elu", "gelu", "silu", "swish", "hard_swish", "prelu", "mish")
LECUN_SUITS = ("selu",)


def suits(component: Any, activation: str) -> bool | None:
    """Whether an initialiser component suits ``activation``; None when it makes no claim
    (no ``suits`` metadata) or there is no activation to compare."""
    claimed = component.metadata.get("suits")
    if claimed is None or not activation:
        return None
    return activation.lower() in claimed


def suggest_for(activation: str) -> str:
    """The initialiser the lecture's table recommends for ``activation``."""
    activation = activation.lower()
    if activation in LECUN_SUITS:
        return "lecun_normal"
    if activation in HE_SUITS:
        return "he_normal"
    return "glorot_uniform"


#: What ``cnnreg plugin new --kind initialiser`` writes: a working component and its test.
SCAFFOLD = Scaffold(
    register='''\
    registry.add(
        "$name",
        "$module.$kmod:$name",
        summary="Scaled He normal: variance gain * 2 / fan_in",
        suits=("relu", "leaky_relu", "elu", "gelu"),
    )
''',
    factories='''\
"""The initialiser's factory: returns a keras.initializers.Initializer."""

from typing import Annotated

from cnnreg.spec import Range


def $name(
    gain: Annotated[float, Range(0, 100, min_inclusive=False)] = 1.0,
    seed: Annotated[int, Range(0, 2**32 - 1)] | None = None,  # JAX takes unsigned 32-bit seeds
):
    """He normal scaled by ``gain``: variance gain * 2 / fan_in."""
    import keras

    return keras.initializers.VarianceScaling(scale=2.0 * gain, mode="fan_in", distribution="truncated_normal", seed=seed)
''',
    test='''

def test_variance_is_gain_times_he():
    import keras

    with testing.isolated(), testing.plugin(plugin, distribution="$dist"):
        init = cnnreg.build("initialiser", "$name:gain=0.5,seed=1")
    values = keras.ops.convert_to_numpy(init((500, 500)))
    assert abs(values.var() - 0.5 * 2 / 500) < 0.1 * 0.5 * 2 / 500
''',
)


KIND = KindSpec(
    "initialiser", "initialisers", words=("initializer", "initializers", "init", "inits"),
    contract=__name__,
    doc="""Add weight initialisers: the factory returns a ``keras.initializers.Initializer``.

    Give the activations it suits as metadata, ``suits=("relu", "elu", ...)``, so that
    ``cnnreg run`` can warn when it is paired with an architecture whose activation it does not
    suit.  See cnnreg.kinds.initialisers for the full contract.
    """,
    scaffold=SCAFFOLD,
)
