"""Caffe networks (``.prototxt`` + ``.caffemodel``) read without Caffe and run with PyTorch ops.

OpenCV 5 (the project's pin) has no Caffe importer and Caffe itself is not a dependency, so this
module reads both files itself:

* the ``.prototxt`` (protobuf *text* format) with a small tokenizer (:func:`parse_prototxt`),
  giving nested ``{field: [values]}`` dicts;
* the ``.caffemodel`` (protobuf *binary* format) by decoding the wire format
  (:func:`decode_fields`): ``NetParameter.layer`` (field 100, ``LayerParameter``, type as a string)
  or the pre-2015 ``NetParameter.layers`` (field 2, ``V1LayerParameter``, type as an enum), and for
  each layer its name and ``blobs`` (``BlobProto``: ``shape.dim`` or the legacy
  ``num/channels/height/width``; float ``data``, packed or not, or ``double_data``).

The network's structure comes from the prototxt (the deploy definition); the caffemodel supplies
the weights, matched by layer name. :func:`load_caffe` builds a :class:`CaffeNet`
(``torch.nn.Module``) that computes what Caffe computes for these layer types (field numbers and
semantics from BVLC Caffe's ``src/caffe/proto/caffe.proto`` and its layer implementations):

* ``Convolution``: ``kernel_size``/``kernel_h``/``kernel_w``, ``stride``, ``pad``, ``dilation``,
  ``group``, ``bias_term``; cross-correlation as ``torch.nn.functional.conv2d``;
* ``ReLU`` (``negative_slope``), ``Dropout`` (identity at inference), ``Softmax`` (``axis``);
* ``Pooling`` ``MAX`` / ``AVE`` (``global_pooling``; ``round_mode`` CEIL, Caffe's default, or
  FLOOR): output size ``ceil((H + 2 pad - k) / stride) + 1``, less one when the last window would
  start in the padding; ``AVE`` divides by the window clipped to ``H + pad`` (torch's
  ``count_include_pad=True``); the output size is checked against Caffe's formula on every call;
* ``LRN`` ``ACROSS_CHANNELS``: ``x / (k + alpha / n * sum_window x^2) ** beta`` over ``n``
  (odd, as Caffe requires) channels centred on each, as ``torch.nn.functional.local_response_norm``;
* ``InnerProduct``: flattens from ``axis`` (default 1), ``transpose``, ``bias_term``;
* ``Input`` layers and the net-level ``input``/``input_dim``/``input_shape`` fields.

Any other layer type, ``LRN`` ``WITHIN_CHANNEL``, ``STOCHASTIC`` pooling or a file that cannot be
read raises :class:`~xaiface.errors.WeightsError` naming the file and the layer. Layers whose
``include``/``exclude`` rules leave them out of the TEST phase are skipped. This module knows
nothing of faces.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError

#: V1LayerParameter.LayerType enum value -> the layer type name of the current format
V1_LAYER_TYPES = {
    0: "None", 1: "Accuracy", 2: "BNLL", 3: "Concat", 4: "Convolution", 5: "Data", 6: "Dropout",
    7: "EuclideanLoss", 8: "Flatten", 9: "HDF5Data", 10: "HDF5Output", 11: "Im2col", 12: "ImageData",
    13: "InfogainLoss", 14: "InnerProduct", 15: "LRN", 16: "MultinomialLogisticLoss", 17: "Pooling",
    18: "ReLU", 19: "Sigmoid", 20: "Softmax", 21: "SoftmaxWithLoss", 22: "Split", 23: "TanH",
    24: "WindowData", 25: "Eltwise", 26: "Power", 27: "SigmoidCrossEntropyLoss", 28: "HingeLoss",
    29: "MemoryData", 30: "ArgMax", 31: "Threshold", 32: "DummyData", 33: "Slice", 34: "MVN",
    35: "AbsVal", 36: "Silence", 37: "ContrastiveLoss", 38: "Exp", 39: "Deconvolution",
}
#: the V1 enum names as written in old prototxt files (``type: CONVOLUTION``)
V1_TYPE_NAMES = {
    "NONE": "None", "ACCURACY": "Accuracy", "BNLL": "BNLL", "CONCAT": "Concat", "CONVOLUTION": "Convolution",
    "DATA": "Data", "DROPOUT": "Dropout", "EUCLIDEAN_LOSS": "EuclideanLoss", "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss", "POOLING": "Pooling", "RELU": "ReLU",
    "SIGMOID": "Sigmoid", "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split",
    "TANH": "TanH", "WINDOW_DATA": "WindowData", "ELTWISE": "Eltwise", "POWER": "Power",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "HINGE_LOSS": "HingeLoss",
    "MEMORY_DATA": "MemoryData", "ARGMAX": "ArgMax", "THRESHOLD": "Threshold", "DUMMY_DATA": "DummyData",
    "SLICE": "Slice", "MVN": "MVN", "ABSVAL": "AbsVal", "SILENCE": "Silence",
    "CONTRASTIVE_LOSS": "ContrastiveLoss", "EXP": "Exp", "DECONVOLUTION": "Deconvolution",
}
#: layer types :class:`CaffeNet` runs
SUPPORTED_LAYERS = ("Input", "Convolution", "ReLU", "Pooling", "LRN", "InnerProduct", "Dropout", "Softmax")
#: layer types that carry learned blobs (weight, then bias)
_WITH_BLOBS = ("Convolution", "InnerProduct")


# ---------------------------------------------------------------------------------------------
# protobuf wire format


class _DecodeError(Exception):
    pass


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    n = len(buf)
    while True:
        if pos >= n:
            raise _DecodeError("a varint runs past the end of the data")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _DecodeError("a varint is longer than 10 bytes")


def decode_fields(buf: bytes | memoryview) -> list[tuple[int, int, Any]]:
    """The fields of one protobuf message, in order: ``(field number, wire type, value)``.

    ``value`` is an ``int`` (varint, wire type 0), ``bytes``-like ``memoryview`` of 8 bytes (1),
    of the payload (2, length-delimited: a sub-message, string or packed array) or of 4 bytes (5).
    Groups (wire types 3, 4) are not used by Caffe and are refused.

    Raises:
        _DecodeError: truncated or malformed data (callers turn it into a WeightsError naming the file).
    """
    mv = memoryview(buf).cast("B") if not isinstance(buf, memoryview) else buf
    out: list[tuple[int, int, Any]] = []
    pos, n = 0, len(mv)
    while pos < n:
        key, pos = _varint(mv, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise _DecodeError(f"field number 0 at byte {pos}")
        if wt == 0:
            val, pos = _varint(mv, pos)
        elif wt == 1:
            if pos + 8 > n:
                raise _DecodeError(f"a 64-bit field {num} runs past the end")
            val, pos = mv[pos:pos + 8], pos + 8
        elif wt == 2:
            ln, pos = _varint(mv, pos)
            if pos + ln > n:
                raise _DecodeError(f"field {num} declares {ln} bytes, {n - pos} are left")
            val, pos = mv[pos:pos + ln], pos + ln
        elif wt == 5:
            if pos + 4 > n:
                raise _DecodeError(f"a 32-bit field {num} runs past the end")
            val, pos = mv[pos:pos + 4], pos + 4
        else:
            raise _DecodeError(f"wire type {wt} (field {num}) is not used by Caffe files")
        out.append((num, wt, val))
    return out


def _packed_varints(mv: memoryview) -> list[int]:
    vals, pos = [], 0
    while pos < len(mv):
        v, pos = _varint(mv, pos)
        vals.append(v)
    return vals


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _decode_floats(fields: list[tuple[int, int, Any]], num: int, dtype: str) -> np.ndarray | None:
    """Repeated float (``<f4``, wire type 5) or double (``<f8``, 1) field ``num``: packed and/or not."""
    width = 4 if dtype == "<f4" else 8
    parts = []
    for n_, wt, val in fields:
        if n_ != num:
            continue
        if wt == 2:
            if len(val) % width:
                raise _DecodeError(f"packed field {num} has {len(val)} bytes, not a multiple of {width}")
            parts.append(np.frombuffer(val, dtype=dtype))
        elif wt == (5 if width == 4 else 1):
            parts.append(np.frombuffer(val, dtype=dtype))
        else:
            raise _DecodeError(f"field {num} has wire type {wt}, expected {dtype} values")
    if not parts:
        return None
    return np.concatenate(parts).astype(np.float32) if len(parts) > 1 else parts[0].astype(np.float32)


def decode_blob(buf: memoryview) -> np.ndarray:
    """A ``BlobProto`` as a float32 array of its shape (``shape.dim`` or legacy ``num/channels/height/width``)."""
    fields = decode_fields(buf)
    dims: list[int] | None = None
    legacy = {1: 1, 2: 1, 3: 1, 4: 1}
    has_legacy = False
    for num, wt, val in fields:
        if num == 7 and wt == 2:  # BlobShape
            dims = []
            for n2, wt2, v2 in decode_fields(val):
                if n2 == 1:
                    dims.extend(_signed64(v) for v in (_packed_varints(v2) if wt2 == 2 else [v2]))
        elif num in legacy and wt == 0:
            legacy[num] = int(val)
            has_legacy = True
    data = _decode_floats(fields, 5, "<f4")
    if data is None:
        data = _decode_floats(fields, 8, "<f8")
    if data is None:
        data = np.zeros(0, np.float32)
    shape = dims if dims is not None else ([legacy[1], legacy[2], legacy[3], legacy[4]] if has_legacy else [data.size])
    if any(d < 0 for d in shape) or math.prod(shape) != data.size:
        raise _DecodeError(f"a blob of shape {shape} holds {data.size} values")
    return data.reshape(shape)


# ---------------------------------------------------------------------------------------------
# prototxt (protobuf text format)

_TOKEN = re.compile(r"""\s+|\#[^\n]*|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[{}:;,\[\]<>]|[^\s{}:;,\[\]<>"'\#]+""")


