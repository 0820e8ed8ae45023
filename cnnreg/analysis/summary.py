"""The layer table of a built Keras model, with per-layer costs in the same rows.

:func:`summarize` walks the model like ``model.summary()`` does. Nested models (Functional,
Sequential, subclassed) and custom layers that own sublayers are walked down to their leaves;
they show as one collapsed row unless ``expand=True``, but every cost is summed from the leaves.

Where the shapes come from (nothing is traced, so analysing a model costs far less than
building it):

* Functional and Sequential graphs: the symbolic tensors of each call (node) of each layer. A
  layer called several times (shared weights) is costed once per call; its row shows the first
  call's output shape and ``calls``. A nested model called on shapes that differ from its own
  inputs (e.g. a base built with ``input_shape=None``) is re-shaped with ``compute_output_spec``.
* Sublayers of custom layers and subclassed models: the input shape recorded when the
  sublayer was built, and its ``compute_output_shape``. Each is costed once per call of its
  owner; operations written directly in the owner's ``call()`` are invisible and not counted.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

from cnnreg.analysis import costs
from cnnreg.analysis.units import PRECISIONS, check_precision
from cnnreg.errors import ParameterError

__all__ = ["LayerRow", "ModelSummary", "UncountedLayerWarning", "summarize"]


class UncountedLayerWarning(UserWarning):
    """Some layers have no cost rule: the MAC and op totals leave them out."""


@dataclass
class LayerRow:
    """One row of the layer table. Costs are per instance, summed over the layer's calls.

    For a collapsed nested model the cost and activation columns are the totals of its layers.
    """

    name: str
    type: str
    output_shape: tuple | list | None  # per instance (no batch); a list for several outputs
    params: int
    trainable_params: int
    non_trainable_params: int
    param_bytes: int
    depth: int = 0
    parent: str | None = None  # path of the enclosing row, None at the top
    path: str = ""  # "outer/inner/layer"
    calls: int = 0
    macs: int = 0
    other_ops: int = 0
    activation_elements: int = 0  # output values per instance
    activation_bytes: int = 0  # ... at the summary's precision
    saved_elements: int = 0  # output values per instance kept for backprop in training
    cpu_extra_elements: int = 0  # ... kept on top of those on a CPU (costs.cpu_extra_copies)
    rule: str = ""  # cost rule name, "container", or "uncounted"
    note: str = ""
    children: list[LayerRow] = field(default_factory=list, repr=False)

    @property
    def flops(self) -> int:
        """2 × MACs."""
        return 2 * self.macs

    @property
    def counted(self) -> bool:
        """False when a leaf has no cost rule (its MACs and ops are missing, not zero)."""
        return self.rule != "uncounted"

    def to_dict(self) -> dict:
        """JSON-ready dict of the row (children are separate rows)."""
        shape = self.output_shape
        out = {k: getattr(self, k) for k in _ROW_FIELDS}
        out["output_shape"] = [list(s) for s in shape] if isinstance(shape, list) else (
            list(shape) if shape is not None else None)
        out["flops"] = self.flops
        return out


_ROW_FIELDS = [
    "name", "type", "path", "depth", "parent", "calls", "params", "trainable_params",
    "non_trainable_params", "param_bytes", "macs", "other_ops", "activation_elements",
    "activation_bytes", "saved_elements", "cpu_extra_elements", "rule", "note",
]


@dataclass
class ModelSummary:
    """Layer rows and totals of one model. Per-instance figures; FLOPs = 2 × MACs."""

    name: str
    rows: list[LayerRow]  # top-level rows, or every row depth-first when expand=True
    leaves: list[LayerRow] = field(repr=False)  # costed layers in execution order
    total_params: int = 0
    trainable_params: int = 0
    non_trainable_params: int = 0
    param_bytes: int = 0  # from the variables' own dtypes
    trainable_param_bytes: int = 0
    macs: int = 0
    other_ops: int = 0
    activation_elements: int = 0  # every layer output, per instance
    saved_elements: int = 0  # outputs kept for backprop, per instance
    cpu_extra_elements: int = 0  # kept on top of those on a CPU, per instance
    input_elements: int = 0  # model inputs, per instance
    output_elements: int = 0  # model outputs, per instance (the targets are the same size)
    input_shapes: list[tuple] = field(default_factory=list)
    output_shapes: list[tuple] = field(default_factory=list)
    precision: str = "float32"
    expand: bool = False
    uncounted: list[str] = field(default_factory=list)  # "path (Type)" of leaves with no rule

    @property
    def flops(self) -> int:
        """2 × MACs."""
        return 2 * self.macs

    @property
    def bytes_per_activation(self) -> int:
        """Bytes of one activation value at the summary's precision."""
        return PRECISIONS[self.precision]

    @property
    def activation_bytes(self) -> int:
        """Bytes of every layer output for one instance."""
        return self.activation_elements * self.bytes_per_activation

    @property
    def saved_activation_bytes(self) -> int:
        """Bytes of the outputs training keeps for backprop, for one instance."""
        return self.saved_elements * self.bytes_per_activation

    def row(self, name: str) -> LayerRow:
        """The row (any depth) whose name or path is ``name``."""
        for r in _walk([r for r in self.rows if r.depth == 0]):
            if name in (r.name, r.path):
                return r
        raise KeyError(name)

    def to_dict(self) -> dict:
        """JSON-ready dict: totals, rows, uncounted layers."""
        out = {k: getattr(self, k) for k in _SUMMARY_FIELDS}
        out["input_shapes"] = [list(s) for s in self.input_shapes]
        out["output_shapes"] = [list(s) for s in self.output_shapes]
        out.update(flops=self.flops, activation_bytes=self.activation_bytes,
                   saved_activation_bytes=self.saved_activation_bytes)
        out["rows"] = [r.to_dict() for r in self.rows]
        return out


