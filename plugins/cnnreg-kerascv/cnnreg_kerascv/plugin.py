"""The cnnreg plugin module named by the entry point: no keras, no keras_cv, no TensorFlow here.

Every factory is a lazy ``"module:attr"`` string; the factories import keras-cv when a model is
built or training starts, and say in one line that it is missing if it is.
"""

import cnnreg
from cnnreg_kerascv.backbones import BACKBONES, FAMILIES, SIZES, summary

_PKG = "cnnreg_kerascv"

#: name → (summary, role, aliases, paper) of each regulariser in cnnreg_kerascv.augmentations.
AUGMENTATIONS = {
    "grid_mask": ("GridMask (Chen et al. 2020): black out a rotated grid of squares", "augmentation", ("gridmask",),
                  {"authors": "Chen, Liu, Wang, Jia", "year": 2020, "title": "GridMask Data Augmentation"}),
    "cutout": ("Cutout (DeVries & Taylor 2017): black out one random rectangle per image", "augmentation",
               ("random_cutout",),
               {"authors": "DeVries, Taylor", "year": 2017,
                "title": "Improved Regularization of Convolutional Neural Networks with Cutout"}),
    "channel_shuffle": ("Shuffle the colour channels (in groups) of each image", "augmentation", (), None),
    "channel_shift": ("Shift each channel by its own random amount", "augmentation", (), None),
    "fourier_mix": ("FMix (Harris et al. 2020): mix image pairs through low-frequency masks", "batch augmentation",
                    ("fmix",),
                    {"authors": "Harris, Marcu, Painter, Niranjan, Prügel-Bennett, Hare", "year": 2020,
                     "title": "FMix: Enhancing Mixed Sample Data Augmentation"}),
    "mosaic": ("Mosaic (YOLOv4): tile four images, labels mixed by area", "batch augmentation", (),
               {"authors": "Bochkovskiy, Wang, Liao", "year": 2020,
                "title": "YOLOv4: Optimal Speed and Accuracy of Object Detection"}),
}

_ACTIVATION = {"ResNetV2Backbone": ("relu", True), "CSPDarkNetBackbone": ("swish", True),
               "EfficientNetLiteBackbone": ("relu6", True), "MiTBackbone": ("gelu", False)}


@cnnreg.hookimpl
def register_architectures(registry):
    for name, (class_name, _display, _config) in BACKBONES.items():
        activation, batchnorm = _ACTIVATION[class_name]
        registry.add(
            name,
            f"{_PKG}.backbones:{name.replace('-', '_')}",
            summary=summary(name),
            tags=("keras-cv",),
            default_input_shape=(224, 224, 3),
            min_input_size=SIZES[class_name][0],
            family=class_name.removesuffix("Backbone").lower(),
            paper=FAMILIES[class_name][1],
            activation=activation,
            batchnorm=batchnorm,
            preprocess="cnnreg.builtin.architectures.preprocess:scale_0_1",
            weights={},
            keras_cv_class=f"keras_cv.models.{class_name}",
            requires="keras-cv 0.9 (TensorFlow)",
        )


@cnnreg.hookimpl
def register_regularisers(registry):
    for name, (text, role, aliases, paper) in AUGMENTATIONS.items():
        metadata = {"role": role, "requires": "keras-cv 0.9 (TensorFlow)"}
        if paper:
            metadata["paper"] = paper
        registry.add(name, f"{_PKG}.augmentations:{name}", summary=text, aliases=aliases, tags=("keras-cv", role),
                     **metadata)
