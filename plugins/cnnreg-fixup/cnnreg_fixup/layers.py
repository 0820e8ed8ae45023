"""Fixup's two scalar layers, registered with Keras so a saved ``model.keras`` loads again.

This module imports keras; only the architectures import it, when a model is built.  To load a
saved Fixup model in your own code, ``import cnnreg_fixup.layers`` before
``keras.models.load_model`` (or pass ``custom_objects``).
"""

from __future__ import annotations

import math

import keras


@keras.saving.register_keras_serializable(package="cnnreg_fixup")
class ScalarBias(keras.layers.Layer):
    """Adds one trainable scalar to its input (initialised to 0): Fixup's ``x + b``."""

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(), initializer="zeros")

    def call(self, inputs):
        return inputs + keras.ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="cnnreg_fixup")
class ScalarMultiplier(keras.layers.Layer):
    """Multiplies its input by one trainable scalar (initialised to 1): Fixup's ``x * s``."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones")

    def call(self, inputs):
        return inputs * keras.ops.cast(self.scale, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def _register_cost_rules() -> None:
    """Tell ``cnnreg summary`` what the scalars cost: one add or multiply per element, fused."""
    try:
        from cnnreg.analysis.costs import RULES, Rule, UnknownShapeError
    except ImportError:  # an older or newer cnnreg without this table: the layers stay "not costed"
        return

    def one_op_per_element(layer, input_shapes, output_shapes):
        if any(d is None for shape in output_shapes for d in shape):
            raise UnknownShapeError(f"unknown dimension in {output_shapes}")
        return 0, sum(math.prod(shape) for shape in output_shapes)

    for name in ("ScalarBias", "ScalarMultiplier"):
        RULES.setdefault(name, Rule("scalar", one_op_per_element, "fusible", "1 op per element"))


_register_cost_rules()
