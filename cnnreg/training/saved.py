"""Loading what runs and zoos saved: a run's best model and checkpoints (Keras safe mode, one
line for a damaged or refused file), a trained model to evaluate or predict with (a run
directory or a weights entry: :func:`open_trained`), and the preprocessing and architecture a
manifest names, looked up in the registry: nothing named in a file is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnreg.errors import CnnregError
from cnnreg.plugins import get_host
from cnnreg.spec import parse
from cnnreg.training import rundir


def preprocess_of(component) -> tuple[str, Any]:
    """An architecture's registered ``preprocess`` (default
    :data:`cnnreg.kinds.architectures.DEFAULT_PREPROCESS`): its reference and the function.  The
    reference comes from the installed plugin's registration."""
    from cnnreg.kinds.architectures import DEFAULT_PREPROCESS
    from cnnreg.registry import resolve_reference

    ref = component.metadata.get("preprocess") or DEFAULT_PREPROCESS
    return ref, resolve_reference(ref, what=f"preprocess of {component.name}")


def imported_when_called(ref: str, what: str) -> Callable[..., Any]:
    """The function a registered ``module:attr`` reference names, imported at its first call:
    the module may import keras (keras.applications), which must wait for the backend and for
    every other check of the command."""
    from cnnreg.registry import resolve_reference

    found: list[Callable[..., Any]] = []

    def call(*args: Any, **kwargs: Any) -> Any:
        if not found:
            found.append(resolve_reference(ref, what=what))
        return found[0](*args, **kwargs)

    return call


def run_architecture(data: dict[str, Any], run_dir: Path):
    """The registered architecture a manifest names (``resolved.architecture``: provider and
    name), looked up in the registry."""
    resolved = data.get("resolved")
    resolved = resolved.get("architecture") if isinstance(resolved, dict) else None
    registry = get_host().registry
    if isinstance(resolved, dict) and isinstance(resolved.get("provider"), str) and isinstance(resolved.get("name"), str):
        return registry.get("architecture", f"{resolved['provider']}/{resolved['name']}")
    architecture = data["config"].get("architecture")  # a manifest from before 'resolved'
    if not isinstance(architecture, str):
        raise CnnregError(f"{rundir.MANIFEST} in {run_dir} is damaged: field 'resolved' names no architecture")
    return registry.get("architecture", parse(architecture).name)


def run_preprocess(data: dict[str, Any], run_dir: Path):
    """The preprocessing of a run read back from its manifest: its architecture's registered
    function, or one of :data:`cnnreg.kinds.architectures.PREPROCESS`.  Nothing named in the file is imported: any
    other value of ``preprocess`` is refused in one line."""
    return checked_preprocess(data.get("preprocess"), run_architecture(data, run_dir),
                              f"{rundir.MANIFEST} in {run_dir}: field 'preprocess'")


def checked_preprocess(value: Any, component, where: str, *, none_is_own: bool = False):
    """The preprocessing ``value`` names (read from a file: a manifest, a weights entry) if it
    is ``component``'s registered one or one of :data:`cnnreg.kinds.architectures.PREPROCESS`; else one line
    starting with ``where``.  ``none_is_own``: ``None`` means the architecture's own (an entry
    that does not say)."""
    from cnnreg.kinds.architectures import DEFAULT_PREPROCESS, PREPROCESS

    ref = component.metadata.get("preprocess") or DEFAULT_PREPROCESS
    if value == ref or (value is None and none_is_own):
        return imported_when_called(ref, f"preprocess of {component.name}")
    if isinstance(value, str) and value in PREPROCESS:
        return PREPROCESS[value]
    raise CnnregError(
        f"{where} ({value!r}) is not the preprocessing registered for architecture '{component.name}'; "
        "refusing to import it"
    )


