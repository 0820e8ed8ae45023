"""The ``lookahead`` optimizer's factory.  Light: keras is imported inside the factory only."""

from __future__ import annotations

from typing import Annotated, Any

from cnnreg.errors import CnnregError, ParameterError
from cnnreg.spec import Range

__all__ = ["lookahead", "inner_spec", "build_inner"]

_WHERE = "optimizer 'lookahead' parameter 'inner'"
#: What may wrap an inner spec with several parameters (the spec grammar never splits a value
#: at a comma inside brackets, so the inner spec stays one value).
_BRACKETS = {"[": "]", "(": ")"}


def lookahead(
    learning_rate: Annotated[float, Range(0, None, min_inclusive=False)] = 0.001,
    inner: str = "adam",
    k: Annotated[int, Range(1, None)] = 5,
    alpha: Annotated[float, Range(0, 1, min_inclusive=False)] = 0.5,
):
    """Lookahead (Zhang, Lucas, Hinton & Ba 2019): the ``inner`` optimizer takes every step;
    every ``k`` steps the slow weights move ``alpha`` of the way towards the model's weights
    (``slow += alpha * (fast - slow)``) and the model's weights are reset to them.

    ``inner`` is another optimizer's spec, built through the registry with this optimizer's
    ``learning_rate`` (the run's rate: a float, or the ``--schedule``'s Keras schedule):
    ``inner=sgd``, ``inner=adam:beta_1=0.95`` (one parameter: ``lookahead:inner=adam:beta_1=0.95,k=5``),
    or several in brackets, which the spec grammar keeps together:
    ``lookahead:inner=[sgd:momentum=0.9,nesterov=true],k=5`` (quote it in a shell).  The rate
    is this optimizer's, never the inner spec's: give it as ``--lr`` or ``learning_rate=``.
    ``learning_rate`` defaults to 0.001 (Adam's) whatever ``inner`` is: with ``inner=sgd`` you
    probably want ``--lr 0.01`` or more.
    """
    from cnnreg_lookahead.optimizer import Lookahead  # imports keras

    return Lookahead(build_inner(inner, learning_rate), k=k, alpha=alpha)


def inner_spec(text: str) -> str:
    """``inner``'s value as a spec: ``[sgd:momentum=0.9,nesterov=true]`` without its brackets."""
    text = str(text).strip()
    if len(text) >= 2 and _BRACKETS.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text


def build_inner(text: str, learning_rate: Any):
    """The inner optimizer ``text`` names, built through the registry with ``learning_rate``.

    Mistakes are one :class:`ParameterError` line that names ``inner``."""
    import keras

    import cnnreg
    from cnnreg.spec import parse

    try:
        spec = parse(inner_spec(text))
        component, params = cnnreg.get_registry().resolve("optimizer", spec)
    except CnnregError as exc:
        raise ParameterError(f"{_WHERE}: {exc}") from None
    if "learning_rate" in params:
        raise ParameterError(f"{_WHERE}: give the learning rate to lookahead (--lr, or "
                             f"lookahead:learning_rate=...), not to '{component.name}'")
    if "learning_rate" not in {p.name for p in component.parameters()}:
        raise ParameterError(f"{_WHERE}: optimizer '{component.name}' from {component.provider} takes no "
                             "learning_rate (see cnnreg.kinds.optimizers)")
    made = component.load()(learning_rate=learning_rate, **params)
    if not isinstance(made, keras.optimizers.Optimizer):
        raise ParameterError(f"{_WHERE}: optimizer '{component.name}' from {component.provider} returned "
                             f"{type(made).__name__}, not a keras.optimizers.Optimizer")
    return made
