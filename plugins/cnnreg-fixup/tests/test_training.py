"""Fixup trains a deep ResNet without BatchNorm where the same network with He init diverges.

The setting of the paper (SGD with momentum 0.9), shrunk to run on a CPU in about a minute:
CIFAR-style ResNet-56 (27 residual branches) at width 8, the 8×8 digits, 4 epochs, seed 0.
Measured (keras 3.15, TensorFlow 2.21 CPU):

=========  ==========================================  ===================================
epoch      Fixup: loss / accuracy / val accuracy       He init, no Fixup (``fixup=false``)
=========  ==========================================  ===================================
1          2.294 / 0.105 / 0.159                       NaN loss at epoch 1, batch 2: failed
2          2.246 / 0.183 / 0.310
3          1.782 / 0.372 / 0.568
4          0.999 / 0.649 / 0.598  (test 0.603)
=========  ==========================================  ===================================
"""

import math

from cnnreg import testing
from cnnreg.training import RunConfig, train

import cnnreg_fixup.plugin as plugin

SETTING = dict(dataset="digits:size=8", optimizer="momentum", lr=0.02, epochs=4, batch_size=32, seed=0)


def test_fixup_trains_a_deep_resnet_without_bn_that_diverges_without_fixup(tmp_path):
    with testing.isolated(), testing.plugin(plugin, distribution="cnnreg-fixup"):
        fixup = train(RunConfig("fixup_resnet56:width=8", **SETTING), tmp_path / "fixup")
        plain = train(RunConfig("fixup_resnet56:width=8,fixup=false", **SETTING), tmp_path / "plain")

    assert fixup.status == "completed", fixup.message
    losses = [row["loss"] for row in fixup.history]
    assert len(losses) == 4 and all(math.isfinite(v) and v < math.log(10) + 0.01 for v in losses)  # never above chance
    assert losses[-1] < 1.5 and fixup.history[-1]["val_accuracy"] > 0.4  # measured 1.00 and 0.60 (chance 0.1)

    # Without Fixup the same network diverges (measured: NaN at the second batch); should a
    # platform's arithmetic keep it finite, it must still end far behind.
    if plain.status == "failed":
        assert "NaN" in plain.message
    else:
        assert plain.history[-1]["loss"] > losses[-1] + 0.5
        assert plain.history[-1]["val_accuracy"] < fixup.history[-1]["val_accuracy"] - 0.2
