"""cnnreg-fixup: Fixup initialisation (Zhang, Dauphin & Ma 2019) and Fixup ResNets without BatchNorm."""

__version__ = "0.1.0"
