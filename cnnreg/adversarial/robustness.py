"""Robust accuracy: a trained model's accuracy on adversarial versions of a split, per eps.

``cnnreg attack`` calls :func:`robustness`.  It reads the split as raw pixels (0..255, before the
model's preprocessing, as :func:`cnnreg.training.report.evaluate` reads it), scales them to
[0, 1] and attacks them there, so that eps means the same for every architecture and
preprocessing.  Every attack's output is projected once more into the eps ball and [0, 1]
(:func:`cnnreg.kinds.attacks.project`): a plugin's attack that oversteps cannot inflate the drop.

With ``out`` it writes what the numbers rest on: ``adversarial.npz`` (every input, adversarial
input and prediction; every reported accuracy can be recomputed from it), ``adversarial.png``
(Szegedy et al.'s figure: original | perturbation magnified | adversarial) and the curve
``robustness.png``.  Nothing here imports keras at module level.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnreg import files
from cnnreg.errors import CnnregError

__all__ = ["robustness", "check_eps", "build_attack", "label_at", "plot_curve", "plot_examples", "choose_examples",
           "FIGURE_ROWS"]

#: The most examples adversarial.png shows (one row each).
FIGURE_ROWS = 6

#: progress(done, total, what): examples predicted so far, of all eps together.
Progress = Callable[[int, int, str], None]


def build_attack(spec: str):
    """The attack a spec names (``pgd:eps=8/255,steps=10``): unknown names and bad parameters
    are the registry's one-line errors."""
    from cnnreg.plugins import get_host

    attack = get_host().registry.build("attack", spec)
    if not callable(getattr(attack, "perturb", None)):
        raise CnnregError(f"attack '{spec}' did not build an attack (its factory returned "
                          f"{type(attack).__name__}, which has no perturb())")
    return attack


def check_eps(values: Sequence[float], norm: str) -> list[float]:
    """The eps values sorted, without repeats; one line for a negative, non-finite or (L∞)
    larger-than-the-pixel-range value."""
    checked = []
    for value in values:
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise CnnregError(f"eps must be a finite number >= 0 (got {value:g})")
        if norm == "inf" and value > 1:
            raise CnnregError(f"eps {value:g} is more than the whole pixel range: eps is in [0, 1] pixel units "
                              f"(did you mean {value:g}/255 = {value / 255:.4g}?)")
        checked.append(value)
    if not checked:
        raise CnnregError("no eps value given")
    return sorted(set(checked))


