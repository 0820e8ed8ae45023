"""Built-in plugin: the architecture zoo (the lecture's networks) and the keras.applications bridge.

Every factory is a lazy ``"module:attr"`` string, so registering and listing never import keras.
The factory contract and the metadata keys are described in docs/architectures.md.
"""

from __future__ import annotations

from typing import Any

from cnnreg.builtin.architectures.applications import APPLICATIONS
from cnnreg.builtin.architectures.applications import paper as keras_paper
from cnnreg.builtin.architectures.googlenet import PAPER_TABLE as GOOGLENET_PAPER_TABLE
from cnnreg.hookspecs import hookimpl
from cnnreg.kinds.architectures import DEFAULT_PREPROCESS

_PKG = "cnnreg.builtin.architectures"
_SCALE_0_1 = DEFAULT_PREPROCESS

_HE_2015 = {"authors": "He, Zhang, Ren, Sun", "year": 2015, "title": "Deep Residual Learning for Image Recognition"}
_VGG = {"authors": "Simonyan, Zisserman", "year": 2014,
        "title": "Very Deep Convolutional Networks for Large-Scale Image Recognition"}

#: Activation and normalisation of each keras.applications family (metadata for ``cnnreg run``).
_FAMILY_ACTIVATION = {
    "convnext": ("gelu", False), "densenet": ("relu", True), "efficientnet": ("swish", True),
    "efficientnet_v2": ("swish", True), "inception_resnet_v2": ("relu", True),
    "inception_v3": ("relu", True), "mobilenet": ("relu6", True), "mobilenet_v2": ("relu6", True),
    "mobilenet_v3": ("hard_swish", True), "nasnet": ("relu", True), "resnet": ("relu", True),
    "resnet_v2": ("relu", True), "vgg16": ("relu", False), "vgg19": ("relu", False),
    "xception": ("relu", True),
}


def _ours(name: str, module: str, summary: str, *, size: tuple[int, int, int], min_size: int, family: str,
          paper: dict[str, Any], activation: str = "relu", batchnorm: bool = False,
          tags: tuple[str, ...] = (), **extra: Any) -> tuple[str, str, dict[str, Any]]:
    kwargs = dict(
        summary=summary, tags=(family, *tags), default_input_shape=size, min_input_size=min_size,
        family=family, paper=paper, activation=activation, batchnorm=batchnorm,
        preprocess=_SCALE_0_1, weights={}, **extra,
    )
    return name, f"{_PKG}.{module}:{name}", kwargs