_SUMMARY_FIELDS = [
    "name", "precision", "expand", "total_params", "trainable_params", "non_trainable_params",
    "param_bytes", "trainable_param_bytes", "macs", "other_ops", "activation_elements",
    "saved_elements", "cpu_extra_elements", "input_elements", "output_elements", "uncounted",
]


def _walk(rows):
    for r in rows:
        yield r
        yield from _walk(r.children)


def summarize(model, *, expand: bool = False, precision: str | None = None) -> ModelSummary:
    """Layer table and cost totals of a built Keras model.

    ``precision`` (float32, mixed_float16, mixed_bfloat16) sets the activation bytes; None takes
    the model's dtype policy (float32 unless it was built under mixed precision).
    Layers with no cost rule are listed in ``uncounted`` and reported by a warning.
    """
    if not getattr(model, "built", False):
        raise ParameterError(f"model '{getattr(model, 'name', model)}' is not built; build it or call it once")
    if precision is None:
        policy = getattr(getattr(model, "dtype_policy", None), "name", "float32")
        precision = policy if policy in PRECISIONS else "float32"
    check_precision(precision)

    walker = _Walker()
    top = walker.visit_model(model, None, 1, None)
    leaves = [r for r in _walk(top) if not r.children]
    for r in leaves:
        if not r.rule:  # tracked but never called in the graph
            r.rule, r.note = "uncounted", "never called"
    _aggregate(top)
    nbytes = PRECISIONS[precision]
    for r in _walk(top):
        r.activation_bytes = r.activation_elements * nbytes

    uncounted = [f"{r.path} ({r.type})" for r in leaves if r.rule == "uncounted"]
    if uncounted:
        warnings.warn(
            f"{len(uncounted)} layer(s) not costed (no cost rule, or shape unknown), "
            "MACs and ops leave them out: "
            + ", ".join(uncounted[:10]) + (" ..." if len(uncounted) > 10 else ""),
            UncountedLayerWarning,
            stacklevel=2,
        )

    inputs = [s for s in _model_io_shapes(model, "inputs")]
    outputs = [s for s in _model_io_shapes(model, "outputs")]
    trainable = model.trainable_weights
    non_trainable = model.non_trainable_weights
    return ModelSummary(
        name=model.name,
        rows=list(_walk(top)) if expand else top,
        leaves=leaves,
        total_params=int(model.count_params()),
        trainable_params=_count(trainable),
        non_trainable_params=_count(non_trainable),
        param_bytes=costs.weights_bytes(model.weights),
        trainable_param_bytes=costs.weights_bytes(trainable),
        macs=sum(r.macs for r in leaves),
        other_ops=sum(r.other_ops for r in leaves),
        activation_elements=sum(r.activation_elements for r in leaves),
        saved_elements=sum(r.saved_elements for r in leaves),
        cpu_extra_elements=sum(r.cpu_extra_elements for r in leaves),
        input_elements=sum(_size_or_zero(s) for s in inputs),
        output_elements=sum(_size_or_zero(s) for s in outputs),
        input_shapes=inputs,
        output_shapes=outputs,
        precision=precision,
        expand=expand,
        uncounted=uncounted,
    )


