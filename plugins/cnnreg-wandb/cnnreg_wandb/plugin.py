"""The plugin module cnnreg loads (entry point ``wandb``): it registers the logger lazily, so
that ``cnnreg list`` never imports wandb."""

import cnnreg


@cnnreg.hookimpl
def register_loggers(registry):
    registry.add(
        "wandb",
        "cnnreg_wandb.logger:wandb_logger",  # imported when the logger is built or shown
        summary="A Weights & Biases run: config, metrics per epoch, files, status (wandb's Python API)",
        aliases=("weights_and_biases",),
    )
