"""cnnreg-lookahead: the Lookahead optimizer (Zhang, Lucas, Hinton & Ba 2019) around any cnnreg optimizer."""

__version__ = "0.1.0"
