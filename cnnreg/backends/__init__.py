"""Backend-specific services behind one neutral interface.

The core (architectures, initialisers, regularisers, analysis, training loop) uses Keras 3 APIs
only.  What needs a framework — op determinism, device lists and their memory, peak memory —
lives in ``cnnreg.backends.tensorflow`` / ``.jax`` / ``.torch``, imported only for the backend
in use.  :func:`input_gradient` is the one place where a gradient with respect to the input is
taken (adversarial attacks, on any backend, eagerly or inside a compiled training step).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

#: Keras backends: the module that must be importable, and what to install for it.
BACKENDS = {
    "tensorflow": ("tensorflow", "pip install tensorflow-cpu (or tensorflow[and-cuda] for GPUs)"),
    "jax": ("jax", "pip install jax (or jax[cuda12] for GPUs)"),
    "torch": ("torch", "pip install torch"),
}


def select(name: str | None = None, *, activate: bool = True) -> str:
    """Choose the Keras backend before keras is imported: ``name``, else ``KERAS_BACKEND``, else
    tensorflow.  One-line errors for an unknown or uninstalled backend (saying when it came from
    the environment), or for a process that has already loaded keras with another one."""
    from cnnreg.errors import CnnregError, choices_text
    from cnnreg.spec import shown

    from_env = not name and bool(os.environ.get("KERAS_BACKEND", "").strip())
    chosen = (name or os.environ.get("KERAS_BACKEND") or "tensorflow").strip().lower()
    if chosen not in BACKENDS:
        if from_env:
            raise CnnregError(
                f"the KERAS_BACKEND environment variable is '{shown(os.environ['KERAS_BACKEND'])}', not a Keras "
                f"backend" + choices_text(chosen, BACKENDS) + "; set it to one of them, or unset it for tensorflow"
            )
        raise CnnregError(f"unknown backend '{shown(chosen)}'" + choices_text(chosen, BACKENDS))
    module, install = BACKENDS[chosen]
    if importlib.util.find_spec(module) is None:
        source = " (from the KERAS_BACKEND environment variable)" if from_env else ""
        raise CnnregError(f"backend '{chosen}'{source} is not installed: {install}")
    if not activate:  # only check the name (the caller validates other options first)
        return chosen
    if "keras" in sys.modules:
        loaded = sys.modules["keras"].backend.backend()
        if loaded != chosen:
            raise CnnregError(
                f"keras is already loaded with the {loaded} backend in this process; "
                f"start a new process with --backend {chosen} or KERAS_BACKEND={chosen}"
            )
        return chosen
    os.environ["KERAS_BACKEND"] = chosen
    return chosen


class _KerasImportCheck:
    """A ``sys.meta_path`` finder that runs :func:`select` just before keras is first imported,
    so that a bad ``KERAS_BACKEND`` is one line of ours on every path that imports keras, not
    Keras' own ``ValueError`` traceback from inside its import."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname == "keras":
            chosen = select(activate=False)  # CnnregError for a bad or missing backend
            if os.environ.get("KERAS_BACKEND"):
                os.environ["KERAS_BACKEND"] = chosen  # Keras itself takes only the lowercase name
            uninstall_import_check()
        return None  # the normal finders import keras


_check = _KerasImportCheck()


def install_import_check() -> None:
    """Check the backend before keras is imported (the CLI calls this first thing)."""
    if "keras" not in sys.modules and _check not in sys.meta_path:
        sys.meta_path.insert(0, _check)


def uninstall_import_check() -> None:
    if _check in sys.meta_path:
        sys.meta_path.remove(_check)


def _module():
    import keras

    name = keras.backend.backend()
    try:
        return importlib.import_module(f"cnnreg.backends.{name}")
    except ImportError:
        return None


