"""The keras.applications bridge: every Keras model registered as ``keras-<name>``.

Listing must not import keras, so the models are described by a static table that a test keeps
in sync with ``keras.applications``.  One generic factory, :func:`keras_application`, builds
any of them; this module's attribute ``keras_<name>`` (made on first access) is that factory
bound to one model, with the model's default input size in its signature, and is what the
registry's lazy ``"module:attr"`` string points at.  ``mobilenet_v2``, ``xception`` and
``inception_v3`` are the same bridge under cnnreg's own names.

``weights`` is ``none`` (random initialisation), ``imagenet`` (downloaded by Keras into its cache,
``$KERAS_HOME/models``, default ``~/.keras/models``; a cached file is used without touching the
network) or the path of a local ``.h5`` / ``.weights.h5`` / ``.keras`` file.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cnnreg.kinds.architectures import check_inputs
from cnnreg.errors import ParameterError, choices_text, gist
from cnnreg.spec import shape_text

#: name → (keras.applications function, family module, default input size, minimum input size).
#: The family module (``keras.applications.<family>``) holds preprocess_input and
#: decode_predictions.  Sizes are those keras.applications checks (obtain_input_shape).
APPLICATIONS: dict[str, tuple[str, str, int, int]] = {
    "convnexttiny": ("ConvNeXtTiny", "convnext", 224, 32),
    "convnextsmall": ("ConvNeXtSmall", "convnext", 224, 32),
    "convnextbase": ("ConvNeXtBase", "convnext", 224, 32),
    "convnextlarge": ("ConvNeXtLarge", "convnext", 224, 32),
    "convnextxlarge": ("ConvNeXtXLarge", "convnext", 224, 32),
    "densenet121": ("DenseNet121", "densenet", 224, 32),
    "densenet169": ("DenseNet169", "densenet", 224, 32),
    "densenet201": ("DenseNet201", "densenet", 224, 32),
    "efficientnetb0": ("EfficientNetB0", "efficientnet", 224, 32),
    "efficientnetb1": ("EfficientNetB1", "efficientnet", 240, 32),
    "efficientnetb2": ("EfficientNetB2", "efficientnet", 260, 32),
    "efficientnetb3": ("EfficientNetB3", "efficientnet", 300, 32),
    "efficientnetb4": ("EfficientNetB4", "efficientnet", 380, 32),
    "efficientnetb5": ("EfficientNetB5", "efficientnet", 456, 32),
    "efficientnetb6": ("EfficientNetB6", "efficientnet", 528, 32),
    "efficientnetb7": ("EfficientNetB7", "efficientnet", 600, 32),
    "efficientnetv2b0": ("EfficientNetV2B0", "efficientnet_v2", 224, 32),
    "efficientnetv2b1": ("EfficientNetV2B1", "efficientnet_v2", 240, 32),
    "efficientnetv2b2": ("EfficientNetV2B2", "efficientnet_v2", 260, 32),
    "efficientnetv2b3": ("EfficientNetV2B3", "efficientnet_v2", 300, 32),
    "efficientnetv2s": ("EfficientNetV2S", "efficientnet_v2", 384, 32),
    "efficientnetv2m": ("EfficientNetV2M", "efficientnet_v2", 480, 32),
    "efficientnetv2l": ("EfficientNetV2L", "efficientnet_v2", 480, 32),
    "inceptionresnetv2": ("InceptionResNetV2", "inception_resnet_v2", 299, 75),
    "inceptionv3": ("InceptionV3", "inception_v3", 299, 75),
    "mobilenet": ("MobileNet", "mobilenet", 224, 32),
    "mobilenetv2": ("MobileNetV2", "mobilenet_v2", 224, 32),
    "mobilenetv3small": ("MobileNetV3Small", "mobilenet_v3", 224, 32),
    "mobilenetv3large": ("MobileNetV3Large", "mobilenet_v3", 224, 32),
    "nasnetmobile": ("NASNetMobile", "nasnet", 224, 32),
    "nasnetlarge": ("NASNetLarge", "nasnet", 331, 32),
    "resnet50": ("ResNet50", "resnet", 224, 32),
    "resnet101": ("ResNet101", "resnet", 224, 32),
    "resnet152": ("ResNet152", "resnet", 224, 32),
    "resnet50v2": ("ResNet50V2", "resnet_v2", 224, 32),
    "resnet101v2": ("ResNet101V2", "resnet_v2", 224, 32),
    "resnet152v2": ("ResNet152V2", "resnet_v2", 224, 32),
    "vgg16": ("VGG16", "vgg16", 224, 32),
    "vgg19": ("VGG19", "vgg19", 224, 32),
    "xception": ("Xception", "xception", 299, 71),
}

#: The paper behind each family: (authors, year, title); metadata ``paper``.
PAPERS: dict[str, tuple[str, int, str]] = {
    "convnext": ("Liu, Mao, Wu, Feichtenhofer, Darrell, Xie", 2022, "A ConvNet for the 2020s"),
    "densenet": ("Huang, Liu, van der Maaten, Weinberger", 2017, "Densely Connected Convolutional Networks"),
    "efficientnet": ("Tan, Le", 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks"),
    "efficientnet_v2": ("Tan, Le", 2021, "EfficientNetV2: Smaller Models and Faster Training"),
    "inception_resnet_v2": ("Szegedy, Ioffe, Vanhoucke, Alemi", 2016,
                            "Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning"),
    "inception_v3": ("Szegedy, Vanhoucke, Ioffe, Shlens, Wojna", 2015,
                     "Rethinking the Inception Architecture for Computer Vision"),
    "mobilenet": ("Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto, Adam", 2017,
                  "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications"),
    "mobilenet_v2": ("Sandler, Howard, Zhu, Zhmoginov, Chen", 2018,
                     "MobileNetV2: Inverted Residuals and Linear Bottlenecks"),
    "mobilenet_v3": ("Howard, Sandler, Chu, Chen, Chen, Tan, Wang, Zhu, Pang, Vasudevan, Le, Adam", 2019,
                     "Searching for MobileNetV3"),
    "nasnet": ("Zoph, Vasudevan, Shlens, Le", 2018,
               "Learning Transferable Architectures for Scalable Image Recognition"),
    "resnet": ("He, Zhang, Ren, Sun", 2015, "Deep Residual Learning for Image Recognition"),
    "resnet_v2": ("He, Zhang, Ren, Sun", 2016, "Identity Mappings in Deep Residual Networks"),
    "vgg16": ("Simonyan, Zisserman", 2014, "Very Deep Convolutional Networks for Large-Scale Image Recognition"),
    "vgg19": ("Simonyan, Zisserman", 2014, "Very Deep Convolutional Networks for Large-Scale Image Recognition"),
    "xception": ("Chollet", 2017, "Xception: Deep Learning with Depthwise Separable Convolutions"),
}


def paper(family: str) -> dict[str, Any]:
    """The ``paper`` metadata of a keras.applications family."""
    authors, year, title = PAPERS[family]
    return {"authors": authors, "year": year, "title": title}


#: Seconds any one connect, read or DNS lookup of a weights download may take; offline, the
#: download then fails within this time rather than hanging.
DOWNLOAD_TIMEOUT_S = 5.0
WEIGHT_SUFFIXES = (".weights.h5", ".h5", ".keras")


def keras_cache_dir() -> str:
    """Where Keras caches downloaded weights: ``$KERAS_HOME/models``, default ``~/.keras/models``."""
    try:  # what keras.utils.get_file really uses (KERAS_HOME is read when keras is imported)
        from keras.src.backend.config import keras_home

        home = keras_home()
    except ImportError:  # pragma: no cover - a Keras that moved it
        home = os.environ.get("KERAS_HOME", "~/.keras")
    return os.path.join(os.path.expanduser(home), "models")


def keras_application(
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    weights: str = "none",
    app: str = "resnet50",
):
    """Build ``keras.applications`` model ``app`` (a name of ``APPLICATIONS``, e.g. ``resnet50``).

    ``input_shape`` defaults to the model's own size.  ``include_top=False`` returns the base
    (a 4-D feature map, no pooling).  ``weights``: ``none``, ``imagenet`` or a local file path.
    """
    key = app.lower().removeprefix("keras-").replace("_", "")
    if key not in APPLICATIONS:
        raise ParameterError(f"unknown keras.applications model '{app}'" + choices_text(app, APPLICATIONS))
    return _build(key, f"keras-{key}", input_shape, num_classes, include_top, weights)


def _build(key: str, label: str, input_shape, num_classes: int, include_top: bool, weights: str | None):
    import keras

    function, _, size, min_size = APPLICATIONS[key]
    shape = check_inputs(label, input_shape or (size, size, 3), num_classes, min_size)
    mode = "none" if weights is None or str(weights).lower() in ("", "none") else str(weights)
    if mode.lower() == "imagenet":
        mode = "imagenet"
        if include_top and num_classes != 1000:
            raise ParameterError(
                f"{label} with weights=imagenet and include_top=True has 1000 classes (got num_classes="
                f"{num_classes}); use include_top=False and put your own head on it"
            )
        if shape[2] != 3:
            raise ParameterError(f"{label} with weights=imagenet needs 3 input channels (got {shape_text(shape)})")
    elif mode != "none":
        path = Path(mode).expanduser()
        if not path.name.endswith(WEIGHT_SUFFIXES):
            raise ParameterError(
                f"weights for {label} must be none, imagenet or a .h5 / .weights.h5 / .keras file (got '{weights}')"
            )
        if not path.is_file():
            raise ParameterError(f"weights file {path} does not exist (weights for {label}: none, imagenet or a file)")

    def make(keras_weights: str | None):
        try:
            return getattr(keras.applications, function)(
                include_top=include_top, weights=keras_weights, input_shape=shape, classes=num_classes
            )
        except ValueError as exc:  # keras.applications' own argument checks
            raise ParameterError(f"{label}: {gist(exc)}") from None

    if mode == "imagenet":
        return _download_guarded(label, lambda: make("imagenet"))
    model = make(None)
    if mode != "none":
        try:
            with warnings.catch_warnings():  # a mismatch also warns once per layer; the error says it
                warnings.simplefilter("ignore")
                model.load_weights(str(path))
        except Exception as exc:  # keras says why in many ways: ValueError, KeyError, OSError...
            raise ParameterError(f"weights file {path} does not match {label}: {gist(exc)}") from None
    return model


def _download_guarded(label: str, make: Callable[[], Any]) -> Any:
    """Run ``make`` (which may download ImageNet weights) with short network timeouts.

    keras.utils.get_file looks in the cache first, so a cached file never touches the network;
    a failed download becomes one ParameterError line saying where to put the file by hand.
    """
    try:
        with _network_timeouts(DOWNLOAD_TIMEOUT_S):
            return make()
    except ParameterError:
        raise
    except Exception as exc:
        text = gist(exc)
        if not (text.startswith("URL fetch failure") or isinstance(exc, OSError)):
            raise
        url = re.search(r"https?://[^\s:]+(?::\d+)?[^\s:]*", text)
        file = url.group(0).rsplit("/", 1)[-1] if url else "the weights file"
        source = f" from {url.group(0)}" if url else ""
        reason = text.split(" -- ", 1)[-1] if " -- " in text else text
        raise ParameterError(
            f"cannot download the ImageNet weights of {label}{source} ({reason}); offline, put {file} in "
            f"{keras_cache_dir()} (the Keras cache, $KERAS_HOME/models) or pass weights=PATH to a local file"
        ) from None


@contextlib.contextmanager
def _network_timeouts(seconds: float) -> Iterator[None]:
    """Bound each socket operation and each DNS lookup (which socket timeouts do not cover)."""
    import socket
    import threading

    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(*args: Any, **kwargs: Any) -> Any:
        box: dict[str, Any] = {}

        def lookup() -> None:
            try:
                box["result"] = real_getaddrinfo(*args, **kwargs)
            except BaseException as exc:  # handed to the caller below
                box["error"] = exc

        thread = threading.Thread(target=lookup, daemon=True)
        thread.start()
        thread.join(seconds)
        if thread.is_alive():
            raise socket.timeout(f"DNS lookup of {args[0] if args else 'host'} took over {seconds:g} s")
        if "error" in box:
            raise box["error"]
        return box["result"]

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = real_getaddrinfo
        socket.setdefaulttimeout(previous)


# --- one factory per model, and cnnreg's own names for three of them ------------------------


def _bind(key: str) -> Callable[..., Any]:
    function, family, size, min_size = APPLICATIONS[key]

    def factory(
        input_shape: tuple[int, int, int] = (size, size, 3),
        num_classes: int = 1000,
        *,
        include_top: bool = True,
        weights: str = "none",
    ):
        return _build(key, f"keras-{key}", input_shape, num_classes, include_top, weights)

    factory.__name__ = factory.__qualname__ = f"keras_{key}"
    factory.__module__ = __name__
    factory.__doc__ = (
        f"keras.applications.{function}, {size}×{size}×3 by default (minimum {min_size}×{min_size}).\n\n"
        f"{_paper_line(family)}  Preprocess inputs with keras.applications.{family}.preprocess_input.\n"
        "``include_top=False`` returns the base (a 4-D feature map, no pooling).  ``weights``: none\n"
        "(random), imagenet (Keras' download, cached in ~/.keras/models; 1000 classes unless\n"
        "include_top=False) or the path of a local .h5 / .weights.h5 / .keras file.\n"
    )
    return factory


def _paper_line(family: str) -> str:
    authors, year, title = PAPERS[family]
    return f'{authors} ({year}), "{title}".'


def __getattr__(name: str) -> Callable[..., Any]:
    """``keras_resnet50`` and friends: :func:`keras_application` bound to one model."""
    key = name.removeprefix("keras_")
    if name.startswith("keras_") and key in APPLICATIONS:
        factory = globals()[name] = _bind(key)
        return factory
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + [f"keras_{key}" for key in APPLICATIONS])


def mobilenet_v2(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    weights: str = "none",
):
    """MobileNetV2 from keras.applications: inverted residuals, linear bottlenecks (width 1.0).

    Sandler, Howard, Zhu, Zhmoginov & Chen (2018), "MobileNetV2: Inverted Residuals and Linear
    Bottlenecks".  3,538,984 parameters at 224×224×3 with 1000 classes; minimum 32×32.
    Preprocess with keras.applications.mobilenet_v2.preprocess_input (scales to [-1, 1]).
    ``include_top=False`` returns the base (a 4-D feature map).  ``weights``: none, imagenet or
    the path of a local weights file.
    """
    return _build("mobilenetv2", "mobilenet_v2", input_shape, num_classes, include_top, weights)


def xception(
    input_shape: tuple[int, int, int] = (299, 299, 3),
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    weights: str = "none",
):
    """Xception from keras.applications: depthwise separable convolutions with residual links.

    Chollet (2017), "Xception: Deep Learning with Depthwise Separable Convolutions"; the
    lecture's transfer-learning base (weights=imagenet, include_top=False, then a global
    average pool and a new softmax head).  22,910,480 parameters at 299×299×3 with 1000
    classes; minimum 71×71.  Preprocess with keras.applications.xception.preprocess_input.
    ``include_top=False`` returns the base (a 4-D feature map).  ``weights``: none, imagenet or
    the path of a local weights file.
    """
    return _build("xception", "xception", input_shape, num_classes, include_top, weights)


def inception_v3(
    input_shape: tuple[int, int, int] = (299, 299, 3),
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    weights: str = "none",
):
    """Inception-v3 from keras.applications: factorised convolutions and batch normalisation.

    Szegedy, Vanhoucke, Ioffe, Shlens & Wojna (2015), "Rethinking the Inception Architecture
    for Computer Vision".  23,851,784 parameters at 299×299×3 with 1000 classes; minimum 75×75.
    Preprocess with keras.applications.inception_v3.preprocess_input.  ``include_top=False``
    returns the base (a 4-D feature map).  ``weights``: none, imagenet or the path of a local
    weights file.
    """
    return _build("inceptionv3", "inception_v3", input_shape, num_classes, include_top, weights)
