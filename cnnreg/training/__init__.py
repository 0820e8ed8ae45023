"""Training runs: assembling components into a Keras training loop, run directories, resume."""
