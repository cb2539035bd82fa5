"""A TensorFlow.js graph model run with PyTorch ops, so that gradients reach its inputs.

:func:`tfjs_to_torch` reads a TensorFlow.js *graph model* (``X.json``: ``format: graph-model``,
``modelTopology`` = a TensorFlow GraphDef as JSON, ``weightsManifest`` = the weights' names,
shapes, dtypes and quantisation; ``X.bin`` = the weights concatenated in manifest order,
little-endian) and returns a :class:`TfjsGraphModule`. No TensorFlow is needed: every op of
:data:`SUPPORTED_OPS` is implemented with torch, unsupported ones are refused by name
(:class:`~xaiface.errors.WeightsError`). It sits beside the ONNX interpreter
(:mod:`.onnx_interpreter`) and shares its padding machinery (``SAME`` padding is ONNX's
``SAME_UPPER``: with stride 2 on an even size, 0 before and 1 after).

Layout. TensorFlow graphs are NHWC; torch convolutions are NCHW. The module keeps every 4-D
activation that comes from a convolution (or the 4-D input) in NCHW, and knows, per tensor and
at build time, which layout it is in:

* convolution filters are converted once: ``Conv2D`` HWIO -> OIHW; ``DepthwiseConv2dNative``
  ``[H, W, C, M]`` -> ``[C*M, 1, H, W]`` with ``groups=C``;
* a constant meeting an NCHW activation in an elementwise op is broadcast as TensorFlow would
  (left-padded to rank 4, NHWC) and then permuted to NCHW (a per-channel ``[C]`` becomes
  ``[1, C, 1, 1]``); two NCHW activations are never permuted again;
* the axes of reductions (``Mean``, ``Sum``...), ``Pad``'s paddings, ``ConcatV2``'s axis and
  ``Softmax``'s last axis are mapped to NCHW;
* every other op (``Reshape``, ``Squeeze``, ``Transpose``, ``MatMul``...) sees its inputs in
  TensorFlow's own layout (an NCHW activation is permuted back to NHWC first), so flattening
  follows NHWC order exactly as in TensorFlow.

Weights: ``float32``/``int32``/``bool`` stored raw; ``quantization: {dtype: float16}`` stored
as IEEE half floats; ``{dtype: uint8|uint16, scale, min}`` affine-quantised (``q * scale + min``),
as TensorFlow.js's ``decodeWeights`` does. Every weight becomes a float32 parameter (or an int
buffer), so the network can be differentiated.

Fused ops of the TensorFlow.js converter (``_FusedConv2D``, ``FusedDepthwiseConv2dNative``,
``_FusedMatMul``) apply their ``fused_ops`` in order: ``BiasAdd`` then one activation
(``Relu``, ``Relu6``, ``Elu``, ``Selu``, ``LeakyRelu`` with ``leakyrelu_alpha``, ``Prelu``
with the extra input, ``Sigmoid``, ``Tanh``); nothing is fused here that the file does not fuse.
"""
from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, WeightsError
from .onnx_interpreter import _pad_spatial, _spatial_pads, _torch_pad_list

Tensor = torch.Tensor

#: TensorFlow dimension index -> NCHW dimension index (for 4-D tensors)
_TF_TO_NCHW = (0, 2, 3, 1)

_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_QUANT = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}
_TF_DTYPE = {"DT_FLOAT": torch.float32, "DT_INT32": torch.int32, "DT_INT64": torch.int64, "DT_BOOL": torch.bool,
             "DT_HALF": torch.float16, "DT_DOUBLE": torch.float64}


class _OpError(Exception):
    """An op's attributes or inputs are outside what the reader supports."""


# ----------------------------------------------------------------------------------------------
# reading files


def _attr_value(a: dict[str, Any]) -> Any:
    """A GraphDef ``AttrValue`` (as JSON) -> a Python value (lists, ints, floats, strings, dtypes)."""
    if "list" in a:
        lst = a["list"]
        for k in ("i", "f", "s", "b", "type"):
            if k in lst:
                return [_attr_value({k: v}) for v in lst[k]]
        return []
    if "i" in a:
        return int(a["i"])
    if "f" in a:
        return float(a["f"])
    if "b" in a:
        return bool(a["b"])
    if "s" in a:
        return base64.b64decode(a["s"]).decode("utf-8", "replace")
    if "type" in a:
        return a["type"]
    if "shape" in a:
        return [int(d.get("size", -1)) for d in a["shape"].get("dim", [])]
    if "tensor" in a:
        return a["tensor"]
    return None


def _attrs(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _attr_value(v) for k, v in node.get("attr", {}).items()}