# --- walking ------------------------------------------------------------------------------


def _graph_of(layer):
    """The Functional graph behind ``layer`` (Functional model, built Sequential), else None."""
    if hasattr(layer, "_nodes_by_depth") and hasattr(layer, "_operations"):
        return layer
    functional = getattr(layer, "_functional", None)
    return functional if functional is not None and hasattr(functional, "_nodes_by_depth") else None


def _sublayers(layer) -> list:
    try:
        return layer._flatten_layers(include_self=False, recursive=False)
    except AttributeError:
        return list(getattr(layer, "layers", []))


def _is_container(layer) -> bool:
    """A model, or a layer of ours/a user's (not a Keras built-in) that owns sublayers."""
    if not _sublayers(layer):
        return False
    import keras

    return isinstance(layer, keras.Model) or not type(layer).__module__.startswith("keras.")


class _Walker:
    def __init__(self):
        self.rows: dict[tuple[int, int], LayerRow] = {}

    def row(self, layer, parent: LayerRow | None) -> LayerRow:
        key = (id(parent), id(layer))
        r = self.rows.get(key)
        if r is None:
            weights = layer.weights if getattr(layer, "built", False) else []
            trainable = layer.trainable_weights if weights else []
            non_trainable = layer.non_trainable_weights if weights else []
            r = self.rows[key] = LayerRow(
                name=layer.name,
                type=type(layer).__name__,
                output_shape=None,
                params=_count(weights),
                trainable_params=_count(trainable),
                non_trainable_params=_count(non_trainable),
                param_bytes=costs.weights_bytes(weights),
                depth=0 if parent is None else parent.depth + 1,
                parent=None if parent is None else parent.path,
                path=layer.name if parent is None else f"{parent.path}/{layer.name}",
            )
            if parent is not None:
                parent.children.append(r)
        return r

    def visit_model(self, model, input_shapes, mult: int, parent: LayerRow | None) -> list[LayerRow]:
        """Rows of ``model``'s layers, with the costs of its calls on ``input_shapes`` × ``mult``."""
        graph = _graph_of(model)
        if graph is None:
            return self.visit_container(model, mult, parent)
        listed = list(model.layers)  # Sequential hides its InputLayer, like model.summary()
        rows = [self.row(layer, parent) for layer in listed]
        shown = {id(layer) for layer in listed}
        for op, ins, outs, consumers in _graph_calls(graph, input_shapes):
            if id(op) not in shown:
                continue
            self.visit_call(op, ins, outs, mult, self.row(op, parent), consumers)
        return rows

    def visit_container(self, layer, mult: int, parent: LayerRow | None) -> list[LayerRow]:
        rows = []
        for sub in _sublayers(layer):
            r = self.row(sub, parent)
            rows.append(r)
            shapes = _build_shapes(sub)
            if shapes is None:
                if _graph_of(sub) is not None or _is_container(sub):
                    r.calls += mult
                    r.rule = "container"
                    self.visit_model(sub, None, mult, r)
                else:
                    r.calls += mult
                    r.rule = r.rule or "uncounted"
                    r.note = r.note or "not built: shape unknown"
                continue
            self.visit_call(sub, *shapes, mult, r)
        return rows

    def visit_call(self, layer, ins, outs, mult: int, r: LayerRow, consumers=None) -> None:
        r.calls += mult
        shape = outs[0] if len(outs) == 1 else list(outs)
        if r.output_shape is None:
            r.output_shape = shape
        if _graph_of(layer) is not None:
            r.rule = "container"
            self.visit_model(layer, ins, mult, r)
            return
        rule = costs.rule_for(layer)
        if rule is None and _is_container(layer):
            r.rule = "container"
            self.visit_container(layer, mult, r)
            return
        out_elements = sum(_size_or_zero(s) for s in outs)
        r.activation_elements += mult * out_elements
        r.saved_elements += mult * out_elements * costs.saved_copies(layer, consumers)
        try:
            r.saved_elements += mult * costs.saved_intermediate(layer, ins, outs)
        except costs.UnknownShapeError:
            pass  # the shape error is reported with the layer's cost below
        r.cpu_extra_elements += mult * out_elements * costs.cpu_extra_copies(layer, consumers)
        if rule is None:
            r.rule = "uncounted"
            r.note = "no cost rule"
            return
        try:
            cost = costs.layer_cost(layer, ins, outs)
        except costs.UnknownShapeError as exc:
            r.rule = "uncounted"
            r.note = f"shape unknown: {exc}"
            return
        r.rule = cost.rule
        r.macs += mult * cost.macs
        r.other_ops += mult * cost.other_ops


