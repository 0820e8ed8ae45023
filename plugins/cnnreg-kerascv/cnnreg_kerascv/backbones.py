"""keras-cv 0.9 classification backbones that keras.applications lacks, as cnnreg architectures.

keras-cv's own shortcuts (``keras_cv.models.ResNet18V2Backbone()``, ``from_preset(...)``)
download the architecture's *configuration* from Kaggle even without weights, so they fail
offline.  Each backbone here is built from its generic class with the hyperparameters of the
keras-cv preset (written out in :data:`BACKBONES`), randomly initialised, with
``include_rescaling=False`` (cnnreg's ``scale_0_1`` preprocessing does the /255).  The model is
the backbone (a nested ``keras_cv`` model named ``backbone``) → global average pool → optional
dropout → softmax, like cnnreg's ``keras-*`` architectures.
"""

from __future__ import annotations

from typing import Any

from cnnreg.kinds.architectures import DropoutRate, check_dropout, check_inputs
from cnnreg.spec import shape_text
from cnnreg.errors import ParameterError
from cnnreg_kerascv._kerascv import keras_cv

_EFFICIENTNET_LITE = dict(
    stackwise_kernel_sizes=[3, 3, 5, 3, 5, 5, 3],
    stackwise_num_repeats=[1, 2, 2, 3, 3, 4, 1],
    stackwise_input_filters=[32, 16, 24, 40, 80, 112, 192],
    stackwise_output_filters=[16, 24, 40, 80, 112, 192, 320],
    stackwise_expansion_ratios=[1, 6, 6, 6, 6, 6, 6],
    stackwise_strides=[1, 2, 2, 2, 1, 2, 1],
    depth_divisor=8,
    drop_connect_rate=0.2,
    activation="relu6",
)


def _lite(width: float, depth: float, dropout: float) -> dict[str, Any]:
    return dict(_EFFICIENTNET_LITE, width_coefficient=width, depth_coefficient=depth, dropout_rate=dropout)


def _mit(depths: list[int], dims: list[int]) -> dict[str, Any]:
    return dict(depths=depths, embedding_dims=dims)


#: cnnreg name → (keras_cv.models class, display name, its arguments: the keras-cv preset's configuration).
BACKBONES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "kerascv-resnet18_v2": ("ResNetV2Backbone", "ResNet-18 v2", dict(
        stackwise_filters=[64, 128, 256, 512], stackwise_blocks=[2, 2, 2, 2], stackwise_strides=[1, 2, 2, 2],
        block_type="basic_block")),
    "kerascv-resnet34_v2": ("ResNetV2Backbone", "ResNet-34 v2", dict(
        stackwise_filters=[64, 128, 256, 512], stackwise_blocks=[3, 4, 6, 3], stackwise_strides=[1, 2, 2, 2],
        block_type="basic_block")),
    **{
        f"kerascv-csp_darknet_{size}": ("CSPDarkNetBackbone", f"CSPDarkNet-{display}",
                                        dict(stackwise_channels=channels, stackwise_depth=depth))
        for size, display, channels, depth in (
            ("tiny", "Tiny", [48, 96, 192, 384], [1, 3, 3, 1]),
            ("s", "S", [64, 128, 256, 512], [1, 3, 3, 1]),
            ("m", "M", [96, 192, 384, 768], [2, 6, 6, 2]),
            ("l", "L", [128, 256, 512, 1024], [3, 9, 9, 3]),
            ("xl", "XL", [170, 340, 680, 1360], [4, 12, 12, 4]),
        )
    },
    "kerascv-efficientnetlite_b0": ("EfficientNetLiteBackbone", "EfficientNet-Lite0", _lite(1.0, 1.0, 0.2)),
    "kerascv-efficientnetlite_b1": ("EfficientNetLiteBackbone", "EfficientNet-Lite1", _lite(1.0, 1.1, 0.2)),
    "kerascv-efficientnetlite_b2": ("EfficientNetLiteBackbone", "EfficientNet-Lite2", _lite(1.1, 1.2, 0.3)),
    "kerascv-efficientnetlite_b3": ("EfficientNetLiteBackbone", "EfficientNet-Lite3", _lite(1.2, 1.4, 0.3)),
    "kerascv-efficientnetlite_b4": ("EfficientNetLiteBackbone", "EfficientNet-Lite4", _lite(1.4, 1.8, 0.3)),
    "kerascv-mit_b0": ("MiTBackbone", "MiT-B0", _mit([2, 2, 2, 2], [32, 64, 160, 256])),
    "kerascv-mit_b1": ("MiTBackbone", "MiT-B1", _mit([2, 2, 2, 2], [64, 128, 320, 512])),
    "kerascv-mit_b2": ("MiTBackbone", "MiT-B2", _mit([3, 4, 6, 3], [64, 128, 320, 512])),
    "kerascv-mit_b3": ("MiTBackbone", "MiT-B3", _mit([3, 4, 18, 3], [64, 128, 320, 512])),
    "kerascv-mit_b4": ("MiTBackbone", "MiT-B4", _mit([3, 8, 27, 3], [64, 128, 320, 512])),
    "kerascv-mit_b5": ("MiTBackbone", "MiT-B5", _mit([3, 6, 40, 3], [64, 128, 320, 512])),
}