#: What Keras and TensorFlow import at start-up only because it is installed, for features no
#: cnnreg command uses: pandas inputs, scikit-learn wrappers, IPython display, the pyplot of
#: ``keras.visualization``, TFLite's JAX functions.  Together 4–5 s of a 10 s ``import keras``
#: on the development machine (docs/performance.md, "Attacks").
OPTIONAL_AT_IMPORT = ("pandas", "sklearn", "IPython", "matplotlib", "jax")

_lean = False


def lean_imports() -> None:
    """Let :func:`load_keras` import keras without :data:`OPTIONAL_AT_IMPORT` (the backend's own
    module excepted).  The CLI calls this: its process runs cnnreg's commands only.  A Python
    session that imports cnnreg keeps Keras whole (it may hand Keras a pandas DataFrame).  Only
    the attempts made while Keras and TensorFlow load are refused; the modules stay importable
    afterwards (cnnreg's figures import matplotlib when they are drawn).  The PyTorch backend
    loads in full: its compiler looks its optional modules up while Keras imports it."""
    global _lean
    _lean = True


def load_keras() -> None:
    """Import keras for a function that needs it (select the backend first with
    :func:`select`); on TensorFlow without TensorFlow's native start-up chatter
    on stderr, on JAX and PyTorch without TensorFlow (until a tf.data pipeline needs it); after
    :func:`lean_imports`, without the modules Keras only tries.  Call after every option has
    been checked."""
    # TensorFlow's C++ start-up and tf.data chatter is not for our users; their own setting wins
    # (the CLI sets the same; read once, when TensorFlow loads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    lean = _lean and "keras" not in sys.modules and backend != "torch"
    # a None in sys.modules is how Python marks a module as not importable: `import` fails
    # with ModuleNotFoundError and importlib.util.find_spec answers None, as if uninstalled
    refused = [name for name in OPTIONAL_AT_IMPORT if name != backend and name not in sys.modules] \
        if lean else []
    sys.modules.update(dict.fromkeys(refused))
    try:
        _import_keras(backend)
    finally:
        for name in refused:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def _import_keras(backend: str) -> None:
    if backend == "tensorflow":
        from cnnreg.backends.tensorflow import quiet_import, split_cpu

        quiet_import()
        if os.environ.get("CNNREG_LOGICAL_CPUS", "").isdigit():  # test aid: several CPU devices
            split_cpu(int(os.environ["CNNREG_LOGICAL_CPUS"]))
    import keras

    if keras.backend.backend() != "tensorflow":  # not imported at all unless tf.data needs it
        from cnnreg.backends.tensorflow import hide_until_imported

        hide_until_imported()


def make_deterministic() -> None:
    """Make ops deterministic where the backend supports it (reruns reproduce on the CPU)."""
    module = _module()
    if module is not None:
        module.make_deterministic()


def devices() -> list[dict[str, Any]]:
    """Accelerators: ``[{"name": ..., "kind": "gpu", "memory_bytes": ...}]``; empty on CPU."""
    module = _module()
    return module.devices() if module is not None else []


def framework_versions() -> dict[str, str]:
    module = _module()
    return module.versions() if module is not None else {}


def input_gradient(fn, x) -> tuple[Any, Any]:
    """``(fn(x), d fn / d x)`` for a scalar function ``fn`` of a float tensor ``x``, built with
    ``keras.ops`` and model calls, on the backend in use: ``tf.GradientTape``, ``jax.value_and_grad``
    or ``torch.autograd.grad``.  Works eagerly and while a training step is traced (``tf.function``,
    ``jax.jit``); only ``x`` is differentiated (nothing accumulates in the weights' gradients)."""
    module = _module()
    if module is None:  # pragma: no cover - keras on a backend cnnreg does not know
        import keras

        from cnnreg.errors import CnnregError

        raise CnnregError(f"input gradients are not available on the {keras.backend.backend()} backend")
    return module.input_gradient(fn, x)


