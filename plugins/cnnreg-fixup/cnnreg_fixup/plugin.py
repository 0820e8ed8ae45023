"""The cnnreg plugin module named by the entry point. Keep it light: no keras import here."""

import cnnreg

_PKG = "cnnreg_fixup"
PAPER = {
    "authors": "Zhang, Dauphin, Ma",
    "year": 2019,
    "title": "Fixup Initialization: Residual Learning Without Normalization",
    "url": "https://arxiv.org/abs/1901.09321",
}
_SCALE_0_1 = "cnnreg.builtin.architectures.preprocess:scale_0_1"

#: name → (summary, default input shape, minimum input size, residual branches L, layers per branch m)
ARCHITECTURES = {
    "fixup_resnet18": ("ResNet-18 without BatchNorm, Fixup-initialised (Zhang et al. 2019)", (224, 224, 3), 32, 8, 2),
    "fixup_resnet34": ("ResNet-34 without BatchNorm, Fixup-initialised (Zhang et al. 2019)", (224, 224, 3), 32, 16, 2),
    "fixup_resnet50": ("Bottleneck ResNet-50 without BatchNorm, Fixup-initialised", (224, 224, 3), 32, 16, 3),
    "fixup_resnet101": ("Bottleneck ResNet-101 without BatchNorm, Fixup-initialised", (224, 224, 3), 32, 33, 3),
    **{
        f"fixup_resnet{depth}": (f"CIFAR ResNet-{depth} without BatchNorm, Fixup-initialised", (32, 32, 3), 8,
                                 (depth - 2) // 2, 2)
        for depth in (20, 32, 56, 110)
    },
}


@cnnreg.hookimpl
def register_architectures(registry):
    for name, (summary, size, min_size, branches, m) in ARCHITECTURES.items():
        registry.add(
            name,
            f"{_PKG}.architectures:{name}",  # lazy: keras is imported only when a model is built
            summary=summary,
            tags=("resnet", "fixup", "no-batchnorm"),
            default_input_shape=size,
            min_input_size=min_size,
            family="resnet",
            paper=PAPER,
            activation="relu",
            batchnorm=False,
            preprocess=_SCALE_0_1,
            weights={},
            residual_branches=branches,
            layers_per_branch=m,
            fixup_scale=f"L^(-1/{2 * m - 2}) = {branches ** (-1 / (2 * m - 2)):.4f}",
            own_initialisation="Fixup; --init replaces it (every kernel redrawn, the zero layers too)",
            keras_objects=f"{_PKG}.layers",  # imported before a saved model is loaded
        )


@cnnreg.hookimpl
def register_initialisers(registry):
    registry.add(
        "fixup",
        f"{_PKG}.initialisers:fixup",
        summary="He normal × L^(-1/(2m-2)) for residual branches (Fixup's step 3 only; needs branches=L)",
        tags=("fixup", "residual"),
        suits=("relu", "leaky_relu", "relu6", "elu", "gelu", "silu", "swish"),
        variance="2 / fan_in × L^(-1/(m-1))",
        reference="Zhang, Dauphin & Ma 2019",
        paper=PAPER,
        primary="branches",
    )
