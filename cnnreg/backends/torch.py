"""PyTorch-only services (imported only when Keras runs on PyTorch)."""

from __future__ import annotations

from typing import Any


def make_deterministic() -> None:
    import torch

    torch.use_deterministic_algorithms(True, warn_only=True)


def devices() -> list[dict[str, Any]]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [
        {"name": torch.cuda.get_device_name(i), "kind": "gpu", "memory_bytes": torch.cuda.get_device_properties(i).total_memory,
         "compute_capability": tuple(torch.cuda.get_device_capability(i))}
        for i in range(torch.cuda.device_count())
    ]


def peak_memory_bytes(index: int = 0) -> int | None:
    import torch

    return int(torch.cuda.max_memory_allocated(index)) if torch.cuda.is_available() else None


def versions() -> dict[str, str]:
    import torch

    return {"torch": torch.__version__}


def input_gradient(fn, x):
    """``(fn(x), d fn / d x)`` with ``torch.autograd.grad`` on a leaf copy of ``x`` (the
    weights' ``.grad`` stay as they were)."""
    import torch

    from keras import ops

    leaf = ops.convert_to_tensor(x).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        value = fn(leaf)
        (grad,) = torch.autograd.grad(value, leaf)
    return value.detach(), grad.detach()


def compile_function(fn, variables):
    """``fn`` itself: PyTorch runs eagerly (``torch.compile`` takes longer to compile a small
    attack step than the step runs)."""
    return fn


def wrap_train_step(model, apply, *, seed):
    """``train_step(data)`` calling ``apply`` first (see :func:`cnnreg.backends.wrap_train_step`).

    PyTorch runs the step eagerly: the random numbers come from a ``torch.Generator`` on the
    batch's device, seeded each step from ``seed`` and the optimizer's step count.  The
    transform's input gradients (:func:`input_gradient`) leave the weights' ``.grad`` alone, and
    Keras' step zeroes them before its own backward pass anyway."""
    import keras
    import torch

    from cnnreg.backends import step_seed
    own = type(model).train_step

    def train_step(data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, y = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)
        iteration = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        generator = torch.Generator(device=x.device)
        generator.manual_seed(step_seed(seed, iteration))

        def uniform(shape, low, high):
            shape = tuple(int(d) for d in shape)
            return torch.rand(shape, generator=generator, device=x.device, dtype=torch.float32) * (high - low) + low

        x, y = apply(x, y, uniform, iteration)
        x, y = keras.ops.convert_to_tensor(x).detach(), keras.ops.convert_to_tensor(y).detach()
        return own(model, keras.utils.pack_x_y_sample_weight(x, y, sample_weight))

    return train_step
