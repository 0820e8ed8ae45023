"""The Keras schedule of the built-in epoch schedules (imports keras: imported when one is used,
and before a checkpoint that holds one loads)."""

from __future__ import annotations

import math

import keras


@keras.saving.register_keras_serializable(package="cnnreg", name="EpochSchedule")
class EpochSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Constant / cosine / step / exponential decay in epochs, with linear warm-up."""

    def __init__(self, initial, steps_per_epoch, epochs, kind="constant", warmup=0.0, alpha=0.0, every=10, factor=0.1,
                 rate=0.9):
        self.initial, self.steps_per_epoch, self.epochs = float(initial), int(steps_per_epoch), int(epochs)
        self.kind, self.warmup, self.alpha = kind, float(warmup), float(alpha)
        self.every, self.factor, self.rate = int(every), float(factor), float(rate)

    def __call__(self, step):
        ops = keras.ops
        epoch = ops.cast(step, "float32") / float(self.steps_per_epoch)
        warm = ops.minimum(1.0, (epoch + 1.0 / self.steps_per_epoch) / self.warmup) if self.warmup > 0 else 1.0
        if self.kind == "cosine":
            span = max(self.epochs - self.warmup, 1e-9)
            progress = ops.clip((epoch - self.warmup) / span, 0.0, 1.0)
            decayed = self.alpha + (1 - self.alpha) * 0.5 * (1 + ops.cos(math.pi * progress))
        elif self.kind == "step":
            decayed = ops.power(self.factor, ops.floor(epoch / self.every))
        elif self.kind == "exponential":
            decayed = ops.power(self.rate, epoch)
        else:
            decayed = 1.0
        return self.initial * warm * decayed

    def get_config(self):
        return dict(initial=self.initial, steps_per_epoch=self.steps_per_epoch, epochs=self.epochs, kind=self.kind,
                    warmup=self.warmup, alpha=self.alpha, every=self.every, factor=self.factor, rate=self.rate)