def robustness(trained, attack: Any, eps_values: Sequence[float] | None = None, *, split: str = "test",
               dataset: str | None = None, limit: int | None = None, batch_size: int = 128, seed: int = 0,
               out: Path | None = None, progress: Progress | None = None, spec: str | None = None) -> dict[str, Any]:
    """Accuracy of ``trained`` (a :class:`cnnreg.training.saved.Trained`) on ``split`` under
    ``attack`` (a spec or an :class:`cnnreg.kinds.attacks.Attack`) at each eps (default: 0 and the
    attack's own).  The first ``limit`` examples of the split, in its order, are used.

    Returns ``{"attack", "label", "norm", "universal", "split", "dataset", "model",
    "architecture", "examples", "seed", "clean_accuracy", "results": [{"eps", "label",
    "accuracy", "mean_confidence", "changed", "mean_norm"}], "files"}`` with ``results`` in
    increasing eps.  ``progress(done, total, what)`` is called after each batch.  Keras must be
    on the model's backend already (``cnnreg attack`` selects the run's)."""
    from cnnreg.kinds.attacks import eager_target

    if isinstance(attack, str):
        spec = spec or attack
        attack = build_attack(attack)
    spec = spec or _describe(attack)
    norm = str(getattr(attack, "norm", "inf"))
    eps_list = check_eps([0.0, float(attack.eps)] if eps_values is None else list(eps_values), norm)
    if limit is not None and limit < 1:
        raise CnnregError(f"--limit must be >= 1 (got {limit})")
    if batch_size < 1:
        raise CnnregError(f"--batch-size must be >= 1 (got {batch_size})")

    from cnnreg.training.report import split_pixels

    x, y, class_names, dataset_name, split = split_pixels(trained, split, dataset, limit)
    model = trained.load_model()
    if model.output_shape[-1] != len(class_names):
        raise CnnregError(f"{trained.what}: the model predicts {model.output_shape[-1]} classes, dataset "
                          f"{dataset_name} has {len(class_names)}")
    import keras
    from keras import ops

    keras.utils.set_random_seed(seed)  # an attack that draws from keras.random is seeded too
    target = eager_target(model, trained.preprocess, batch_size=batch_size, seed=seed)
    n = len(y)
    x01 = np.clip(np.asarray(x, dtype="float32") / np.float32(255.0), 0.0, 1.0)
    onehot = np.eye(len(class_names), dtype="float32")[y]
    total, done = n * (len(eps_list) + (0 not in eps_list)), 0

    def predict(batches, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The inputs of ``batches`` (NumPy, in order), their predictions and probabilities;
        progress is told after each batch (an attacked batch: once it is attacked)."""
        nonlocal done
        images, preds, probs = [], [], []
        for batch in batches:
            logits = ops.convert_to_numpy(target.logits(ops.convert_to_tensor(batch)))
            p = _softmax(np.asarray(logits, dtype="float64"))
            images.append(batch)
            preds.append(p.argmax(axis=1))
            probs.append(p)
            done += len(p)
            if progress is not None:
                progress(done, total, what)
        return np.concatenate(images), np.concatenate(preds), np.concatenate(probs)

    _, clean_pred, clean_probs = predict((x01[i:i + batch_size] for i in range(0, n, batch_size)), "clean")
    results, adversarial, predictions = [], [], []
    for eps in eps_list:
        what = f"eps {eps:.4g}"
        if eps == 0:
            x_adv, pred, probs = x01, clean_pred, clean_probs
            done += n  # predicted above already
            if progress is not None:
                progress(done, total, what)
        else:
            x_adv, pred, probs = predict(_attacked(attack, target, x01, onehot, eps, norm, batch_size), what)
        delta = (x_adv.astype("float64") - x01).reshape(n, -1)  # exact: float64 holds any float32 difference
        size = np.abs(delta).max(axis=1) if norm == "inf" else np.sqrt(np.square(delta).sum(axis=1))
        results.append({
            "eps": eps,
            "label": label_at(spec, attack, eps),
            "accuracy": float(np.mean(pred == y)),
            "mean_confidence": float(probs.max(axis=1).mean()),
            "changed": float(np.mean(pred != clean_pred)),  # predictions the attack moved
            "mean_norm": float(size.mean()),  # how much of the budget was used, in the attack's norm
        })
        predictions.append(pred)
        last_probs = probs  # the figure shows the largest eps only
        if out is not None:
            adversarial.append(x_adv)
    result: dict[str, Any] = {
        "attack": spec, "label": results[-1]["label"], "norm": norm,
        "universal": bool(getattr(attack, "universal", False)), "split": split, "dataset": dataset_name,
        "model": trained.what, "architecture": trained.architecture, "examples": int(n), "seed": seed,
        "clean_accuracy": float(np.mean(clean_pred == y)), "results": results, "files": {},
    }
    title = f"{trained.architecture} on {dataset_name} ({split}, {n} examples)"
    curve = Path(out) / "robustness.png" if out is not None else (
        Path(trained.run_dir) / "robustness.png" if trained.run_dir is not None else None)
    if curve is not None:
        plot_curve(results, f"attack {spec}", title, curve, norm=norm)
        result["files"]["curve"] = str(curve)
    if out is not None:
        out = Path(out)
        npz = out / "adversarial.npz"
        _save_npz(npz, x=x01, y=y.astype("int64"), eps=np.asarray(eps_list, dtype="float64"),
                  x_adv=np.stack(adversarial), pred=np.stack(predictions).astype("int64"),
                  clean_pred=clean_pred.astype("int64"), class_names=np.asarray(class_names, dtype=str))
        result["files"]["npz"] = str(npz)
        figure = out / "adversarial.png"
        plot_examples(x01, adversarial[-1], y, clean_pred, clean_probs, predictions[-1], last_probs,
                      class_names, figure, eps=eps_list[-1], label=result["label"], title=title, norm=norm)
        result["files"]["figure"] = str(figure)
    return result


def _attacked(attack, target, x01: np.ndarray, onehot: np.ndarray, eps: float, norm: str, batch_size: int):
    """``attack`` at ``eps`` on every input, ``batch_size`` at a time (a universal attack: all
    in one call, so that one perturbation serves the whole set), each batch projected into the
    eps ball and [0, 1] again; yields NumPy batches in order."""
    from keras import ops

    from cnnreg.kinds.attacks import project

    n = len(x01)
    step = n if getattr(attack, "universal", False) else batch_size
    for start in range(0, n, step):
        xb = ops.convert_to_tensor(x01[start:start + step])
        yb = ops.convert_to_tensor(onehot[start:start + step])
        adv = attack.perturb(target, xb, yb, eps=eps)
        if tuple(adv.shape) != tuple(xb.shape):
            raise CnnregError(f"attack {_describe(attack)} returned shape {tuple(adv.shape)} for inputs of "
                              f"shape {tuple(xb.shape)}")
        adv = np.asarray(ops.convert_to_numpy(project(adv, xb, eps, norm)), dtype="float32")
        for i in range(0, len(adv), batch_size):
            yield adv[i:i + batch_size]


def _describe(attack) -> str:
    describe = getattr(attack, "describe", None)
    return describe() if callable(describe) else str(getattr(attack, "label", "") or type(attack).__name__)


def label_at(spec: str, attack, eps: float) -> str:
    """The attack's label with ``eps`` as its budget (labels name their eps, and ``--eps``
    replaces the spec's): the factory is called again with ``eps``; the attack's own label
    when its factory has no ``eps`` parameter or the spec is not the registry's."""
    if eps == getattr(attack, "eps", None):
        return _describe(attack)
    try:
        from cnnreg.plugins import get_host

        component, params = get_host().registry.resolve("attack", spec)
        if "eps" not in {p.name for p in component.parameters()}:
            return _describe(attack)
        return _describe(component.load()(**{**params, "eps": eps}))
    except Exception:  # a label is not worth failing a measured result for
        return _describe(attack)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:

    def save(tmp: str) -> None:
        with open(tmp, "wb") as handle:  # a file object: numpy would add ".npz" to a bare name
            np.savez(handle, **arrays)

    files.save_atomic(path, save)


# --- figures -------------------------------------------------------------------------------------


def eps_text(eps: float) -> str:
    """``0.0314 (8/255)`` when eps is a whole number of 255ths, else ``0.1``."""
    steps = eps * 255
    if eps > 0 and abs(steps - round(steps)) < 1e-6:
        return f"{eps:.3g} ({round(steps)}/255)"
    return f"{eps:.3g}"


def plot_curve(results: list[dict[str, Any]], label: str, title: str, path: Path, *, norm: str = "inf") -> None:
    """Robust accuracy against eps, each point labelled with its accuracy, written atomically;
    an L∞ budget also in grey levels (eps × 255) along the top."""

    from matplotlib.figure import Figure  # not pyplot: a notebook keeps its own backend

    eps = [r["eps"] for r in results]
    accuracy = [r["accuracy"] for r in results]
    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    ax = fig.subplots()
    ax.plot(eps, accuracy, "-o", color="tab:red", markersize=5)
    for e, a in zip(eps, accuracy):
        ax.annotate(f"{a:.3f}", (e, a), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(f"eps ({'L∞' if norm == 'inf' else 'L2'} norm, pixels scaled to [0, 1])")
    if norm == "inf":
        top = ax.secondary_xaxis("top", functions=(lambda e: np.asarray(e) * 255.0, lambda v: np.asarray(v) / 255.0))
        top.set_xlabel("grey levels (eps × 255)", fontsize=9)
    ax.set_ylabel("robust accuracy")
    ax.set_title(f"{label}\n{title}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    files.save_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))


def choose_examples(y: np.ndarray, clean_pred: np.ndarray, pred: np.ndarray, rows: int = FIGURE_ROWS) -> list[int]:
    """Up to ``rows`` indices to show: inputs the attack flipped (right before, wrong after),
    one per true class first; then other flipped ones, then any whose prediction changed, then
    the rest, in split order."""
    flipped = [i for i in range(len(y)) if clean_pred[i] == y[i] and pred[i] != y[i]]
    flipped_set = set(flipped)
    changed = [i for i in range(len(y)) if pred[i] != clean_pred[i] and i not in flipped_set]
    seen, first = set(), []
    for i in flipped:
        if y[i] not in seen:
            seen.add(y[i])
            first.append(i)
    chosen: list[int] = []
    for group in (first, flipped, changed, range(len(y))):
        for i in group:
            if len(chosen) >= rows:
                return chosen
            if i not in chosen:
                chosen.append(int(i))
    return chosen


def plot_examples(x: np.ndarray, x_adv: np.ndarray, y: np.ndarray, clean_pred: np.ndarray, clean_probs: np.ndarray,
                  pred: np.ndarray, probs: np.ndarray, class_names: list[str], path: Path, *, eps: float,
                  label: str, title: str, norm: str = "inf", rows: int = FIGURE_ROWS) -> list[int]:
    """Szegedy et al.'s figure: per row an original, the perturbation magnified to the full
    range (mid-grey = unchanged; the same factor on every row) and the adversarial input, with
    the true class and both predictions with their confidence.  Returns the rows' indices."""

    from matplotlib.figure import Figure  # not pyplot: a notebook keeps its own backend

    chosen = choose_examples(y, clean_pred, pred, rows)
    delta = x_adv[chosen] - x[chosen]
    peak = float(np.abs(delta).max()) if len(chosen) else 0.0
    factor = 0.5 / peak if peak > 0 else 1.0  # ±peak spans black to white
    gray = x.shape[-1] == 1
    # laid out in inches: per row a 2.2" image under two lines of title; above the first row
    # the column heads and above them the two-line title of the figure
    image_in, title_in, top_in, bottom_in = 2.2, 0.5, 1.25, 0.1
    height = len(chosen) * (image_in + title_in) - title_in + top_in + bottom_in
    fig = Figure(figsize=(7.5, height), dpi=100)
    axes = fig.subplots(len(chosen), 3, squeeze=False)
    fig.subplots_adjust(left=0.02, right=0.98, top=1 - top_in / height, bottom=bottom_in / height,
                        hspace=title_in / image_in, wspace=0.12)

    def name(c: int) -> str:
        text = str(class_names[c])
        return text if len(text) <= 16 else text[:15] + "…"

    def show(ax, image: np.ndarray) -> None:
        image = np.clip(image, 0.0, 1.0)
        if gray:
            ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(image, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])

    for row, i in enumerate(chosen):
        a, b, c = axes[row]
        show(a, x[i])
        show(b, 0.5 + delta[row] * factor)
        show(c, x_adv[i])
        ok_clean, ok_adv = clean_pred[i] == y[i], pred[i] == y[i]
        a.set_title(f"true {name(y[i])}\nclean: {name(clean_pred[i])} ({clean_probs[i, clean_pred[i]]:.2f})",
                    fontsize=9, color="black" if ok_clean else "tab:red")
        flat = delta[row].astype("float64").ravel()
        size = f"max |δ| {np.abs(flat).max():.3g}" if norm == "inf" else f"‖δ‖₂ {np.sqrt(np.square(flat).sum()):.3g}"
        b.set_title(f"\n{size}", fontsize=9)
        verdict = "still right" if ok_adv else ("now wrong" if ok_clean else "wrong before too")
        c.set_title(f"{verdict}\nadv.: {name(pred[i])} ({probs[i, pred[i]]:.2f})",
                    fontsize=9, color="tab:green" if ok_adv else "tab:red")
    heads = ("original", f"perturbation ×{factor:.3g} (grey = 0)", "adversarial")
    for ax, head in zip(axes[0], heads):
        ax.annotate(head, xy=(0.5, 1.0), xycoords="axes fraction", xytext=(0, 34), textcoords="offset points",
                    ha="center", va="bottom", fontsize=10, fontweight="bold")
    accuracy = float(np.mean(pred == y))
    clean = float(np.mean(clean_pred == y))
    shown = label if "eps" in label else f"{label}, eps {eps_text(eps)}"
    fig.suptitle(f"{shown}\n{title}: accuracy {clean:.3f} → {accuracy:.3f}", fontsize=10, y=1 - 0.08 / height)
    files.save_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    return chosen
