"""A plugin's mistakes and odd values reach the user as one line, or are taken in stride."""

from __future__ import annotations

import types

import cnnreg
from cnnreg import testing
from cnnreg.kinds.regularisers import Regulariser, augmentation_layers
from cnnreg.testing import run_cli

FAST = ["--dataset", "digits:size=8", "--batch-size", "64"]


def _plugin(**factories):
    module = types.ModuleType("oddplug")

    @cnnreg.hookimpl
    def register_regularisers(registry):
        for name, factory in factories.items():
            registry.add(name, factory)

    module.register_regularisers = register_regularisers
    return module


def test_a_factory_that_returns_no_regulariser_is_one_line():
    with testing.plugin(_plugin(notreg=lambda: object()), distribution="cnnreg-odd"):
        result = run_cli("run", "mlp_bn", "--reg", "notreg", *FAST, "--dry-run")
    assert result.exit_code == 2, result.output
    assert "regulariser 'notreg' from cnnreg-odd returned object, not a cnnreg.kinds.regularisers.Regulariser" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_augmentation_may_return_one_layer_or_none_and_gets_a_32_bit_seed():
    seen = []

    class One(Regulariser):
        def augmentation(self, seed):
            seen.append(seed)
            return "layer"

    class Nothing(Regulariser):
        def augmentation(self, seed):
            return None

    class Two(Regulariser):
        def augmentation(self, seed):
            return ["a", "b"]

    assert augmentation_layers([One(), Nothing(), Two()], 2**32 - 1 + 7919 * 3) == ["layer", "a", "b"]
    assert seen == [(2**32 - 1 + 7919 * 3) % 2**32]


def test_a_label_with_square_brackets_is_printed_as_written():
    class Bracketed(Regulariser):
        label = "penalty on [conv, dense] kernels"

    with testing.plugin(_plugin(bracketed=lambda: Bracketed()), distribution="cnnreg-odd"):
        result = run_cli("run", "mlp_bn", "--reg", "bracketed", *FAST, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "penalty on [conv, dense] kernels" in result.stdout.replace("\n", " ") or "[conv, dense]" in result.stdout


def test_include_top_in_a_run_spec_is_one_line():
    result = run_cli("run", "mlp_bn:include_top=false", *FAST, "--dry-run")
    assert result.exit_code == 2, result.output
    assert "include_top is set by cnnreg run" in result.stderr and result.stderr.count("\n") == 1