def compile_function(fn, variables=()) -> Any:
    """``fn(*tensors)`` (``keras.ops``, model calls, :func:`input_gradient`) compiled once for
    the backend in use, for inputs whose first dimension (the batch) may vary: ``tf.function``
    with that dimension left open, ``jax.jit`` with ``variables`` (the model's, read inside
    ``fn``) passed in as arguments so that their values are not baked into the compiled code,
    or ``fn`` itself on PyTorch (eager; ``torch.compile`` costs more than it saves on the small
    steps this serves).  Returns backend tensors; ``variables`` must not change meanwhile on JAX
    (an attack's model is fixed)."""
    module = _module()
    if module is None or not hasattr(module, "compile_function"):  # pragma: no cover - an unknown backend
        return fn
    return module.compile_function(fn, list(variables))


#: The instance attribute :func:`wrap_train_step` sets, marked so that only ours is removed.
_WRAPPED = "_cnnreg_step_transform"


def wrap_train_step(model, apply, *, seed: int) -> None:
    """Make ``model.fit`` call ``apply(x, y, uniform, iteration) -> (x, y)`` on every training
    batch inside its compiled step, before the class's own ``train_step`` (a regulariser's
    training-step transform: the caller makes ``apply`` from it).

    ``uniform(shape, low, high)`` gives float32 random numbers seeded by ``seed``, the optimizer's
    step count and the call's index within the step; ``iteration`` is that step count.  On JAX
    ``apply`` runs in a ``keras.StatelessScope`` holding this step's weights, so whatever reads
    the model reads them.  Gradients do not flow back through what ``apply`` returns.

    Keras builds its train function from ``self.train_step`` (TensorFlow and PyTorch:
    ``train_step(data)``; JAX: the pure ``train_step(state, data)``), so an **instance
    attribute** ``model.train_step`` takes its place without a subclass (the model is a plain
    ``keras.Model`` that must save and load as one).  Call after ``compile``; the model's train
    function is rebuilt at the next ``fit``.  :func:`unwrap_train_step` undoes it."""
    module = _module()
    if module is None or not hasattr(module, "wrap_train_step"):  # pragma: no cover - an unknown backend
        import keras

        from cnnreg.errors import CnnregError

        raise CnnregError(f"training-step transforms (adversarial training) are not available on the "
                          f"{keras.backend.backend()} backend")
    unwrap_train_step(model)
    step = module.wrap_train_step(model, apply, seed=step_seed(seed))
    setattr(step, _WRAPPED, apply)
    model.train_step = step
    model.train_function = None  # built again, from ours, by the next fit


def unwrap_train_step(model) -> bool:
    """Remove what :func:`wrap_train_step` installed (the class's ``train_step`` is used again);
    False when there was nothing of ours."""
    own = vars(model).get("train_step")
    if own is None or getattr(own, _WRAPPED, None) is None:
        return False
    del model.train_step
    model.train_function = None
    return True


def step_seed(*numbers: int) -> int:
    """A seed in 0..2**31-1 mixed from ``numbers`` (any size, negative too): what every backend's
    generator accepts (JAX keys, TensorFlow's stateless seeds, ``torch.Generator``)."""
    import numpy as np

    entropy = [int(n) % 2**64 for n in numbers]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0] & 0x7FFFFFFF)


class quiet_native:
    """``with quiet_native():`` sends file descriptor 2 to /dev/null, for native libraries that
    print straight to it (LiteRT's "Created TensorFlow Lite XNNPACK delegate" line); Python's own
    errors still propagate.  Where descriptor 2 cannot be duplicated, nothing is hidden."""

    def __enter__(self) -> "quiet_native":
        self.saved = self.devnull = None
        try:
            sys.stderr.flush()
            self.saved = os.dup(2)
            self.devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(self.devnull, 2)
        except (OSError, ValueError, AttributeError):
            self._close()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.saved is not None:
            os.dup2(self.saved, 2)
        self._close()

    def _close(self) -> None:
        for fd in (self.saved, self.devnull):
            if fd is not None:
                os.close(fd)
        self.saved = self.devnull = None
