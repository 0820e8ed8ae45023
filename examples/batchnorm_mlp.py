"""The lecture's BatchNorm MLP and its parameter table (Géron ch. 11).

Flatten → BN → Dense(300, relu, he_normal) → BN → Dense(100, relu, he_normal) → BN → softmax at
28×28: 271,346 parameters, 2,368 of them non-trainable (the BN moving means and variances).

    python examples/batchnorm_mlp.py
"""

import cnnreg
from cnnreg.analysis import summarize

model = cnnreg.build("architecture", "mlp_bn", input_shape=(28, 28, 1), num_classes=10)
summary = summarize(model)
print(f"{'layer':<22}{'type':<22}{'output':<14}{'params':>10}{'non-trainable':>15}")
for row in summary.rows:
    print(f"{row.name:<22}{row.type:<22}{str(row.output_shape):<14}{row.params:>10,}{row.non_trainable_params:>15,}")
print(f"total {summary.total_params:,}; trainable {summary.trainable_params:,}; non-trainable {summary.non_trainable_params:,}")
# Each BN layer has 4 parameters per feature: γ and β train, the moving mean and variance do not.
assert (summary.total_params, summary.non_trainable_params) == (271_346, 2_368)
