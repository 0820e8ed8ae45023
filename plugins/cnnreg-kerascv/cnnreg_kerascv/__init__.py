"""cnnreg-kerascv: keras-cv 0.9 augmentations and backbones that Keras itself lacks, as cnnreg components."""

__version__ = "0.1.0"