def _aggregate(rows: list[LayerRow]) -> None:
    for r in rows:
        if r.children:
            _aggregate(r.children)
            for k in ("macs", "other_ops", "activation_elements", "saved_elements", "cpu_extra_elements"):
                setattr(r, k, sum(getattr(c, k) for c in r.children))
            if any(not c.counted or c.note.startswith("partial") for c in _walk(r.children)):
                r.note = "partial: some layers inside have no cost rule"


def _graph_calls(graph, input_shapes):
    """(operation, input shapes, output shapes, consumers) of every call in ``graph``.

    Shapes are per instance; consumers are the operations in ``graph`` that read the outputs.

    With ``input_shapes`` that differ from the graph's own inputs, shapes are propagated with
    ``compute_output_spec`` (no tracing for layers that define ``compute_output_shape``).
    """
    nodes = [n for depth in sorted(graph._nodes_by_depth, reverse=True) for n in graph._nodes_by_depth[depth]]
    readers: dict[int, list] = {}
    for node in nodes:
        for x in node.input_tensors:
            readers.setdefault(id(x), []).append(node.operation)

    def consumers(node):
        return [op for x in node.outputs for op in readers.get(id(x), [])]

    own = [_instance(x.shape) for x in graph.inputs]
    if input_shapes is None or [tuple(s) for s in input_shapes] == own:
        for node in nodes:
            yield (node.operation, [_instance(x.shape) for x in node.input_tensors],
                   [_instance(x.shape) for x in node.outputs], consumers(node))
        return
    import keras

    tensors = {id(x): keras.KerasTensor((None, *s), dtype=x.dtype) for x, s in zip(graph.inputs, input_shapes)}
    for node in nodes:
        if not node.input_tensors:  # InputLayer
            outs = [tensors.get(id(x), x) for x in node.outputs]
            yield node.operation, [], [_instance(x.shape) for x in outs], consumers(node)
            continue
        args, kwargs = node.arguments.fill_in(tensors)
        result = node.operation.compute_output_spec(*args, **kwargs)
        outs = keras.tree.flatten(result)
        for x, y in zip(node.outputs, outs):
            tensors[id(x)] = y
        ins = [tensors[id(x)] for x in node.input_tensors]
        yield node.operation, [_instance(x.shape) for x in ins], [_instance(y.shape) for y in outs], consumers(node)


def _build_shapes(layer):
    """(input shapes, output shapes) per instance from what the layer was built with, or None."""
    built = getattr(layer, "_build_shapes_dict", None)
    if not built or _graph_of(layer) is not None:
        return None
    values = list(built.values())
    ins = []
    for v in values:
        if isinstance(v, (list, tuple)) and v and isinstance(v[0], (list, tuple)):
            ins.extend(v)
        elif isinstance(v, (list, tuple)):
            ins.append(v)
    try:
        out = layer.compute_output_shape(**built)
    except Exception:  # noqa: BLE001 - any failure just means "shape unknown"
        return None
    several = isinstance(out, list) or (isinstance(out, tuple) and out and isinstance(out[0], (list, tuple)))
    outs = list(out) if several else [out]
    return [_instance(s) for s in ins], [_instance(s) for s in outs]


def _model_io_shapes(model, which: str) -> list[tuple]:
    try:
        tensors = getattr(model, which)
    except (AttributeError, ValueError):
        return []
    import keras

    return [_instance(x.shape) for x in keras.tree.flatten(tensors or [])]


def _instance(shape) -> tuple:
    """Per-instance shape: drop the batch dimension."""
    shape = tuple(shape)
    return tuple(None if d is None else int(d) for d in shape[1:])


def _size_or_zero(shape) -> int:
    return 0 if any(d is None for d in shape) else math.prod(shape)


def _count(weights) -> int:
    return sum(math.prod(v.shape) for v in {id(v): v for v in weights}.values())


