"""cnnreg-wandb: the ``wandb`` logger, a Weights & Biases run for every cnnreg run."""

__version__ = "0.1.0"