def decode_weights(manifest: Sequence[dict[str, Any]], data: bytes, source: str) -> dict[str, np.ndarray]:
    """The weights of a TensorFlow.js ``weightsManifest`` from the concatenated shard bytes.

    Raises:
        WeightsError: an unknown dtype or quantisation, or fewer / more bytes than the manifest says.
    """
    out: dict[str, np.ndarray] = {}
    offset = 0
    for group in manifest:
        for w in group.get("weights", []):
            name, shape, dtype = w["name"], [int(s) for s in w.get("shape", [])], w.get("dtype", "float32")
            n = math.prod(shape)
            q = w.get("quantization")
            if q:
                qt = _QUANT.get(q.get("dtype"))
                if qt is None:
                    raise WeightsError(f"{source}: weight {name}: unsupported quantisation dtype {q.get('dtype')!r} "
                                       f"(supported: {', '.join(_QUANT)})")
                size = n * np.dtype(qt).itemsize
                raw = np.frombuffer(data, dtype=np.dtype(qt).newbyteorder("<"), count=n, offset=offset) if offset + size <= len(data) else None
                if raw is not None:
                    if qt is np.float16:
                        arr = raw.astype(np.float32)
                    else:
                        arr = raw.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
                    if dtype == "int32":
                        arr = np.round(arr).astype(np.int32)
            else:
                if dtype not in _DTYPES:
                    raise WeightsError(f"{source}: weight {name}: unsupported dtype {dtype!r} (supported: {', '.join(_DTYPES)})")
                dt = np.dtype(_DTYPES[dtype])
                size = n * dt.itemsize
                arr = (np.frombuffer(data, dtype=dt.newbyteorder("<") if dt.itemsize > 1 else dt, count=n, offset=offset)
                       if offset + size <= len(data) else None)
            if arr is None:
                raise WeightsError(f"{source}: the weights file is truncated: weight {name} needs bytes {offset}..{offset + size}, "
                                   f"the file has {len(data)}")
            out[name] = np.array(arr, copy=True).reshape(shape)
            offset += size
    if offset != len(data):
        raise WeightsError(f"{source}: the weights file has {len(data)} bytes, the manifest describes {offset}: "
                           "not the weights of this model.json")
    return out


