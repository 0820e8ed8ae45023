"""Lookahead against a NumPy reference on a quadratic, through Keras' own training step.

Imported by test_optimizer.py (this process's backend) and run as a script in a new process
for each other backend (``KERAS_BACKEND=jax python tests/numerics.py``): a process picks its
Keras backend once.  Prints one JSON line: the largest differences from the reference.

The problem: a 2-weight linear model without bias, ``y = x @ w``, mean squared error on two
fixed examples, one full batch per step, so each step's gradient is ``2/N X^T (X w - y)``.
``model.fit`` takes the steps (TensorFlow: a ``tf.function``; JAX: the jitted
``stateless_apply``; PyTorch: eager), one epoch per step so that a callback sees the weights
after every step.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

X = np.array([[1.0, 0.0], [0.5, 2.0]])
Y = np.array([[0.5], [1.0]])
W0 = np.array([[1.0], [-2.0]])
#: (the optimizer spec, inner learning rate, SGD momentum the reference uses, k, alpha, steps)
CASES = [
    ("lookahead:inner=sgd,k=5,alpha=0.5", 0.1, 0.0, 5, 0.5, 12),
    ("lookahead:inner=sgd:momentum=0.9,k=3,alpha=0.8", 0.1, 0.9, 3, 0.8, 7),
]


def reference(lr: float, momentum: float, k: int, alpha: float, steps: int) -> list[np.ndarray]:
    """Lookahead around Keras' SGD (``m = momentum m - lr g; w += m``), in float64: the fast
    weights after each step (the paper's Algorithm 1; the inner state is kept at a sync)."""
    w, slow, m = W0.copy(), W0.copy(), np.zeros_like(W0)
    out = []
    for step in range(1, steps + 1):
        g = 2 / len(X) * X.T @ (X @ w - Y)
        m = momentum * m - lr * g
        w = w + m
        if step % k == 0:
            slow = slow + alpha * (w - slow)
            w = slow.copy()
        out.append(w.copy())
    return out


def trajectory(spec: str, lr: float, steps: int) -> tuple[list[np.ndarray], object]:
    """The model's weights after each of ``steps`` training steps with the optimizer ``spec``."""
    import keras

    import cnnreg

    optimizer = cnnreg.build("optimizer", spec, learning_rate=lr)
    model = keras.Sequential([
        keras.Input((2,)),
        keras.layers.Dense(1, use_bias=False, kernel_initializer=keras.initializers.Constant(W0)),
    ])
    model.compile(optimizer=optimizer, loss="mse")
    seen: list[np.ndarray] = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(keras.ops.convert_to_numpy(model.layers[0].kernel).astype("float64")))
    model.fit(X.astype("float32"), Y.astype("float32"), batch_size=len(X), epochs=steps, shuffle=False, verbose=0,
              callbacks=[record])
    return seen, model


def check() -> dict:
    """The largest difference from the reference of each case, and what the optimizer holds."""
    import keras

    from cnnreg import testing

    import cnnreg_lookahead.plugin as plugin

    result = {"backend": keras.backend.backend(), "cases": []}
    with testing.isolated(), testing.plugin(plugin, distribution="cnnreg-lookahead"):
        for spec, lr, momentum, k, alpha, steps in CASES:
            seen, model = trajectory(spec, lr, steps)
            expected = reference(lr, momentum, k, alpha, steps)
            optimizer = model.optimizer
            last_sync = steps - steps % k
            slow = keras.ops.convert_to_numpy(optimizer._slow_weights[0]).astype("float64")
            result["cases"].append({
                "spec": spec,
                "steps": len(seen),
                "max_error": float(max(np.max(np.abs(a - b)) for a, b in zip(seen, expected))),
                "final": seen[-1].ravel().tolist(),
                "expected_final": expected[-1].ravel().tolist(),
                # the slow weights are the fast weights of the last sync
                "slow_error": float(np.max(np.abs(slow - expected[last_sync - 1]))),
                "iterations": int(keras.ops.convert_to_numpy(optimizer.iterations)),
                "inner_iterations": int(keras.ops.convert_to_numpy(optimizer.inner_optimizer.iterations)),
            })
    return result


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the plugin's root
    print(json.dumps(check()))
