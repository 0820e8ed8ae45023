"""Keras for the public functions that build or load a model, imported once every option is checked."""

from __future__ import annotations

__all__ = ["load_keras"]


def load_keras() -> None:
    """Import keras for a function that needs it (select the backend first with
    :func:`cnnreg.backends.select`); on TensorFlow without TensorFlow's native start-up chatter
    on stderr, on JAX and PyTorch without TensorFlow (until a tf.data pipeline needs it).  Call
    after every option has been checked."""
    import os

    # TensorFlow's C++ start-up and tf.data chatter is not for our users; their own setting wins
    # (the CLI sets the same; read once, when TensorFlow loads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        from cnnreg.backends.tensorflow import quiet_import, split_cpu

        quiet_import()
        if os.environ.get("CNNREG_LOGICAL_CPUS", "").isdigit():  # test aid: several CPU devices
            split_cpu(int(os.environ["CNNREG_LOGICAL_CPUS"]))
    import keras

    if keras.backend.backend() != "tensorflow":  # not imported at all unless tf.data needs it
        from cnnreg.backends.tensorflow import hide_until_imported

        hide_until_imported()