def read_tfjs(json_path: str | os.PathLike, weights: bytes | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(model.json content, weights by name)`` of a TensorFlow.js graph model.

    Args:
        json_path: the ``model.json``; its shards (``weightsManifest[*].paths``) are read from
            the same folder unless ``weights`` (all shards' bytes, in order) is given.
    Raises:
        WeightsError: missing or unreadable files, not a graph model, truncated weights.
    """
    path = Path(json_path)
    if not path.is_file():
        raise WeightsError(f"{path}: TensorFlow.js model.json not found")
    try:
        model = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightsError(f"{path}: not a TensorFlow.js model.json (not JSON: {e})") from None
    if not isinstance(model, dict) or "modelTopology" not in model or "node" not in model.get("modelTopology", {}):
        raise WeightsError(f"{path}: not a TensorFlow.js graph model (expected 'modelTopology' with a node list; "
                           f"format {model.get('format') if isinstance(model, dict) else None!r})")
    if model.get("format") not in (None, "graph-model"):
        raise WeightsError(f"{path}: format {model.get('format')!r}; only TensorFlow.js graph models are supported (not layers models)")
    manifest = model.get("weightsManifest", [])
    if weights is None:
        chunks = []
        for group in manifest:
            for shard in group.get("paths", []):
                sp = path.parent / shard
                if not sp.is_file():
                    raise WeightsError(f"{sp}: weights shard of {path.name} not found")
                chunks.append(sp.read_bytes())
        weights = b"".join(chunks)
    return model, decode_weights(manifest, weights, str(path))


# ----------------------------------------------------------------------------------------------
# layout helpers


def to_nchw(x: Tensor) -> Tensor:
    return x.permute(0, 3, 1, 2)


def to_nhwc(x: Tensor) -> Tensor:
    return x.permute(0, 2, 3, 1)


def _broadcast_to_nchw(c: Tensor) -> Tensor:
    """A TF-layout operand of an elementwise op with a 4-D NCHW activation, as NCHW."""
    if c.ndim > 4:
        raise _OpError(f"a rank-{c.ndim} operand broadcast against a 4-D activation")
    if c.ndim < 4:
        c = c.reshape((1,) * (4 - c.ndim) + tuple(c.shape))
    return c.permute(0, 3, 1, 2)


# ----------------------------------------------------------------------------------------------
# op implementations: fn(inputs, attrs, nchw) -> tensor; ``nchw[i]`` says input i's layout
# (for the layout-aware ops; the others get TF-layout inputs)


def _activation(name: str, x: Tensor, attrs: dict[str, Any], extra: Tensor | None, nchw: bool) -> Tensor:
    if name == "Relu":
        return torch.relu(x)
    if name == "Relu6":
        return torch.clamp(x, 0.0, 6.0)
    if name == "Elu":
        return F.elu(x)
    if name == "Selu":
        return F.selu(x)
    if name == "Sigmoid":
        return torch.sigmoid(x)
    if name == "Tanh":
        return torch.tanh(x)
    if name == "LeakyRelu":
        return F.leaky_relu(x, attrs.get("leakyrelu_alpha", attrs.get("alpha", 0.2)))
    if name == "Prelu":
        if extra is None:
            raise _OpError("Prelu without its alpha input")
        a = _broadcast_to_nchw(extra) if nchw and x.ndim == 4 else extra
        return torch.where(x >= 0, x, x * a)
    raise _OpError(f"fused activation {name!r}")


def _apply_fused(y: Tensor, attrs: dict[str, Any], args: list[Tensor], nchw: bool) -> Tensor:
    """``_Fused*``: ``BiasAdd`` (args[0]) then an activation (Prelu's alpha: args[1])."""
    ops = attrs.get("fused_ops", [])
    rest = list(args)
    for op in ops:
        if op == "BiasAdd":
            b = rest.pop(0)
            y = y + (b.reshape(1, -1, *([1] * (y.ndim - 2))) if nchw else b)
        elif op in ("FusedBatchNorm",):
            raise _OpError("fused batch norm")
        else:
            y = _activation(op, y, attrs, rest.pop(0) if op == "Prelu" and rest else None, nchw)
    return y


def _tf_pads(attrs: dict[str, Any], x: Tensor, kernel: Sequence[int], strides: Sequence[int],
             dilations: Sequence[int]) -> list[int]:
    """ONNX-order spatial pads ``[top, left, bottom, right]`` of a TF conv/pool on NCHW ``x``."""
    padding = attrs.get("padding", "VALID")
    if padding == "SAME":
        return _spatial_pads({"auto_pad": "SAME_UPPER"}, x.shape[2:], kernel, strides, dilations)
    if padding == "VALID":
        return [0, 0, 0, 0]
    if padding == "EXPLICIT":
        e = attrs.get("explicit_paddings", [])
        if len(e) != 8:
            raise _OpError(f"explicit_paddings {e}")
        # NHWC pairs: [0, 0, top, bottom, left, right, 0, 0]
        return [int(e[2]), int(e[4]), int(e[3]), int(e[5])]
    raise _OpError(f"padding {padding!r}")


def _nhwc_pair(attrs: dict[str, Any], key: str) -> list[int]:
    v = attrs.get(key, [1, 1, 1, 1])
    if attrs.get("data_format", "NHWC") != "NHWC":
        raise _OpError(f"data_format {attrs.get('data_format')!r}")
    return [int(v[1]), int(v[2])]


def _conv_like(x: Tensor, w: Tensor, attrs: dict[str, Any], groups: int) -> Tensor:
    strides, dilations = _nhwc_pair(attrs, "strides"), _nhwc_pair(attrs, "dilations")
    kernel = list(w.shape[2:])
    pads = _tf_pads(attrs, x, kernel, strides, dilations)
    x, padding = _pad_spatial(x, pads, [(k - 1) * d + 1 for k, d in zip(kernel, dilations)])
    if groups > 1:  # torch's CPU depthwise kernels are 5-6x faster on channels-last memory
        x = x.contiguous(memory_format=torch.channels_last)
    return F.conv2d(x, w, None, strides, padding, dilations, groups)


def _conv2d(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
    x, w = inputs[0], inputs[1]  # w: OIHW (converted at build time)
    groups = x.shape[1] // w.shape[1]
    y = _conv_like(x, w, attrs, groups)
    return _apply_fused(y, attrs, inputs[2:], True) if "fused_ops" in attrs else y


def _depthwise(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
    x, w = inputs[0], inputs[1]  # w: [C*M, 1, H, W] (converted at build time)
    y = _conv_like(x, w, attrs, x.shape[1])
    return _apply_fused(y, attrs, inputs[2:], True) if "fused_ops" in attrs else y


def _pool(kind: str) -> Callable[..., Tensor]:
    def fn(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
        x = inputs[0]
        kernel, strides = _nhwc_pair(attrs, "ksize"), _nhwc_pair(attrs, "strides")
        pads = _tf_pads(attrs, x, kernel, strides, [1, 1])
        if kind == "max":
            x, padding = _pad_spatial(x, pads, kernel, value=-math.inf)
            return F.max_pool2d(x, kernel, strides, padding)
        padded, padding = _pad_spatial(x, pads, kernel)
        if padded is x:  # symmetric: TF averages over real pixels only
            return F.avg_pool2d(x, kernel, strides, padding, count_include_pad=False)
        ones = F.pad(torch.ones_like(x[:1, :1]), _torch_pad_list(pads))
        return F.avg_pool2d(padded, kernel, strides, 0) / F.avg_pool2d(ones, kernel, strides, 0)

    return fn


def _binary(fn: Callable[[Tensor, Tensor], Tensor]) -> Callable[..., Tensor]:
    def op(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
        a, b = inputs[0], inputs[1]
        if nchw[0] and not nchw[1]:
            b = _broadcast_to_nchw(b)
        elif nchw[1] and not nchw[0]:
            a = _broadcast_to_nchw(a)
        return fn(a, b)

    return op


def _bias_add(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
    x, b = inputs[0], inputs[1]
    return x + (b.reshape(1, -1, 1, 1) if nchw[0] else b)


def _div(a: Tensor, b: Tensor) -> Tensor:
    if not a.is_floating_point() and not b.is_floating_point():
        return torch.div(a, b, rounding_mode="floor")
    return a / b


def _unary(fn: Callable[[Tensor], Tensor]) -> Callable[..., Tensor]:
    return lambda inputs, attrs, nchw: fn(inputs[0])


def _ints(t: Tensor) -> list[int]:
    return [int(v) for v in t.reshape(-1).tolist()]


def _reduce(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    def op(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
        x = inputs[0]
        keep = bool(attrs.get("keep_dims", False))
        axes = sorted({a % x.ndim for a in _ints(inputs[1])})
        if not axes:
            return x
        if not nchw[0]:
            return fn(x, dim=tuple(axes), keepdim=keep)
        dims = tuple(_TF_TO_NCHW[a] for a in axes)
        y = fn(x, dim=dims, keepdim=keep)
        if keep:
            return y
        # the kept TF axes, in TF order, and where they sit (in NCHW order) in y
        kept = [a for a in range(4) if a not in axes]
        positions = sorted(_TF_TO_NCHW[a] for a in kept)
        perm = [positions.index(_TF_TO_NCHW[a]) for a in kept]
        return y.permute(perm) if perm != sorted(perm) else y

    return op


def _pad(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
    x = inputs[0]
    p = inputs[1].reshape(-1, 2).tolist()
    if nchw[0]:
        p = [p[0], p[3], p[1], p[2]]
    value = float(inputs[2].reshape(-1)[0]) if len(inputs) > 2 else 0.0
    mode = attrs.get("mode", "CONSTANT").upper() if "mode" in attrs else "CONSTANT"
    onnx_pads = [int(a) for a, _ in p] + [int(b) for _, b in p]
    torch_pads = _torch_pad_list(onnx_pads)
    if mode == "CONSTANT":
        return F.pad(x, torch_pads, value=value)
    if mode not in ("REFLECT", "SYMMETRIC"):
        raise _OpError(f"MirrorPad mode {mode!r}")
    if mode == "SYMMETRIC":
        raise _OpError("MirrorPad mode SYMMETRIC")
    while torch_pads and torch_pads[-2:] == [0, 0]:
        torch_pads = torch_pads[:-2]
    return F.pad(x, torch_pads, mode="reflect")


def _matmul(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
    a, b = inputs[0], inputs[1]
    a = a.transpose(-1, -2) if attrs.get("transpose_a") else a
    b = b.transpose(-1, -2) if attrs.get("transpose_b") else b
    y = a @ b
    return _apply_fused(y, attrs, inputs[2:], False) if "fused_ops" in attrs else y


def _reshape(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
    return inputs[0].reshape(_ints(inputs[1]))


def _squeeze(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
    x = inputs[0]
    axes = attrs.get("squeeze_dims") or attrs.get("axis") or []
    return x.squeeze() if not axes else x.squeeze(tuple(a % x.ndim for a in axes))


def _expand_dims(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
    x = inputs[0]
    a = _ints(inputs[1])[0]
    return x.unsqueeze(a % (x.ndim + 1))


def _transpose(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
    return inputs[0].permute(_ints(inputs[1]))


def _concat(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
    *xs, axis_t = inputs
    axis = _ints(axis_t)[0]
    if all(nchw[:-1]):
        axis = _TF_TO_NCHW[axis % 4]
    return torch.cat(xs, dim=axis)


def _softmax(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
    return F.softmax(inputs[0], dim=1 if nchw[0] else -1)


def _batch_norm(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
    x, scale, offset, mean, var = inputs[:5]
    if attrs.get("is_training", False):
        raise _OpError("FusedBatchNorm with is_training=true")
    eps = attrs.get("epsilon", 1e-3)
    inv = scale * torch.rsqrt(var + eps)
    shift = offset - mean * inv
    if nchw[0]:
        return x * inv.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)
    return x * inv + shift


def _cast(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
    dt = _TF_DTYPE.get(attrs.get("DstT"))
    if dt is None:
        raise _OpError(f"Cast to {attrs.get('DstT')!r}")
    return inputs[0].to(dt)


#: op -> (implementation, layout-aware); layout-aware ops get inputs as they are (see ``nchw``)
#: and produce NCHW when their first NCHW-able input is NCHW; the others get TF-layout inputs.
_OPS: dict[str, tuple[Callable[..., Tensor], str]] = {
    "Conv2D": (_conv2d, "conv"),
    "_FusedConv2D": (_conv2d, "conv"),
    "DepthwiseConv2dNative": (_depthwise, "conv"),
    "FusedDepthwiseConv2dNative": (_depthwise, "conv"),
    "MaxPool": (_pool("max"), "conv"),
    "AvgPool": (_pool("avg"), "conv"),
    "FusedBatchNorm": (_batch_norm, "keep"),
    "FusedBatchNormV3": (_batch_norm, "keep"),
    "Add": (_binary(torch.add), "elementwise"),
    "AddV2": (_binary(torch.add), "elementwise"),
    "Sub": (_binary(torch.sub), "elementwise"),
    "Mul": (_binary(torch.mul), "elementwise"),
    "RealDiv": (_binary(_div), "elementwise"),
    "Div": (_binary(_div), "elementwise"),
    "Maximum": (_binary(torch.maximum), "elementwise"),
    "Minimum": (_binary(torch.minimum), "elementwise"),
    "Pow": (_binary(torch.pow), "elementwise"),
    "SquaredDifference": (_binary(lambda a, b: (a - b) ** 2), "elementwise"),
    "BiasAdd": (_bias_add, "keep"),
    "Relu": (_unary(torch.relu), "keep"),
    "Relu6": (_unary(lambda x: torch.clamp(x, 0.0, 6.0)), "keep"),
    "Elu": (_unary(F.elu), "keep"),
    "Selu": (_unary(F.selu), "keep"),
    "LeakyRelu": (lambda i, a, n: F.leaky_relu(i[0], a.get("alpha", 0.2)), "keep"),
    "Prelu": (lambda i, a, n: _activation("Prelu", i[0], a, i[1], n[0]), "keep"),
    "Sigmoid": (_unary(torch.sigmoid), "keep"),
    "Tanh": (_unary(torch.tanh), "keep"),
    "Exp": (_unary(torch.exp), "keep"),
    "Log": (_unary(torch.log), "keep"),
    "Sqrt": (_unary(torch.sqrt), "keep"),
    "Rsqrt": (_unary(torch.rsqrt), "keep"),
    "Square": (_unary(torch.square), "keep"),
    "Neg": (_unary(torch.neg), "keep"),
    "Abs": (_unary(torch.abs), "keep"),
    "Softplus": (_unary(F.softplus), "keep"),
    "Identity": (_unary(lambda x: x), "keep"),
    "StopGradient": (_unary(lambda x: x.detach()), "keep"),
    "Softmax": (_softmax, "keep"),
    "Mean": (_reduce(torch.mean), "reduce"),
    "Sum": (_reduce(torch.sum), "reduce"),
    "Max": (_reduce(torch.amax), "reduce"),
    "Min": (_reduce(torch.amin), "reduce"),
    "Prod": (_reduce(lambda x, dim, keepdim: _prod(x, dim, keepdim)), "reduce"),
    "Pad": (_pad, "pad"),
    "PadV2": (_pad, "pad"),
    "MirrorPad": (_pad, "pad"),
    "ConcatV2": (_concat, "concat"),
    "MatMul": (_matmul, "tf"),
    "_FusedMatMul": (_matmul, "tf"),
    "Reshape": (_reshape, "tf"),
    "Squeeze": (_squeeze, "tf"),
    "ExpandDims": (_expand_dims, "tf"),
    "Transpose": (_transpose, "tf"),
    "Cast": (_cast, "keep"),
}

#: TensorFlow op names :func:`tfjs_to_torch` runs (``Const`` and ``Placeholder`` besides).
SUPPORTED_OPS: frozenset[str] = frozenset(_OPS) | {"Const", "Placeholder"}

# the reader's own fused steps (see TfjsGraphModule._fuse): not TensorFlow ops
_OPS["xaiface.Clamp"] = (lambda i, a, n: torch.clamp(i[0], a["lo"], a["hi"]), "keep")
def _fused_prelu(inputs: list, attrs: dict[str, Any], nchw: list[bool]) -> Tensor:
    """``max(0, x) + g * min(0, x)``: torch's PReLU kernel when ``g`` is one slope per channel."""
    x, g = inputs
    if nchw[0] and x.ndim == 4 and g.numel() == x.shape[1] and g.numel() > 1:
        return F.prelu(x, g.reshape(-1))
    return _activation("Prelu", x, attrs, g, nchw[0])


_OPS["xaiface.Prelu"] = (_fused_prelu, "keep")


def _prod(x: Tensor, dim: tuple[int, ...], keepdim: bool) -> Tensor:
    for d in sorted(dim, reverse=True):
        x = x.prod(dim=d, keepdim=keepdim)
    return x


# ----------------------------------------------------------------------------------------------
# the module


def _split_input(name: str) -> tuple[str, int]:
    if ":" in name:
        base, idx = name.rsplit(":", 1)
        if idx.isdigit():
            return base, int(idx)
    return name, 0


class _Step:
    __slots__ = ("op", "name", "fn", "attrs", "inputs", "in_nchw", "convert", "out_nchw", "release")

    def __init__(self, op: str, name: str, attrs: dict[str, Any], inputs: list[str]):
        self.op, self.name, self.attrs, self.inputs = op, name, attrs, inputs
        self.fn = _OPS[op][0]
        self.in_nchw: list[bool] = []
        self.convert: list[bool] = []  # inputs to permute NCHW -> NHWC before the op
        self.out_nchw = False
        self.release: list[str] = []


class TfjsGraphModule(nn.Module):
    """A TensorFlow.js graph model run node by node with PyTorch ops (autograd reaches the input).

    Args:
        model: the ``model.json`` content; weights: name -> array (:func:`read_tfjs`).
        outputs: tensor names to compute (``"node"`` or ``"node:0"``); default: the
            signature's outputs, else the nodes no other node reads. Nodes no output needs
            are dropped.
        source: the file named in messages.
        nchw_input: the 4-D input is given as NCHW ``(B, C, H, W)`` (default) rather than
            TensorFlow's NHWC.
        fuse: rewrite three patterns of converted Keras / MXNet graphs into single steps that
            compute the same function (default True; ``fused`` counts them):
            a convolution followed by a per-channel ``Mul`` / ``Add`` (a batch norm the
            converter left unfolded) becomes one convolution with scaled filters and a bias;
            ``Relu -> Minimum(c) -> Maximum(z)`` (Keras's ReLU6, c >= 0 >= z) becomes
            ``clamp(x, 0, c)``; ``Maximum(0, x) + g * Minimum(0, x)`` (MXNet's PReLU) becomes
            ``prelu(x, g)``. Outputs agree with the unfused graph to float32 rounding (the
            folded filters round differently); gradients agree except at the measure-zero
            points where an elementwise max/min ties (torch splits a tie's gradient, the fused
            step gives it to one side). They matter for speed: on FaceRes the elementwise
            ``maximum`` / ``minimum`` backward alone took over half of a forward+backward.
    Raises:
        WeightsError: unsupported ops (all listed), a constant without weights, multi-output
            ops, or a node reading a tensor nothing produces.

    ``forward(x)`` returns the single output, or a tuple in ``output_names`` order.
    """

    def __init__(self, model: dict[str, Any], weights: dict[str, np.ndarray], outputs: Sequence[str] | None = None,
                 source: str = "<tfjs model>", nchw_input: bool = True, fuse: bool = True):
        super().__init__()
        self.source = source
        self.nchw_input = nchw_input
        self.channels_last = True
        nodes = {n["name"]: n for n in model["modelTopology"]["node"]}
        if outputs is None:
            sig = (model.get("signature") or {}).get("outputs") or {}
            outputs = [v.get("name", k) for k, v in sig.items()] or self._sinks(nodes)
        self.output_names = [_split_input(o)[0] for o in outputs]
        for o in outputs:
            base, idx = _split_input(o)
            if base not in nodes:
                raise WeightsError(f"{source}: output {o!r} is no node of the graph")
            if idx != 0:
                raise WeightsError(f"{source}: output {o!r}: only the first output of a node is supported")
        order = self._needed_in_order(nodes, self.output_names)
        bad = sorted({nodes[n]["op"] for n in order if nodes[n]["op"] not in SUPPORTED_OPS})
        if bad:
            raise WeightsError(f"{source}: unsupported TensorFlow ops {', '.join(bad)} "
                               f"(supported: {', '.join(sorted(SUPPORTED_OPS))})")
        self._attr: dict[str, str] = {}
        self.input_names: list[str] = []
        nchw: dict[str, bool] = {}
        self._steps: list[_Step] = []
        consumers: dict[str, list[str]] = {}
        for n in order:
            for i in nodes[n].get("input", []):
                if not i.startswith("^"):
                    consumers.setdefault(_split_input(i)[0], []).append(n)
        for n in order:
            node = nodes[n]
            op = node["op"]
            attrs = _attrs(node)
            if op == "Placeholder":
                self.input_names.append(n)
                nchw[n] = nchw_input and len(attrs.get("shape") or []) == 4
                continue
            if op == "Const":
                self._register(n, self._const(node, weights), consumers.get(n, []), nodes)
                nchw[n] = False
                continue
            ins = []
            for i in node.get("input", []):
                if i.startswith("^"):
                    continue
                base, idx = _split_input(i)
                if idx != 0:
                    raise WeightsError(f"{source}: node {n} ({op}) reads output {idx} of {base}; multi-output ops are not supported")
                ins.append(base)
            step = _Step(op, n, attrs, ins)
            self._layout(step, nchw)
            nchw[n] = step.out_nchw
            self._steps.append(step)
        if len(self.input_names) != 1:
            raise WeightsError(f"{source}: the graph has {len(self.input_names)} inputs {self.input_names}; one is supported")
        self._out_nchw = [nchw[o] for o in self.output_names]
        self.fused: dict[str, int] = {}
        if fuse:
            self._fuse()
        self._plan()

    @staticmethod
    def _sinks(nodes: dict[str, Any]) -> list[str]:
        read = {_split_input(i)[0] for n in nodes.values() for i in n.get("input", [])}
        return [k for k, n in nodes.items() if k not in read and n["op"] not in ("Const", "Placeholder")]

    def _needed_in_order(self, nodes: dict[str, Any], outputs: list[str]) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}
        for root in outputs:
            stack = [(root, False)]
            while stack:
                name, done = stack.pop()
                if done:
                    state[name] = 2
                    order.append(name)
                    continue
                if state.get(name) == 2:
                    continue
                if state.get(name) == 1:
                    raise WeightsError(f"{self.source}: the graph has a cycle through {name}")
                if name not in nodes:
                    raise WeightsError(f"{self.source}: a node reads {name!r}, which no node produces")
                state[name] = 1
                stack.append((name, True))
                for i in reversed(nodes[name].get("input", [])):
                    base = _split_input(i.lstrip("^"))[0]
                    if state.get(base) != 2:
                        if state.get(base) == 1:
                            raise WeightsError(f"{self.source}: the graph has a cycle through {base}")
                        stack.append((base, False))
        seen: set[str] = set()
        return [n for n in order if not (n in seen or seen.add(n))]

    def _const(self, node: dict[str, Any], weights: dict[str, np.ndarray]) -> np.ndarray:
        name = node["name"]
        if name in weights:
            return weights[name]
        t = node.get("attr", {}).get("value", {}).get("tensor")
        if t is not None:
            dims = [int(d.get("size", 0)) for d in t.get("tensorShape", {}).get("dim", [])]
            dtype = t.get("dtype", "DT_FLOAT")
            for key, np_dtype in (("floatVal", np.float32), ("intVal", np.int32), ("int64Val", np.int64), ("boolVal", np.bool_)):
                if key in t:
                    vals = np.array(t[key], dtype=np_dtype)
                    return (np.broadcast_to(vals, dims) if vals.size == 1 and dims else vals.reshape(dims)).copy()
            if "tensorContent" in t:
                np_dtype = {"DT_FLOAT": np.float32, "DT_INT32": np.int32, "DT_INT64": np.int64}.get(dtype)
                if np_dtype is not None:
                    return np.frombuffer(base64.b64decode(t["tensorContent"]), dtype=np_dtype).reshape(dims).copy()
        raise WeightsError(f"{self.source}: constant {name} has no weights in the manifest (a model.json of other weights?)")

    def _register(self, name: str, value: np.ndarray, consumers: list[str], nodes: dict[str, Any]) -> None:
        t = torch.from_numpy(np.ascontiguousarray(value))
        # convolution filters are converted once, when every reader of the constant is a filter slot
        kinds = set()
        for c in consumers:
            cn = nodes[c]
            ins = [_split_input(i)[0] for i in cn.get("input", []) if not i.startswith("^")]
            slot = ins.index(name) if name in ins else -1
            if cn["op"] in ("Conv2D", "_FusedConv2D") and slot == 1:
                kinds.add("conv")
            elif cn["op"] in ("DepthwiseConv2dNative", "FusedDepthwiseConv2dNative") and slot == 1:
                kinds.add("depthwise")
            else:
                kinds.add("other")
        if kinds and len(kinds) > 1 and kinds & {"conv", "depthwise"}:
            raise WeightsError(f"{self.source}: constant {name} is a convolution filter and also read elsewhere; not supported")
        if kinds == {"conv"}:
            if t.ndim != 4:
                raise WeightsError(f"{self.source}: Conv2D filter {name} has shape {list(t.shape)}, expected [H, W, I, O]")
            t = t.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
        elif kinds == {"depthwise"}:
            if t.ndim != 4:
                raise WeightsError(f"{self.source}: depthwise filter {name} has shape {list(t.shape)}, expected [H, W, C, M]")
            h, w, c, m = t.shape
            t = t.permute(2, 3, 0, 1).reshape(c * m, 1, h, w).contiguous()  # [H,W,C,M] -> [C*M, 1, H, W]
        attr = f"w{len(self._attr)}"
        if t.is_floating_point():
            self.register_parameter(attr, nn.Parameter(t.float()))
        else:
            self.register_buffer(attr, t)
        self._attr[name] = attr

    def _layout(self, step: _Step, nchw: dict[str, bool]) -> None:
        """Decide which inputs are permuted back to NHWC and the output's layout."""
        kind = _OPS[step.op][1]
        for i in step.inputs:
            if i not in nchw:
                raise WeightsError(f"{self.source}: node {step.name} ({step.op}) reads {i!r}, which is computed after it")
        flags = [nchw[i] for i in step.inputs]
        if kind == "conv":
            step.convert = [False] * len(flags)
            step.in_nchw = [True] + flags[1:]
            step.out_nchw = True
            step.attrs["_to_nchw"] = not flags[0]  # a TF-layout 4-D input is permuted to NCHW
        elif kind == "elementwise":
            step.convert = [False] * len(flags)
            step.in_nchw = flags
            step.out_nchw = any(flags)
        elif kind in ("keep", "reduce", "pad"):
            step.convert = [False] + [f for f in flags[1:]]
            step.in_nchw = [flags[0]] + [False] * (len(flags) - 1)
            step.out_nchw = flags[0] and (kind != "reduce" or bool(step.attrs.get("keep_dims", False)))
        elif kind == "concat":
            all_nchw = all(flags[:-1])
            step.convert = [f and not all_nchw for f in flags[:-1]] + [False]
            step.in_nchw = [all_nchw] * (len(flags) - 1) + [False]
            step.out_nchw = all_nchw
        else:  # "tf": TensorFlow's own layout
            step.convert = flags
            step.in_nchw = [False] * len(flags)
            step.out_nchw = False

    # -- fusion ---------------------------------------------------------------------------

    def _const_value(self, name: str) -> Tensor | None:
        attr = self._attr.get(name)
        return None if attr is None else getattr(self, attr).detach()

    def _fuse(self) -> None:
        by_name = {s.name: s for s in self._steps}
        readers: dict[str, list[_Step]] = {}
        for st in self._steps:
            for i in st.inputs:
                readers.setdefault(i, []).append(st)
        outputs = set(self.output_names)
        dropped: set[str] = set()

        def only_reader(name: str) -> _Step | None:
            r = readers.get(name, [])
            return r[0] if len(r) == 1 and name not in outputs else None

        def other_const(st: _Step, x: str) -> Tensor | None:
            others = [i for i in st.inputs if i != x]
            return self._const_value(others[0]) if len(others) == 1 and len(st.inputs) == 2 else None

        def per_channel(c: Tensor | None, n: int) -> Tensor | None:
            if c is None or not c.is_floating_point() or c.numel() != n or (c.ndim > 1 and any(d != 1 for d in c.shape[:-1])):
                return None
            return c.reshape(-1)

        for st in list(self._steps):
            if st.name in dropped:
                continue
            # convolution + per-channel Mul / Add -> one convolution with a bias
            if st.op in ("Conv2D", "DepthwiseConv2dNative") and "fused_ops" not in st.attrs and st.in_nchw[0]:
                w = self._const_value(st.inputs[1])
                if w is None:
                    continue
                cout = w.shape[0]
                scale, bias, chain = None, None, [st]
                nxt = only_reader(st.name)
                if nxt is not None and nxt.op == "Mul":
                    scale = per_channel(other_const(nxt, st.name), cout)
                    if scale is not None:
                        chain.append(nxt)
                        nxt = only_reader(nxt.name)
                cur = chain[-1].name
                if nxt is not None and nxt.op in ("Add", "AddV2", "BiasAdd") and (nxt.op != "BiasAdd" or nxt.inputs[0] == cur):
                    bias = per_channel(other_const(nxt, cur), cout)
                    if bias is not None:
                        chain.append(nxt)
                if len(chain) == 1:
                    continue
                with torch.no_grad():
                    w2 = w * scale.reshape(-1, 1, 1, 1) if scale is not None else w.clone()
                    b2 = bias.clone() if bias is not None else torch.zeros(cout)
                    # (conv(x, w) * s) + b == conv(x, w * s) + b: s scales output channel o (dim 0)
                wn, bn = f"{st.name}/xaiface_folded_filter", f"{st.name}/xaiface_folded_bias"
                for n, v in ((wn, w2), (bn, b2)):
                    a = f"w{len(self._attr)}"
                    self.register_parameter(a, nn.Parameter(v.contiguous()))
                    self._attr[n] = a
                last = chain[-1]
                new = _Step(st.op, last.name, {**st.attrs, "fused_ops": ["BiasAdd"]}, [st.inputs[0], wn, bn])
                new.in_nchw, new.convert, new.out_nchw = [True, False, False], [False] * 3, True
                by_name[new.name] = new
                self._steps[self._steps.index(last)] = new
                for gone in chain[:-1]:
                    self._steps.remove(gone)
                    dropped.add(gone.name)
                self.fused["conv+scale/bias"] = self.fused.get("conv+scale/bias", 0) + 1
                continue
            # Relu -> Minimum(c) -> Maximum(z) == clamp(x, 0, c) for c >= 0 >= z
            if st.op == "Relu":
                mn = only_reader(st.name)
                c = other_const(mn, st.name) if mn is not None and mn.op == "Minimum" else None
                mx = only_reader(mn.name) if c is not None and c.numel() == 1 else None
                z = other_const(mx, mn.name) if mx is not None and mx.op == "Maximum" else None
                if z is None or z.numel() != 1 or float(c) < 0 or float(z) > 0:
                    continue
                new = _Step("xaiface.Clamp", mx.name, {"lo": 0.0, "hi": float(c)}, [st.inputs[0]])
                new.in_nchw, new.convert, new.out_nchw = st.in_nchw, st.convert, st.out_nchw
                self._steps[self._steps.index(mx)] = new
                self._steps.remove(st)
                self._steps.remove(mn)
                dropped.update((st.name, mn.name))
                self.fused["relu6"] = self.fused.get("relu6", 0) + 1
                continue
        # Maximum(0, x) + g * Minimum(0, x) -> prelu(x, g)
        for st in list(self._steps):
            if st.op not in ("Add", "AddV2") or len(st.inputs) != 2 or st.name in dropped:
                continue
            a, b = (by_name.get(i) for i in st.inputs)
            if a is None or b is None:
                continue
            if a.op == "Mul":
                a, b = b, a
            if a.op != "Maximum" or b.op != "Mul" or only_reader(a.name) is not st or only_reader(b.name) is not st:
                continue
            m = next((by_name.get(i) for i in b.inputs if by_name.get(i) is not None and by_name[i].op == "Minimum"), None)
            gname = next((i for i in b.inputs if i in self._attr), None)
            if m is None or gname is None or only_reader(m.name) is not b:
                continue
            xa = [i for i in a.inputs if i not in self._attr]
            xm = [i for i in m.inputs if i not in self._attr]
            za = [self._const_value(i) for i in a.inputs if i in self._attr]
            zm = [self._const_value(i) for i in m.inputs if i in self._attr]
            if not (len(xa) == len(xm) == len(za) == len(zm) == 1 and xa == xm):
                continue
            if za[0].numel() != 1 or zm[0].numel() != 1 or float(za[0]) != 0 or float(zm[0]) != 0:
                continue
            x = xa[0]
            new = _Step("xaiface.Prelu", st.name, {}, [x, gname])
            x_nchw = a.in_nchw[a.inputs.index(x)]
            new.in_nchw, new.convert, new.out_nchw = [x_nchw, False], [False, False], st.out_nchw
            self._steps[self._steps.index(st)] = new
            for gone in (a, b, m):
                self._steps.remove(gone)
                dropped.add(gone.name)
            self.fused["prelu"] = self.fused.get("prelu", 0) + 1

    def _plan(self) -> None:
        self._by_name = {st.name: st for st in self._steps}  # the computed nodes (after fusion), for look-ups
        last: dict[str, int] = {}
        for k, s in enumerate(self._steps):
            for i in s.inputs:
                last[i] = k
        keep = set(self.output_names) | set(self._attr)
        for name, k in last.items():
            if name not in keep:
                self._steps[k].release.append(name)

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        return self.run(x)

    def step_names(self) -> list[str]:
        """The names of the computed nodes, in execution order (fused steps keep their last node's name)."""
        return [s.name for s in self._steps]

    def run(self, x: Tensor, record: dict[str, Tensor] | None = None) -> Tensor | tuple[Tensor, ...]:
        """:meth:`forward`, also storing into ``record`` (when given) the value of each node it names.

        A recorded 4-D activation is NCHW when :meth:`is_nchw` says so. Raises ConfigError for a
        name that is no computed node.
        """
        if record:
            unknown = sorted(n for n in record if n not in self._by_name)
            if unknown:
                raise ConfigError(f"{self.source}: no computed node named {unknown} (fused nodes keep their last node's name)")
        env: dict[str, Tensor] = {n: getattr(self, a) for n, a in self._attr.items()}
        if self.channels_last and x.ndim == 4 and self.nchw_input:
            x = x.contiguous(memory_format=torch.channels_last)
        env[self.input_names[0]] = x
        for s in self._steps:
            args = [to_nhwc(env[n]) if c else env[n] for n, c in zip(s.inputs, s.convert)]
            if s.attrs.get("_to_nchw"):
                if args[0].ndim != 4:
                    raise ConfigError(f"{self.source}: node {s.name} ({s.op}) needs a 4-D input, got {tuple(args[0].shape)}")
                args[0] = to_nchw(args[0])
            try:
                env[s.name] = s.fn(args, s.attrs, s.in_nchw)
            except _OpError as e:
                raise WeightsError(f"{self.source}: node {s.name} ({s.op}): unsupported {e}") from None
            except (RuntimeError, ValueError, IndexError) as e:
                e.add_note(f"in TensorFlow.js node {s.name} ({s.op}) of {self.source}")
                raise
            if record is not None and s.name in record:
                record[s.name] = env[s.name]
            for n in s.release:
                env.pop(n, None)
        outs = tuple(env[n] for n in self.output_names)
        return outs[0] if len(outs) == 1 else outs

    def is_nchw(self, name: str) -> bool:
        """True when node ``name``'s value is kept as NCHW (a 4-D activation)."""
        if name not in self._by_name:
            raise ConfigError(f"{self.source}: no computed node named {name!r}")
        return bool(self._by_name[name].out_nchw)

    def output_is_nchw(self, name: str) -> bool:
        """True when output ``name`` comes back as NCHW (a 4-D activation) rather than TF's layout."""
        return self._out_nchw[self.output_names.index(_split_input(name)[0])]


def tfjs_to_torch(json_path: str | os.PathLike, outputs: Sequence[str] | None = None, nchw_input: bool = True) -> TfjsGraphModule:
    """Convert a TensorFlow.js graph model (``model.json`` + shards) to a differentiable torch module.

    Example:
        >>> net = tfjs_to_torch("faceres.json", outputs=["global_pooling/Mean"])   # doctest: +SKIP
        >>> x = torch.zeros(1, 3, 224, 224, requires_grad=True)                      # doctest: +SKIP
        >>> net(x).sum().backward()                                                   # doctest: +SKIP

    Raises:
        WeightsError: unreadable files, a truncated weights file, unsupported ops (named).
    """
    model, weights = read_tfjs(json_path)
    return TfjsGraphModule(model, weights, outputs, source=str(json_path), nchw_input=nchw_input).eval()