def load_run_model(run_dir: Path):
    """A run's best model, ``model.keras``; a missing, damaged or refused file is one line."""
    run_dir = Path(run_dir)
    path = run_dir / "model.keras"
    if not path.exists() and not path.is_symlink():
        data = rundir.load_manifest(run_dir)
        if data.get("status") == "completed":
            raise CnnregError(f"model.keras in {run_dir} is missing (the run completed {data.get('epochs_done')} epochs); "
                              f"`cnnreg rerun {run_dir}` trains it again")
        if data.get("epochs_done"):
            raise CnnregError(f"model.keras in {run_dir} is missing; `cnnreg resume {run_dir}` puts the newest "
                              "checkpoint in its place")
        raise CnnregError(f"run {run_dir} has no model.keras yet (no epoch completed)")
    if os.path.realpath(path) != os.path.join(os.path.realpath(run_dir), "model.keras"):
        raise CnnregError(f"model.keras in {run_dir} leads outside the run directory; refusing to follow it")
    import_run_keras_objects(run_dir)
    return load_keras_file(path, f"model.keras in {run_dir}", compile=False)


def load_keras_file(path: Path, what: str, *, compile: bool):
    """``keras.models.load_model`` in Keras' safe mode (no code from the file runs).  A missing
    file, one cut short or otherwise damaged, and safe mode's refusal are one line each."""
    import zipfile

    import keras

    if not Path(path).exists():
        raise CnnregError(f"{what} is missing")
    # Keras calls a file that is not a complete zip "File not found": say what it is
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every member: a flipped byte fails its CRC
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise CnnregError(f"{what} is damaged (cut short or not a .keras file)") from None
    if bad is not None:
        raise CnnregError(f"{what} is damaged ({bad} fails its checksum)")
    try:
        return keras.models.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:  # Keras raises ValueError, TypeError, OSError, KeyError ... here
        text = str(exc)
        if "safe_mode" in text:
            kind = "a Lambda layer" if "Lambda" in text else "Python code"
            raise CnnregError(f"{what} contains {kind} (arbitrary code); refusing to load it (Keras safe mode)") from None
        first = text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
        raise CnnregError(f"{what} cannot be loaded, it may be damaged: {first}") from None


def import_run_keras_objects(run_dir: Path) -> None:
    """Import the ``keras_objects`` module of a run's architecture (:func:`import_keras_objects`)."""
    try:
        component = run_architecture(rundir.load_manifest(run_dir), run_dir)
    except CnnregError:
        return  # the plugin is gone: load_model will say which class it cannot find
    import_keras_objects(component)


def import_keras_objects(*components) -> None:
    """Import the module each component names in its ``keras_objects`` metadata (where a plugin
    registers its Keras classes: an architecture's custom layers, a schedule, a wrapping
    optimizer), so that Keras can deserialise a saved model or checkpoint holding them.  The
    modules come from the installed plugins' registrations, never from the file being loaded;
    None stands for no component."""
    import importlib

    for component in components:
        module = component.metadata.get("keras_objects") if component is not None else None
        if isinstance(module, str) and module:
            importlib.import_module(module)


@dataclass
class Trained:
    """A trained classifier to evaluate or predict with: a run's best model, or a weights entry
    (``lenet5.digits``, ``keras-resnet50.imagenet``) with its input shape, preprocessing and
    class names."""

    what: str  #: how messages name it: "run RUN", "weights NAME"
    component: Any  #: its registered architecture
    architecture: str  #: its spec
    input_shape: tuple[int, int, int]
    resize: str
    preprocess: Callable[[Any], Any]
    load_model: Callable[[], Any]
    class_names: Callable[[], list[str]]
    dataset: str | None = None  #: what it was trained on, the default for evaluation
    run_dir: Path | None = None
    data: dict[str, Any] | None = None  #: a run's manifest
    entry: Any = None
    backend: str | None = None