def _tokens(text: str, source: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # pragma: no cover - the last alternative matches any other character run
            raise WeightsError(f"{source}: unreadable text at character {pos}")
        tok = m.group(0)
        pos = m.end()
        if tok.isspace() or tok.startswith("#"):
            continue
        out.append(tok)
    return out


def _scalar(tok: str) -> Any:
    if tok[0] in "\"'":
        return bytes(tok[1:-1], "utf-8").decode("unicode_escape")
    low = tok.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(tok, 0)
    except ValueError:
        pass
    try:
        return float(tok.rstrip("fF")) if not low.startswith(("inf", "-inf", "nan")) else float(low)
    except ValueError:
        return tok  # an enum name (CONVOLUTION, MAX, ...)


def parse_prototxt(text: str, source: str = "<prototxt>") -> dict[str, list[Any]]:
    """A protobuf text-format message as nested dicts: ``{field: [value, ...]}``.

    Scalars become ``int``/``float``/``bool``/``str`` (quoted strings unquoted; enum names kept
    as strings); sub-messages (``name { ... }`` or ``name: { ... }``) become dicts; repeated
    fields keep their order. ``[a, b]`` lists are accepted.

    Raises:
        WeightsError: unbalanced braces or a field without a value (names ``source``).
    """
    toks = _tokens(text, source)
    pos = 0

    def message(end: str | None) -> dict[str, list[Any]]:
        nonlocal pos
        msg: dict[str, list[Any]] = {}
        while pos < len(toks):
            tok = toks[pos]
            if tok in ("}", ">"):
                if end is None:
                    raise WeightsError(f"{source}: unbalanced '{tok}' (token {pos})")
                pos += 1
                return msg
            if tok in (";", ","):
                pos += 1
                continue
            name = tok
            pos += 1
            if pos < len(toks) and toks[pos] == ":":
                pos += 1
            if pos >= len(toks):
                raise WeightsError(f"{source}: field {name!r} has no value (the file ends)")
            nxt = toks[pos]
            if nxt in ("{", "<"):
                pos += 1
                msg.setdefault(name, []).append(message(nxt))
            elif nxt == "[":
                pos += 1
                while pos < len(toks) and toks[pos] != "]":
                    if toks[pos] != ",":
                        msg.setdefault(name, []).append(_scalar(toks[pos]))
                    pos += 1
                pos += 1
            elif nxt in ("}", ">", ":"):
                raise WeightsError(f"{source}: field {name!r} has no value")
            else:
                msg.setdefault(name, []).append(_scalar(nxt))
                pos += 1
        if end is not None:
            raise WeightsError(f"{source}: a '{end}' block is not closed (the file ends)")
        return msg

    return message(None)


# ---------------------------------------------------------------------------------------------
# the net definition


@dataclass
class CaffeLayer:
    """One layer of a Caffe net: its type (current-format name), blob names and parameters."""

    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    params: dict[str, Any] = field(default_factory=dict)


def _first(msg: dict[str, list[Any]] | None, key: str, default: Any = None) -> Any:
    if not msg or key not in msg:
        return default
    return msg[key][0]


def _in_test_phase(layer: dict[str, list[Any]]) -> bool:
    def phase(rule: dict[str, list[Any]]) -> str | None:
        p = _first(rule, "phase")
        return None if p is None else ("TEST" if p in ("TEST", 1) else "TRAIN")

    inc = layer.get("include", [])
    if inc and not any(phase(r) in (None, "TEST") for r in inc):
        return False
    return not any(phase(r) == "TEST" for r in layer.get("exclude", []))


def net_definition(proto: dict[str, list[Any]], source: str) -> tuple[dict[str, list[int]], list[CaffeLayer]]:
    """The inputs (name -> shape) and TEST-phase layers of a parsed prototxt."""
    inputs: dict[str, list[int]] = {}
    names = [str(v) for v in proto.get("input", [])]
    dims = [int(v) for v in proto.get("input_dim", [])]
    shapes = [[int(d) for d in s.get("dim", [])] for s in proto.get("input_shape", [])]
    for i, name in enumerate(names):
        if shapes:
            inputs[name] = shapes[i] if i < len(shapes) else []
        else:
            inputs[name] = dims[4 * i:4 * i + 4]
    if "layer" in proto and "layers" in proto:
        raise WeightsError(f"{source}: has both 'layer' and the old 'layers' fields; expected one")
    raw = proto.get("layer", proto.get("layers", []))
    layers = []
    for i, lay in enumerate(raw):
        if not _in_test_phase(lay):
            continue
        t = _first(lay, "type", "")
        t = V1_TYPE_NAMES.get(t, t) if isinstance(t, str) else V1_LAYER_TYPES.get(int(t), str(t))
        name = str(_first(lay, "name", f"layer{i}"))
        params = {k: v[0] for k, v in lay.items() if k.endswith("_param") and v and isinstance(v[0], dict)}
        layer = CaffeLayer(name, t, [str(b) for b in lay.get("bottom", [])], [str(b) for b in lay.get("top", [])], params)
        if t == "Input":
            for j, top in enumerate(layer.tops):
                shp = params.get("input_param", {}).get("shape", [])
                inputs[top] = [int(d) for d in (shp[j] if j < len(shp) else shp[-1] if shp else {}).get("dim", [])]
            continue
        layers.append(layer)
    if not inputs:
        raise WeightsError(f"{source}: declares no input (expected 'input' with 'input_dim'/'input_shape', or an Input layer)")
    if not layers:
        raise WeightsError(f"{source}: has no layers")
    return inputs, layers


def read_caffemodel_blobs(data: bytes, source: str = "<caffemodel>") -> dict[str, list[np.ndarray]]:
    """Layer name -> its blobs (float32 arrays), from a ``.caffemodel``'s bytes.

    Reads ``NetParameter.layer`` (field 100: ``LayerParameter``, name 1, blobs 7) and
    ``NetParameter.layers`` (field 2: ``V1LayerParameter``, name 4, blobs 6).

    Raises:
        WeightsError: truncated or malformed data, or no layers at all (names ``source``).
    """
    try:
        top = decode_fields(data)
        out: dict[str, list[np.ndarray]] = {}
        n_layers = 0
        for num, wt, val in top:
            if wt != 2 or num not in (2, 100):
                continue
            name_f, blob_f = (1, 7) if num == 100 else (4, 6)
            n_layers += 1
            name, blobs = None, []
            for n2, wt2, v2 in decode_fields(val):
                if n2 == name_f and wt2 == 2:
                    name = bytes(v2).decode("utf-8", "replace")
                elif n2 == blob_f and wt2 == 2:
                    blobs.append(decode_blob(v2))
            if name is not None and blobs:
                out[name] = blobs
    except _DecodeError as e:
        raise WeightsError(f"{source}: not a readable Caffe model (truncated or another format): {e}") from None
    if n_layers == 0:
        raise WeightsError(f"{source}: holds no Caffe layers (expected a .caffemodel: NetParameter with 'layer' or 'layers')")
    return out


# ---------------------------------------------------------------------------------------------
# the PyTorch module


def _pair(p: dict[str, Any], key: str, key_h: str, key_w: str, default: int) -> tuple[int, int]:
    if key_h in p or key_w in p:
        return int(_first(p, key_h, default)), int(_first(p, key_w, default))
    vals = [int(v) for v in p.get(key, [])]
    if not vals:
        return default, default
    return (vals[0], vals[0]) if len(vals) == 1 else (vals[0], vals[1])


def caffe_pool_size(size: int, kernel: int, stride: int, pad: int, ceil: bool = True) -> int:
    """Caffe's pooling output length (``PoolingLayer::Reshape``)."""
    if ceil:
        out = int(math.ceil((size + 2 * pad - kernel) / stride)) + 1
    else:
        out = (size + 2 * pad - kernel) // stride + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _enum(v: Any, names: Sequence[str]) -> str:
    return names[int(v)] if isinstance(v, int) else str(v)


class CaffeNet(nn.Module):
    """A Caffe net's TEST-phase forward pass with PyTorch ops (see the module docstring).

    ``forward(x)`` takes the first input's ``(N, C, H, W)`` float tensor and returns the last
    layer's top (``outputs=`` names other blobs: a dict then). Parameters are float32 buffers
    registered as ``<layer>_weight`` / ``<layer>_bias`` (no gradients are kept by default).
    """

    def __init__(self, inputs: dict[str, list[int]], layers: list[CaffeLayer], blobs: dict[str, list[np.ndarray]],
                 source: str):
        super().__init__()
        self.source = source
        self.inputs = dict(inputs)
        self.layers = layers
        self._ops: list[tuple[CaffeLayer, dict[str, Any]]] = []
        for lay in layers:
            self._ops.append((lay, self._prepare(lay, blobs.get(lay.name, []))))
        self.output_name = layers[-1].tops[0] if layers[-1].tops else layers[-1].name

    def _bad(self, lay: CaffeLayer, what: str) -> WeightsError:
        return WeightsError(f"{self.source}: layer {lay.name!r} ({lay.type}): {what}")

    def _buffer(self, lay: CaffeLayer, kind: str, arr: np.ndarray) -> str:
        key = re.sub(r"\W", "_", f"{lay.name}_{kind}")
        while key in self._buffers or hasattr(self, key):  # two layer names that differ only in punctuation
            key += "_"
        self.register_buffer(key, torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)))
        return key

    def _prepare(self, lay: CaffeLayer, blobs: list[np.ndarray]) -> dict[str, Any]:
        t, p = lay.type, lay.params
        if t not in SUPPORTED_LAYERS:
            raise self._bad(lay, f"layer type {t!r} is not supported (supported: {', '.join(SUPPORTED_LAYERS)})")
        if t not in _WITH_BLOBS and blobs:
            raise self._bad(lay, f"has {len(blobs)} weight blob(s); this layer type takes none")
        if len(lay.bottoms) != 1 or len(lay.tops) != 1:
            raise self._bad(lay, f"expected one bottom and one top, got {lay.bottoms} -> {lay.tops}")
        if t == "Convolution":
            cp = p.get("convolution_param", {})
            out_ch = int(_first(cp, "num_output", 0))
            kh, kw = _pair(cp, "kernel_size", "kernel_h", "kernel_w", 0)
            bias = bool(_first(cp, "bias_term", True))
            group = int(_first(cp, "group", 1))
            if out_ch <= 0 or kh <= 0 or kw <= 0 or group <= 0 or out_ch % group:
                raise self._bad(lay, f"num_output {out_ch}, kernel {kh}x{kw}, group {group} are not a valid convolution")
            if len(blobs) != 1 + bias:
                raise self._bad(lay, f"the caffemodel has {len(blobs)} blob(s) for it, expected {1 + bias} (weight{', bias' if bias else ''})")
            w = blobs[0]
            if w.size % (out_ch * kh * kw):
                raise self._bad(lay, f"weight of {w.size} values is not {out_ch} x C x {kh} x {kw}")
            w = w.reshape(out_ch, w.size // (out_ch * kh * kw), kh, kw)
            op = {"w": self._buffer(lay, "weight", w), "stride": _pair(cp, "stride", "stride_h", "stride_w", 1),
                  "pad": _pair(cp, "pad", "pad_h", "pad_w", 0), "dilation": _pair(cp, "dilation", "", "", 1), "groups": group}
            if bias:
                if blobs[1].size != out_ch:
                    raise self._bad(lay, f"bias of {blobs[1].size} values, expected {out_ch}")
                op["b"] = self._buffer(lay, "bias", blobs[1].reshape(out_ch))
            return op
        if t == "InnerProduct":
            ip = p.get("inner_product_param", {})
            out_n = int(_first(ip, "num_output", 0))
            bias = bool(_first(ip, "bias_term", True))
            if out_n <= 0:
                raise self._bad(lay, f"num_output {out_n}")
            if len(blobs) != 1 + bias:
                raise self._bad(lay, f"the caffemodel has {len(blobs)} blob(s) for it, expected {1 + bias}")
            w = blobs[0]
            if w.size % out_n:
                raise self._bad(lay, f"weight of {w.size} values is not a multiple of num_output {out_n}")
            w = w.reshape(-1, out_n).T if bool(_first(ip, "transpose", False)) else w.reshape(out_n, -1)
            op = {"w": self._buffer(lay, "weight", w), "axis": int(_first(ip, "axis", 1))}
            if bias:
                if blobs[1].size != out_n:
                    raise self._bad(lay, f"bias of {blobs[1].size} values, expected {out_n}")
                op["b"] = self._buffer(lay, "bias", blobs[1].reshape(out_n))
            return op
        if t == "Pooling":
            pp = p.get("pooling_param", {})
            method = _enum(_first(pp, "pool", "MAX"), ("MAX", "AVE", "STOCHASTIC"))
            if method not in ("MAX", "AVE"):
                raise self._bad(lay, f"pooling method {method} is not supported (MAX, AVE)")
            glob = bool(_first(pp, "global_pooling", False))
            kernel = _pair(pp, "kernel_size", "kernel_h", "kernel_w", 0)
            if not glob and min(kernel) <= 0:
                raise self._bad(lay, "no kernel_size")
            rnd = _enum(_first(pp, "round_mode", "CEIL"), ("CEIL", "FLOOR"))
            return {"method": method, "global": glob, "kernel": kernel, "stride": _pair(pp, "stride", "stride_h", "stride_w", 1),
                    "pad": _pair(pp, "pad", "pad_h", "pad_w", 0), "ceil": rnd == "CEIL"}
        if t == "LRN":
            lp = p.get("lrn_param", {})
            region = _enum(_first(lp, "norm_region", "ACROSS_CHANNELS"), ("ACROSS_CHANNELS", "WITHIN_CHANNEL"))
            size = int(_first(lp, "local_size", 5))
            if region != "ACROSS_CHANNELS":
                raise self._bad(lay, f"LRN norm_region {region} is not supported (ACROSS_CHANNELS)")
            if size <= 0 or size % 2 == 0:
                raise self._bad(lay, f"LRN local_size {size}: Caffe requires an odd size")
            return {"size": size, "alpha": float(_first(lp, "alpha", 1.0)), "beta": float(_first(lp, "beta", 0.75)),
                    "k": float(_first(lp, "k", 1.0))}
        if t == "ReLU":
            return {"slope": float(_first(p.get("relu_param"), "negative_slope", 0.0))}
        if t == "Softmax":
            return {"axis": int(_first(p.get("softmax_param"), "axis", 1))}
        return {}  # Dropout

    def _run(self, lay: CaffeLayer, op: dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        t = lay.type
        if t == "Convolution":
            b = getattr(self, op["b"]) if "b" in op else None
            return F.conv2d(x, getattr(self, op["w"]), b, op["stride"], op["pad"], op["dilation"], op["groups"])
        if t == "InnerProduct":
            x = x.flatten(op["axis"])
            b = getattr(self, op["b"]) if "b" in op else None
            return F.linear(x, getattr(self, op["w"]), b)
        if t == "ReLU":
            return F.relu(x) if op["slope"] == 0 else F.leaky_relu(x, op["slope"])
        if t == "Pooling":
            h, w = x.shape[-2:]
            if op["global"]:
                kernel, stride, pad = (h, w), (1, 1), (0, 0)
            else:
                kernel, stride, pad = op["kernel"], op["stride"], op["pad"]
            want = tuple(caffe_pool_size(s, k, st, pd, op["ceil"]) for s, k, st, pd in zip((h, w), kernel, stride, pad))
            if op["method"] == "MAX":
                y = F.max_pool2d(x, kernel, stride, pad, ceil_mode=op["ceil"])
            else:
                y = F.avg_pool2d(x, kernel, stride, pad, ceil_mode=op["ceil"], count_include_pad=True)
            if tuple(y.shape[-2:]) != want:
                raise self._bad(lay, f"pooling {tuple(x.shape[-2:])} with kernel {kernel}, stride {stride}, pad {pad}: "
                                     f"Caffe gives {want}, the PyTorch op {tuple(y.shape[-2:])}; not supported")
            return y
        if t == "LRN":
            return F.local_response_norm(x, op["size"], op["alpha"], op["beta"], op["k"])
        if t == "Softmax":
            return torch.softmax(x, op["axis"])
        return x  # Dropout: identity at inference (Caffe scales at training time)

    def forward(self, x: torch.Tensor, outputs: Sequence[str] | None = None) -> torch.Tensor | dict[str, torch.Tensor]:
        blobs = {next(iter(self.inputs)): x}
        for lay, op in self._ops:
            try:
                src = blobs[lay.bottoms[0]]
            except KeyError:
                raise self._bad(lay, f"its bottom {lay.bottoms[0]!r} is no input and no earlier layer's top") from None
            try:
                blobs[lay.tops[0]] = self._run(lay, op, src)
            except RuntimeError as e:  # shape mismatches between the blobs and the data
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise self._bad(lay, f"input {tuple(src.shape)}: {first}") from None
        if outputs is None:
            return blobs[self.output_name]
        return {k: blobs[k] for k in outputs}


def load_caffe(prototxt: str | os.PathLike, caffemodel: str | os.PathLike, check: bool = True) -> CaffeNet:
    """Build a :class:`CaffeNet` from a deploy ``.prototxt`` and a ``.caffemodel``.

    Args:
        prototxt: the net definition (text format); its layers are the ones run.
        caffemodel: the trained weights (binary); blobs are matched to layers by name.
        check: run one zero input of the declared input shape (batch 1) through the net, so
            that blob shapes that do not fit fail here, naming the layer.
    Raises:
        WeightsError: a missing or unreadable file, a truncated caffemodel, an unsupported layer
            type, a layer without its blobs, blob shapes that do not fit (each names the file).
    """
    ptxt, cm = Path(prototxt), Path(caffemodel)
    for path, what in ((ptxt, "Caffe net definition (.prototxt)"), (cm, "Caffe weights (.caffemodel)")):
        if not path.is_file():
            raise WeightsError(f"{path}: not found (expected the {what})")
    try:
        text = ptxt.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise WeightsError(f"{ptxt}: not a readable text prototxt ({e})") from None
    inputs, layers = net_definition(parse_prototxt(text, str(ptxt)), str(ptxt))
    blobs = read_caffemodel_blobs(cm.read_bytes(), str(cm))
    for lay in layers:
        if lay.type in _WITH_BLOBS and lay.name not in blobs:
            raise WeightsError(f"{cm}: has no weights for layer {lay.name!r} ({lay.type}) of {ptxt.name}; "
                               f"it has {sorted(blobs)}")
    net = CaffeNet(inputs, layers, blobs, f"{ptxt.name} + {cm.name}")
    net.eval()
    net.requires_grad_(False)
    if check:
        shape = list(next(iter(inputs.values())))
        if len(shape) == 4 and all(d > 0 for d in shape):
            with torch.no_grad():
                net(torch.zeros([1] + shape[1:]))
    return net