#: cnnreg's own architectures: (name, lazy factory, keyword arguments of ``registry.add``:
#: summary, tags, aliases and metadata).
ARCHITECTURES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    _ours("mlp_bn", "mlp", "The lecture's BatchNorm MLP: 300 and 100 ReLU units (Ioffe & Szegedy 2015)",
          size=(28, 28, 1), min_size=1, family="mlp", batchnorm=True, tags=("lecture",), convolutional=False,
          paper={"authors": "Ioffe, Szegedy", "year": 2015, "title": "Batch Normalization: Accelerating Deep "
                 "Network Training by Reducing Internal Covariate Shift"}),
    _ours("lenet5", "lenet", "LeNet-5 (LeCun et al. 1998): two tanh convs, avg-pooling, dense 120 and 84",
          size=(32, 32, 1), min_size=16, family="lenet", activation="tanh", aliases=("lenet",),
          paper={"authors": "LeCun, Bottou, Bengio, Haffner", "year": 1998,
                 "title": "Gradient-Based Learning Applied to Document Recognition"}),
    _ours("alexnet", "alexnet", "AlexNet (Krizhevsky et al. 2012), exactly the lecture's table",
          size=(227, 227, 3), min_size=67, family="alexnet", tags=("lecture",),
          paper={"authors": "Krizhevsky, Sutskever, Hinton", "year": 2012,
                 "title": "ImageNet Classification with Deep Convolutional Neural Networks"}),
    *(
        _ours(f"vgg{depth}", "vgg", f"VGG-{depth} (Simonyan & Zisserman 2014)", size=(224, 224, 3), min_size=32,
              family="vgg", paper=_VGG, tags=("lecture",) if depth in (16, 19) else ())
        for depth in (11, 13, 16, 19)
    ),
    _ours("googlenet", "googlenet", "GoogLeNet / Inception v1 (Szegedy et al. 2014), the lecture's table",
          size=(224, 224, 3), min_size=32, family="inception", tags=("lecture",), aliases=("inception_v1",),
          paper_table=GOOGLENET_PAPER_TABLE,
          paper={"authors": "Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke, Rabinovich",
                 "year": 2014, "title": "Going Deeper with Convolutions"}),
    _ours("resnet18", "resnet", "ResNet-18 (He et al. 2015) with the lecture's residual unit",
          size=(224, 224, 3), min_size=32, family="resnet", batchnorm=True, paper=_HE_2015),
    _ours("resnet34", "resnet", "ResNet-34 (He et al. 2015), exactly the lecture's Keras model",
          size=(224, 224, 3), min_size=32, family="resnet", batchnorm=True, paper=_HE_2015, tags=("lecture",)),
    *(
        _ours(f"resnet{depth}", "resnet", f"ResNet-{depth} v1 (He et al. 2015), as keras.applications builds it",
              size=(224, 224, 3), min_size=32, family="resnet", batchnorm=True, paper=_HE_2015)
        for depth in (50, 101, 152)
    ),
    _ours("se_resnet50", "resnet", "SE-ResNet-50 (Hu et al. 2017): ResNet-50 with squeeze-and-excitation",
          size=(224, 224, 3), min_size=32, family="senet", batchnorm=True, tags=("lecture", "resnet"),
          paper={"authors": "Hu, Shen, Sun", "year": 2017, "title": "Squeeze-and-Excitation Networks"}),
    _ours("single_conv", "single_conv", "The lecture's worked layer: one 5x5 conv, 200 maps, on 150x100x3",
          size=(150, 100, 3), min_size=1, family="lecture", tags=("lecture",), primary="filters",
          paper={"authors": "Géron", "year": 2019, "title": "Hands-On Machine Learning with Scikit-Learn, "
                 "Keras, and TensorFlow (2nd ed.), ch. 14"}),
    _ours("plain_net", "plain", "depth plain layers (3x3 convs or Dense), no BN, no shortcuts: the initialisation "
          "experiments", size=(32, 32, 1), min_size=1, family="plain", tags=("initialisation",),
          paper={"authors": "He, Zhang, Ren, Sun", "year": 2015, "title": "Delving Deep into Rectifiers: Surpassing "
                 "Human-Level Performance on ImageNet Classification"}),
)

#: cnnreg names for three keras.applications models the lecture names: name → APPLICATIONS key.
WRAPPED = {"mobilenet_v2": "mobilenetv2", "xception": "xception", "inception_v3": "inceptionv3"}


def _application(name: str, key: str, factory: str, summary: str, tags: tuple[str, ...]) -> tuple[str, str, dict]:
    function, family, size, min_size = APPLICATIONS[key]
    activation, batchnorm = _FAMILY_ACTIVATION[family]
    kwargs = dict(
        summary=summary, tags=tags, default_input_shape=(size, size, 3), min_input_size=min_size,
        family=family, paper=keras_paper(family), activation=activation, batchnorm=batchnorm,
        preprocess=f"keras.applications.{family}:preprocess_input",
        decode_predictions=f"keras.applications.{family}:decode_predictions",
        weights={"imagenet": {"source": f"keras.applications.{function}", "cache": "~/.keras/models"}},
        keras_application=function, primary="weights",
    )
    return name, factory, kwargs


def _entries() -> list[tuple[str, str, dict[str, Any]]]:
    entries = list(ARCHITECTURES)
    for name, key in WRAPPED.items():
        function = APPLICATIONS[key][0]
        entries.append(_application(name, key, f"{_PKG}.applications:{name}",
                                    f"{function} from keras.applications", ("lecture",)))
    for key, (function, *_rest) in APPLICATIONS.items():
        entries.append(_application(f"keras-{key}", key, f"{_PKG}.applications:keras_{key}",
                                    f"keras.applications.{function}", ("keras-applications",)))
    return entries


@hookimpl
def register_architectures(registry) -> None:
    """Register cnnreg's architectures and every keras.applications model as ``keras-<name>``."""
    for name, factory, kwargs in _entries():
        registry.add(name, factory, **kwargs)
