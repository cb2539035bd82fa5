"""An ONNX graph interpreted with PyTorch ops, so that gradients reach its inputs.

:func:`onnx_to_torch` reads an ONNX file (or an ``onnx.ModelProto``) and returns an
:class:`OnnxGraphModule`: floating-point initializers become parameters, each node is run by the
PyTorch implementation of its op (:data:`SUPPORTED_OPS`, default domain). Control flow (If,
Loop), custom domains and quantised ops are not supported: such files raise
:class:`~xaiface.errors.WeightsError` naming the file and the ops.

This module knows nothing of faces; :mod:`.onnx_model` wraps a graph as a registered recogniser.
"""
from __future__ import annotations

import functools
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, WeightsError

Tensor = torch.Tensor
_Inputs = list  # list[Tensor | None]: a node's inputs, None for an omitted optional input
_OpFn = Callable[[list, dict[str, Any], int], "Tensor | tuple[Tensor, ...]"]


class _OpError(Exception):
    """An op's attributes or inputs are outside what the converter supports."""


# ----------------------------------------------------------------------------------------------
# reading files


def load_onnx(path: str | os.PathLike) -> Any:
    """Read an ONNX file and check that it holds a graph.

    ``onnx.checker`` is deliberately not applied: real exports (old MXNet conversions) often fail
    it yet run; a malformed graph is caught when it is converted or loaded by onnxruntime.

    Returns:
        the ``onnx.ModelProto``.
    Raises:
        WeightsError: missing file, not an ONNX model, truncated, or no graph (names the file).
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: ONNX file not found (expected a .onnx model file)")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf DecodeError, external-data errors...
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise WeightsError(f"{path}: not a readable ONNX model (truncated or another format): {type(e).__name__}: {first}") from None
    g = model.graph
    if not (g.node and g.input and g.output):
        raise WeightsError(
            f"{path}: not an ONNX model with a graph (truncated or another format): "
            f"{len(g.node)} nodes, {len(g.input)} inputs, {len(g.output)} outputs"
        )
    return model


def read_onnx(path_or_model: str | os.PathLike | Any) -> tuple[Any, str]:
    """``(ModelProto, source name)`` from a path (read by :func:`load_onnx`) or an in-memory ``ModelProto``."""
    import onnx

    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model, path_or_model.graph.name or "<onnx model>"
    return load_onnx(path_or_model), str(path_or_model)


def opset_version(model: Any) -> int:
    """The default-domain opset a ``ModelProto`` imports (1 when none is listed)."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def _tensor_from_proto(proto: Any) -> Tensor:
    from onnx import numpy_helper

    arr = numpy_helper.to_array(proto)
    if arr.dtype.kind == "V" or arr.dtype.name in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
        arr = arr.astype(np.float32)  # numpy-extension dtypes torch cannot wrap
    return torch.from_numpy(np.array(arr, copy=True))


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import AttributeProto, helper

    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type == AttributeProto.TENSOR:
            out[a.name] = _tensor_from_proto(a.t)
        elif a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS, AttributeProto.SPARSE_TENSOR):
            raise _OpError(f"attribute {a.name!r} is a sub-graph or sparse tensor")
        else:
            v = helper.get_attribute_value(a)
            out[a.name] = v.decode() if isinstance(v, bytes) else (list(v) if isinstance(v, Sequence) and not isinstance(v, str) else v)
    return out


# ----------------------------------------------------------------------------------------------
# op implementations: fn(inputs, attrs, opset) -> tensor or tuple of tensors


def _ints(t: Tensor | None) -> list[int] | None:
    return None if t is None else [int(v) for v in t.reshape(-1).tolist()]


def _input_or_attr(inputs: _Inputs, i: int, attrs: dict[str, Any], name: str) -> list[int] | None:
    """An int list that moved from an attribute to input ``i`` in later opsets (axes, pads...)."""
    if len(inputs) > i and inputs[i] is not None:
        return _ints(inputs[i])
    return attrs.get(name)