#: keras-cv class → (minimum input size, the size must be a multiple of this).  Every backbone
#: reduces its input 32-fold; CSPDarkNet's Focus stem halves it into channels (even sizes only);
#: keras-cv 0.9's MiT reshapes assume multiples of 32 from 64 up (other sizes fail, or give a
#: feature map with the wrong number of channels).
SIZES = {"ResNetV2Backbone": (32, 1), "CSPDarkNetBackbone": (32, 2), "EfficientNetLiteBackbone": (32, 1),
         "MiTBackbone": (64, 32)}


def build(name: str, input_shape, num_classes: int, include_top: bool, dropout: float):
    """Build backbone ``name`` from keras-cv and put cnnreg's classifier head on it."""
    class_name, _, config = BACKBONES[name]
    min_size, multiple = SIZES[class_name]
    shape = check_inputs(name, input_shape, num_classes, min_size)
    if shape[0] % multiple or shape[1] % multiple:
        raise ParameterError(f"input shape {shape_text(shape)} for {name}: height and width must be multiples of "
                             f"{multiple} (keras-cv's {class_name})")
    check_dropout(name, dropout)
    kcv = keras_cv(f"architecture '{name}'")
    import keras

    backbone = getattr(kcv.models, class_name)(include_rescaling=False, input_shape=shape, name="backbone", **config)
    inputs = keras.Input(shape=shape, name="input")
    x = backbone(inputs)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="head_dropout")(x)
        x = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, x, name=name.replace("-", "_"))


#: Family → (summary template, paper) for the metadata and docstrings.
FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "ResNetV2Backbone": ("{name}: pre-activation residual units (He et al. 2016)", {
        "authors": "He, Zhang, Ren, Sun", "year": 2016, "title": "Identity Mappings in Deep Residual Networks"}),
    "CSPDarkNetBackbone": ("{name}: cross-stage partial DarkNet, the YOLOv4/v5 backbone", {
        "authors": "Wang, Liao, Wu, Chen, Hsieh, Yeh", "year": 2020,
        "title": "CSPNet: A New Backbone that can Enhance Learning Capability of CNN"}),
    "EfficientNetLiteBackbone": ("{name}: EfficientNet without squeeze-and-excitation, ReLU6", {
        "authors": "Tan, Le", "year": 2019,
        "title": "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
        "note": "the Lite variants are Google's 2020 TensorFlow Lite adaptation"}),
    "MiTBackbone": ("Mix Transformer {name}: hierarchical vision transformer (SegFormer encoder)", {
        "authors": "Xie, Wang, Yu, Anandkumar, Alvarez, Luo", "year": 2021,
        "title": "SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers"}),
}


def summary(name: str) -> str:
    """The one-line summary of backbone ``name``."""
    class_name, display, _ = BACKBONES[name]
    return FAMILIES[class_name][0].format(name=display)


def _factory(name: str):
    def factory(
        input_shape: tuple[int, int, int] = (224, 224, 3),
        num_classes: int = 1000,
        *,
        include_top: bool = True,
        dropout: DropoutRate = 0.0,
    ):
        return build(name, input_shape, num_classes, include_top, dropout)

    factory.__name__ = factory.__qualname__ = name.replace("-", "_")
    factory.__doc__ = f"""{summary(name)}.

    Built from ``keras_cv.models.{BACKBONES[name][0]}`` with the keras-cv preset's
    hyperparameters, randomly initialised (no pretrained weights); then global average pool →
    softmax.  ``dropout`` is applied before the classifier.  ``include_top=False`` returns the
    backbone's last feature map (7×7 at 224×224).
    """
    return factory


# One module attribute per backbone (kerascv_resnet18_v2, ...): the targets of the plugin's
# lazy "cnnreg_kerascv.backbones:NAME" factory strings.
for _name in BACKBONES:
    globals()[_name.replace("-", "_")] = _factory(_name)