def open_trained(text: str | Path) -> Trained:
    """A run directory, an export written by ``cnnreg export`` (a file or SavedModel folder with
    its sidecar), or a registered weights name (when no such path exists).  One line for
    a path that is neither, with the closest weights names when it looks like one."""
    from cnnreg.plugins import get_host
    from cnnreg.training.pretrained import ENTRY_NAME, weights_names

    text = str(text)
    path = Path(text)
    if not path.exists() and not path.is_symlink() and ENTRY_NAME.fullmatch(text) and "/" not in text:
        registry = get_host().registry
        names = weights_names(registry)
        if text.lower() in {n.lower() for n in names}:
            return trained_entry(registry.get("weights", text))
        from cnnreg.kinds.weights import unknown_text

        raise CnnregError(f"'{text}' is neither a run directory nor a weights name" + unknown_text(text, names))
    from cnnreg.training.exported import is_export, trained_export

    if is_export(path):
        return trained_export(path)
    return trained_run(path)


def trained_run(run_dir: Path) -> Trained:
    """A run's best model, with what its manifest says (checked before anything loads)."""
    from cnnreg.training.saved import run_architecture, run_preprocess

    run_dir = Path(run_dir)
    data = rundir.load_manifest(run_dir)
    config = rundir.run_config(data, run_dir)
    preprocess = run_preprocess(data, run_dir)  # refused before any data is loaded
    shape = rundir.input_shape(data, run_dir)
    return Trained(
        what=f"run {run_dir}", component=run_architecture(data, run_dir), architecture=config.architecture,
        input_shape=shape, resize=data.get("resize", "stretch"),  # runs written before the resize modes stretched
        preprocess=preprocess, load_model=lambda: load_run_model(run_dir),
        class_names=lambda: rundir.manifest_field(data, "class_names", run_dir, list),
        dataset=config.dataset, run_dir=run_dir, data=data,
        backend=config.backend if isinstance(config.backend, str) else None,
    )


def trained_entry(component) -> Trained:
    """A weights entry: a published cnnreg run (file ``model``) or a keras.applications
    classifier (file ``top``).  Files are fetched (cached, hash-checked) when the model loads."""
    from cnnreg.kinds.weights import entry_of
    from cnnreg.plugins import get_host
    from cnnreg.spec import parse
    from cnnreg.training.saved import checked_preprocess

    entry = entry_of(component)
    spec = parse(entry.architecture)
    arch = get_host().registry.get("architecture", spec.name)
    params = {k: v for k, v in arch.resolve(spec.params).items() if k not in ("weights", "include_top")}
    manifest = entry.manifest if isinstance(entry.manifest, dict) else {}
    value = entry.preprocess if entry.preprocess is not None else manifest.get("preprocess")
    preprocess = checked_preprocess(value, arch, f"weights {entry.name}: field 'preprocess'", none_is_own=True)
    resize = manifest.get("resize") if manifest.get("resize") in ("stretch", "crop", "pad") else "stretch"
    if "model" in entry.files:
        def load():
            from cnnreg.zoo.cache import fetch_entry

            path = fetch_entry(entry, "model")
            import_keras_objects(arch)
            return load_keras_file(path, f"the file of weights {entry.name} ({path})", compile=False)
    elif "top" in entry.files:
        def load():
            from cnnreg.zoo.cache import fetch_entry

            path = fetch_entry(entry, "top")
            return arch.load()(input_shape=tuple(entry.input_shape), num_classes=entry.num_classes,
                               include_top=True, weights=str(path), **params)
    else:
        raise CnnregError(f"weights {entry.name} hold a base without a classifier (files: {', '.join(entry.files)}); "
                          f"fine-tune it: `cnnreg run {arch.name} --weights {entry.name} --dataset D`")

    def names() -> list[str]:
        from cnnreg.zoo.cache import class_names

        found = list(class_names(entry))
        if len(found) != entry.num_classes:
            raise CnnregError(f"weights {entry.name}: {len(found)} class names for {entry.num_classes} classes")
        return found

    return Trained(
        what=f"weights {entry.name}", component=arch, architecture=entry.architecture,
        input_shape=tuple(entry.input_shape), resize=resize, preprocess=preprocess, load_model=load,
        class_names=names, dataset=entry.dataset, entry=entry,
    )