def _spatial_pads(attrs: dict[str, Any], in_shape: Sequence[int], kernel: Sequence[int],
                  strides: Sequence[int], dilations: Sequence[int]) -> list[int]:
    """ONNX ``[x1_begin, x2_begin, ..., x1_end, x2_end]`` pads, resolving ``auto_pad``."""
    nd = len(kernel)
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        return list(attrs.get("pads", [0] * (2 * nd)))
    if auto == "VALID":
        return [0] * (2 * nd)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise _OpError(f"auto_pad={auto!r}")
    begin, end = [], []
    for size, k, s, d in zip(in_shape, kernel, strides, dilations):
        total = max(0, (math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size)
        small = total // 2
        begin.append(small if auto == "SAME_UPPER" else total - small)
        end.append(total - begin[-1])
    return begin + end


def _torch_pad_list(pads: Sequence[int]) -> list[int]:
    """ONNX ``[b1, .., bn, e1, .., en]`` -> ``F.pad``'s ``[bn, en, ..., b1, e1]``."""
    nd = len(pads) // 2
    out: list[int] = []
    for i in reversed(range(nd)):
        out += [int(pads[i]), int(pads[i + nd])]
    return out


def _pad_spatial(x: Tensor, pads: Sequence[int], kernel: Sequence[int], value: float = 0.0) -> tuple[Tensor, list[int]]:
    """Symmetric pads up to half the kernel go to the torch op; others are applied here."""
    nd = len(pads) // 2
    begin, end = list(pads[:nd]), list(pads[nd:])
    if begin == end and all(p <= k // 2 for p, k in zip(begin, kernel)):
        return x, begin
    return F.pad(x, _torch_pad_list(pads), value=value), [0] * nd


def _conv(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    nd = w.ndim - 2
    if nd not in (1, 2, 3):
        raise _OpError(f"{nd}-d convolution")
    kernel = list(w.shape[2:])
    strides = attrs.get("strides", [1] * nd)
    dilations = attrs.get("dilations", [1] * nd)
    pads = _spatial_pads(attrs, x.shape[2:], kernel, strides, dilations)
    x, padding = _pad_spatial(x, pads, [(k - 1) * d + 1 for k, d in zip(kernel, dilations)])
    conv = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
    return conv(x, w, b, strides, padding, dilations, attrs.get("group", 1))


def _pool_geometry(x: Tensor, attrs: dict[str, Any]) -> tuple[list[int], list[int], list[int], list[int]]:
    kernel = list(attrs["kernel_shape"])
    nd = len(kernel)
    strides = attrs.get("strides", [1] * nd)
    dilations = attrs.get("dilations", [1] * nd)
    return kernel, strides, dilations, _spatial_pads(attrs, x.shape[2:], kernel, strides, dilations)


def _max_pool(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    x = inputs[0]
    kernel, strides, dilations, pads = _pool_geometry(x, attrs)
    if attrs.get("storage_order", 0):
        raise _OpError("storage_order=1")
    x, padding = _pad_spatial(x, pads, [(k - 1) * d + 1 for k, d in zip(kernel, dilations)], value=-math.inf)
    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[len(kernel) - 1]
    return pool(x, kernel, strides, padding, dilations, bool(attrs.get("ceil_mode", 0)))


def _avg_pool(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    x = inputs[0]
    kernel, strides, dilations, pads = _pool_geometry(x, attrs)
    if any(d != 1 for d in dilations):
        raise _OpError("dilated AveragePool")
    include_pad = bool(attrs.get("count_include_pad", 0))
    ceil_mode = bool(attrs.get("ceil_mode", 0))
    pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[len(kernel) - 1]
    padded, padding = _pad_spatial(x, pads, kernel)
    if padded is x or include_pad:
        return pool(padded, kernel, strides, padding, ceil_mode, include_pad)
    # pads applied here: average over real pixels only = pooled sum / pooled count of real pixels
    ones = F.pad(torch.ones_like(x[:1, :1]), _torch_pad_list(pads))
    return pool(padded, kernel, strides, 0, ceil_mode, True) / pool(ones, kernel, strides, 0, ceil_mode, True)


def _global_pool(reduce: Callable[..., Tensor]) -> _OpFn:
    def fn(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
        x = inputs[0]
        return reduce(x, dim=tuple(range(2, x.ndim)), keepdim=True)

    return fn


def _batch_norm(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    x, scale, bias, mean, var = inputs[:5]
    # running statistics are constants (torch's kernel refuses to differentiate through them)
    return F.batch_norm(x, mean.detach(), var.detach(), scale, bias, training=False, eps=attrs.get("epsilon", 1e-5))


def _prelu(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    x, slope = inputs[0], inputs[1]
    return torch.where(x >= 0, x, x * slope)  # slope broadcasts as numpy does, per the ONNX spec


def _unary(fn: Callable[[Tensor], Tensor]) -> _OpFn:
    return lambda inputs, attrs, opset: fn(inputs[0])


def _binary(fn: Callable[[Tensor, Tensor], Tensor]) -> _OpFn:
    return lambda inputs, attrs, opset: fn(inputs[0], inputs[1])


def _variadic(fn: Callable[[Tensor, Tensor], Tensor]) -> _OpFn:
    return lambda inputs, attrs, opset: functools.reduce(fn, [t for t in inputs if t is not None])


def _div(a: Tensor, b: Tensor) -> Tensor:
    if not a.is_floating_point() and not b.is_floating_point():
        return torch.div(a, b, rounding_mode="trunc")  # ONNX integer Div truncates
    return a / b


def _flatten(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    x = inputs[0]
    axis = attrs.get("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def _gemm(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    a, b = inputs[0], inputs[1]
    c = inputs[2] if len(inputs) > 2 else None
    a = a.t() if attrs.get("transA", 0) else a
    b = b.t() if attrs.get("transB", 0) else b
    y = attrs.get("alpha", 1.0) * (a @ b)
    return y if c is None else y + attrs.get("beta", 1.0) * c


def _reshape(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    x, shape = inputs[0], _ints(inputs[1])
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _transpose(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    x = inputs[0]
    return x.permute(attrs.get("perm", list(reversed(range(x.ndim)))))


def _dropout(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> tuple[Tensor, Tensor]:
    x = inputs[0]
    return x, torch.ones_like(x, dtype=torch.bool)  # inference: identity, mask all kept


def _constant(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    if "value" in attrs:
        return attrs["value"]
    for name, dtype in (("value_float", torch.float32), ("value_floats", torch.float32),
                        ("value_int", torch.int64), ("value_ints", torch.int64)):
        if name in attrs:
            return torch.tensor(attrs[name], dtype=dtype)
    raise _OpError(f"Constant with attributes {sorted(attrs)}")


def _shape(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    shape = list(inputs[0].shape)
    return torch.tensor(shape[attrs.get("start", 0) : attrs.get("end", len(shape))], dtype=torch.int64)


def _gather(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    x, idx = inputs[0], inputs[1].long()
    axis = attrs.get("axis", 0) % x.ndim
    idx = torch.where(idx < 0, idx + x.shape[axis], idx)
    out = torch.index_select(x, axis, idx.reshape(-1))
    return out.reshape(*x.shape[:axis], *idx.shape, *x.shape[axis + 1 :])


def _unsqueeze(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    x = inputs[0]
    axes = _input_or_attr(inputs, 1, attrs, "axes") or []
    rank = x.ndim + len(axes)
    for a in sorted(a % rank for a in axes):
        x = x.unsqueeze(a)
    return x


def _squeeze(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    x = inputs[0]
    axes = _input_or_attr(inputs, 1, attrs, "axes")
    if not axes:
        return x.squeeze()
    return x.squeeze(tuple(a % x.ndim for a in axes))


def _concat(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    return torch.cat([t for t in inputs if t is not None], dim=attrs["axis"])


def _pad(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    x = inputs[0]
    pads = _input_or_attr(inputs, 1, attrs, "pads")
    value = float(inputs[2].reshape(-1)[0]) if len(inputs) > 2 and inputs[2] is not None and inputs[2].numel() else attrs.get("value", 0.0)
    axes = _input_or_attr(inputs, 3, attrs, "axes")
    if axes is not None:  # opset 18: pads only for the listed axes
        full = [0] * (2 * x.ndim)
        for j, a in enumerate(axes):
            full[a % x.ndim], full[a % x.ndim + x.ndim] = pads[j], pads[j + len(axes)]
        pads = full
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}.get(attrs.get("mode", "constant"))
    if mode is None:
        raise _OpError(f"Pad mode {attrs.get('mode')!r}")
    torch_pads = _torch_pad_list(pads)
    if mode == "constant":
        return F.pad(x, torch_pads, value=value)
    while torch_pads and torch_pads[-2:] == [0, 0]:  # non-constant modes pad trailing dims only
        torch_pads = torch_pads[:-2]
    return F.pad(x, torch_pads, mode=mode) if torch_pads else x


def _softmax(log: bool) -> _OpFn:
    def fn(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
        x = inputs[0]
        f = F.log_softmax if log else F.softmax
        if opset >= 13:
            return f(x, dim=attrs.get("axis", -1))
        # before opset 13 the input is coerced to 2-D at `axis` and normalised over the trailing part
        axis = attrs.get("axis", 1) % x.ndim
        return f(x.reshape(*x.shape[:axis], -1), dim=-1).reshape(x.shape)

    return fn


def _clip(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    x = inputs[0]
    if opset < 11:
        lo, hi = attrs.get("min"), attrs.get("max")
    else:
        lo = inputs[1] if len(inputs) > 1 else None
        hi = inputs[2] if len(inputs) > 2 else None
    return x if lo is None and hi is None else torch.clamp(x, min=lo, max=hi)


def _cast(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    from onnx import helper

    np_dtype = helper.tensor_dtype_to_np_dtype(attrs["to"])
    return inputs[0].to(torch.from_numpy(np.zeros(0, dtype=np_dtype)).dtype)


def _constant_of_shape(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    value = attrs.get("value", torch.zeros(1, dtype=torch.float32)).reshape(-1)
    return torch.full(_ints(inputs[0]), value[0].item(), dtype=value.dtype)


def _expand(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    x = inputs[0]
    return x.expand(torch.broadcast_shapes(tuple(x.shape), tuple(_ints(inputs[1]))))


def _slice(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    x = inputs[0]
    if opset < 10:
        starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
    else:
        starts, ends = _ints(inputs[1]), _ints(inputs[2])
        axes = _ints(inputs[3]) if len(inputs) > 3 else None
        steps = _ints(inputs[4]) if len(inputs) > 4 else None
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis %= x.ndim
        kept = range(x.shape[axis])[slice(start, end, step)]  # Python slicing clamps as ONNX does
        if step > 0:
            x = x.narrow(axis, kept.start, len(kept)) if step == 1 else x[(slice(None),) * axis + (slice(kept.start, kept.stop, step),)]
        else:
            x = torch.index_select(x, axis, torch.tensor(list(kept), dtype=torch.long))
    return x


def _reduce(fn: Callable[..., Tensor], axes_input_opset: int) -> _OpFn:
    def op(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
        x = inputs[0]
        axes = _input_or_attr(inputs, 1, attrs, "axes") if opset >= axes_input_opset else attrs.get("axes")
        keep = bool(attrs.get("keepdims", 1))
        if not axes:
            if attrs.get("noop_with_empty_axes", 0):
                return x
            axes = list(range(x.ndim))
        return fn(x, dim=tuple(a % x.ndim for a in axes), keepdim=keep)

    return op


def _lp_normalization(inputs: _Inputs, attrs: dict[str, Any], opset: int) -> Tensor:
    return F.normalize(inputs[0], p=attrs.get("p", 2), dim=attrs.get("axis", -1), eps=0.0)


def _attr_act(fn: Callable[..., Tensor], **defaults: float) -> _OpFn:
    return lambda inputs, attrs, opset: fn(inputs[0], **{k: attrs.get(k, v) for k, v in defaults.items()})


def _selu(x: Tensor, alpha: float, gamma: float) -> Tensor:
    return gamma * torch.where(x > 0, x, alpha * (torch.exp(x) - 1))


#: ONNX op type -> implementation.
_OPS: dict[str, _OpFn] = {
    "Conv": _conv,
    "BatchNormalization": _batch_norm,
    "PRelu": _prelu,
    "Relu": _unary(torch.relu),
    "LeakyRelu": _attr_act(lambda x, alpha: F.leaky_relu(x, alpha), alpha=0.01),
    "Sigmoid": _unary(torch.sigmoid),
    "Tanh": _unary(torch.tanh),
    "Elu": _attr_act(lambda x, alpha: F.elu(x, alpha), alpha=1.0),
    "Selu": _attr_act(_selu, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875),
    "HardSigmoid": _attr_act(lambda x, alpha, beta: torch.clamp(alpha * x + beta, 0, 1), alpha=0.2, beta=0.5),
    "HardSwish": _unary(F.hardswish),
    "Softplus": _unary(F.softplus),
    "Exp": _unary(torch.exp),
    "Log": _unary(torch.log),
    "Sqrt": _unary(torch.sqrt),
    "Neg": _unary(torch.neg),
    "Abs": _unary(torch.abs),
    "Reciprocal": _unary(torch.reciprocal),
    "Erf": _unary(torch.erf),
    "Floor": _unary(torch.floor),
    "Ceil": _unary(torch.ceil),
    "Add": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "Div": _binary(_div),
    "Pow": _binary(torch.pow),
    "Sum": _variadic(torch.add),
    "Max": _variadic(torch.maximum),
    "Min": _variadic(torch.minimum),
    "MatMul": _binary(torch.matmul),
    "Gemm": _gemm,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Identity": _unary(lambda x: x),
    "Dropout": _dropout,
    "Constant": _constant,
    "Shape": _shape,
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": _concat,
    "GlobalAveragePool": _global_pool(torch.mean),
    "GlobalMaxPool": _global_pool(torch.amax),
    "AveragePool": _avg_pool,
    "MaxPool": _max_pool,
    "Pad": _pad,
    "Softmax": _softmax(log=False),
    "LogSoftmax": _softmax(log=True),
    "Clip": _clip,
    "Cast": _cast,
    "ConstantOfShape": _constant_of_shape,
    "Expand": _expand,
    "Slice": _slice,
    "ReduceMean": _reduce(torch.mean, 18),
    "ReduceSum": _reduce(torch.sum, 13),
    "ReduceMax": _reduce(torch.amax, 18),
    "ReduceMin": _reduce(torch.amin, 18),
    "ReduceL2": _reduce(lambda x, dim, keepdim: torch.linalg.vector_norm(x, 2, dim=dim, keepdim=keepdim), 18),
    "LpNormalization": _lp_normalization,
}

#: ONNX op types :func:`onnx_to_torch` converts.
SUPPORTED_OPS: frozenset[str] = frozenset(_OPS)


# ----------------------------------------------------------------------------------------------
# the interpreter module


class _Step:
    """One compiled node: its op, attributes and tensor names."""

    __slots__ = ("op_type", "name", "fn", "attrs", "inputs", "outputs", "release")

    def __init__(self, node: Any, attrs: dict[str, Any]):
        self.op_type: str = node.op_type
        self.name: str = node.name or node.op_type
        self.fn: _OpFn = _OPS[node.op_type]
        self.attrs = attrs
        self.inputs: list[str] = list(node.input)
        self.outputs: list[str] = list(node.output)
        self.release: list[str] = []  # tensors no later step reads


class OnnxGraphModule(nn.Module):
    """An ONNX graph run node by node with PyTorch ops, so autograd reaches the inputs.

    Floating-point initializers become parameters, the others (shape constants) buffers;
    ``Constant`` nodes are evaluated once into buffers.

    Args:
        model: an ``onnx.ModelProto``.
        source: the file name used in error messages.
    Raises:
        WeightsError: unsupported ops (all listed), custom domains, or a node reading a tensor
            that nothing produces.

    ``forward(*inputs)`` takes the graph's (non-initializer) inputs in order and returns its
    single output, or a tuple when the graph has several.
    """

    def __init__(self, model: Any, source: str = "<onnx model>"):
        super().__init__()
        self.source = source
        self.opset = opset_version(model)
        graph = model.graph
        init_names = {t.name for t in graph.initializer}
        self.input_names = [i.name for i in graph.input if i.name not in init_names]
        self.output_names = [o.name for o in graph.output]
        bad = sorted({f"{n.domain + '.' if n.domain not in ('', 'ai.onnx') else ''}{n.op_type}"
                      for n in graph.node if n.op_type not in _OPS or n.domain not in ("", "ai.onnx")})
        if bad:
            raise WeightsError(f"{source}: unsupported ONNX ops {', '.join(bad)} (supported: {', '.join(sorted(_OPS))})")
        self._tensor_attr: dict[str, str] = {}  # ONNX tensor name -> attribute name on self
        for t in graph.initializer:
            self._register(t.name, _tensor_from_proto(t))
        self._steps: list[_Step] = []
        for node in graph.node:
            try:
                attrs = _attributes(node)
                if node.op_type == "Constant":
                    self._register(node.output[0], _constant([], attrs, self.opset), constant=True)
                    continue
            except _OpError as e:
                raise WeightsError(f"{source}: node {node.name or node.op_type} ({node.op_type}): unsupported {e}") from None
            self._steps.append(_Step(node, attrs))
        self._check_and_plan()

    def _register(self, name: str, value: Tensor, constant: bool = False) -> None:
        attr = f"t{len(self._tensor_attr)}_{re.sub(r'[^0-9a-zA-Z_]', '_', name)[:48]}"
        if value.is_floating_point() and not constant:
            self.register_parameter(attr, nn.Parameter(value, requires_grad=True))
        else:
            self.register_buffer(attr, value)
        self._tensor_attr[name] = attr

    def _check_and_plan(self) -> None:
        defined = set(self._tensor_attr) | set(self.input_names) | {""}
        last_use: dict[str, int] = {}
        for i, step in enumerate(self._steps):
            missing = [n for n in step.inputs if n not in defined]
            if missing:
                raise WeightsError(f"{self.source}: node {step.name} ({step.op_type}) reads undefined tensors {missing}")
            defined.update(step.outputs)
            for n in step.inputs:
                last_use[n] = i
        missing = [n for n in self.output_names if n not in defined]
        if missing:
            raise WeightsError(f"{self.source}: graph outputs {missing} are produced by no node")
        keep = set(self.output_names) | set(self._tensor_attr)
        for n, i in last_use.items():
            if n and n not in keep:
                self._steps[i].release.append(n)

    def forward(self, *inputs: Tensor) -> Tensor | tuple[Tensor, ...]:
        if len(inputs) != len(self.input_names):
            raise ConfigError(f"{self.source}: the graph takes {len(self.input_names)} inputs {self.input_names}, got {len(inputs)}")
        env: dict[str, Tensor | None] = {n: getattr(self, a) for n, a in self._tensor_attr.items()}
        env.update(zip(self.input_names, inputs))
        env[""] = None
        for step in self._steps:
            args = [env[n] for n in step.inputs]
            try:
                out = step.fn(args, step.attrs, self.opset)
            except _OpError as e:
                raise WeightsError(f"{self.source}: node {step.name} ({step.op_type}): unsupported {e}") from None
            except (RuntimeError, ValueError, IndexError, KeyError) as e:
                e.add_note(f"in ONNX node {step.name} ({step.op_type}) of {self.source}")
                raise
            outs = out if isinstance(out, tuple) else (out,)
            for name, value in zip(step.outputs, outs):
                if name:
                    env[name] = value
            for name in step.release:
                env.pop(name, None)
        results = tuple(env[n] for n in self.output_names)
        return results[0] if len(results) == 1 else results


def onnx_to_torch(path_or_model: str | os.PathLike | Any) -> OnnxGraphModule:
    """Convert an ONNX file (or ``onnx.ModelProto``) into a differentiable PyTorch module.

    Example:
        >>> net = onnx_to_torch("w600k_r50.onnx").eval()      # doctest: +SKIP
        >>> x = torch.zeros(1, 3, 112, 112, requires_grad=True)  # doctest: +SKIP
        >>> net(x).sum().backward()                           # doctest: +SKIP

    Raises:
        WeightsError: unreadable file or unsupported ops (names the file and the ops).
    """
    model, source = read_onnx(path_or_model)
    return OnnxGraphModule(model, source).eval()
