"""The TensorFlow.js graph-model reader: each op against a NumPy reference on random inputs,
weights decoding (float16, uint8 quantisation), refusals; and the real FaceRes and MobileFace
graphs against outputs of TensorFlow.js itself (tests/data/tfjs_reference.npz)."""
from __future__ import annotations

import base64
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from xaiface.errors import WeightsError
from xaiface.models.tfjs_reader import SUPPORTED_OPS, TfjsGraphModule, decode_weights, read_tfjs, tfjs_to_torch

RNG = np.random.default_rng(7)
DATA = Path(__file__).resolve().parents[1] / "data"
# float32 sums of a few hundred products: a few ulps of the largest partial sums
TOL = dict(rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# building small graph models


class G:
    """A tiny TF.js graph-model builder: nodes, constants in a manifest, bytes."""

    def __init__(self, shape=(-1, 9, 9, 3)):
        self.nodes = [{"name": "x", "op": "Placeholder", "attr": {"shape": {"shape": {"dim": [{"size": str(s)} for s in shape]}}}}]
        self.weights: list[dict] = []
        self.blobs: list[bytes] = []
        self.values: dict[str, np.ndarray] = {}
        self.k = 0

    def const(self, value, dtype="float32", quant=None):
        name = f"c{self.k}"
        self.k += 1
        value = np.asarray(value)
        self.values[name] = value
        entry = {"name": name, "shape": list(value.shape), "dtype": dtype}
        if quant == "float16":
            entry["quantization"] = {"dtype": "float16"}
            self.blobs.append(value.astype("<f2").tobytes())
        elif quant == "uint8":
            lo, hi = float(value.min()), float(value.max())
            scale = (hi - lo) / 255 or 1.0
            q = np.round((value - lo) / scale).astype(np.uint8)
            entry["quantization"] = {"dtype": "uint8", "scale": scale, "min": lo}
            self.values[name] = (q.astype(np.float32) * np.float32(scale) + np.float32(lo))
            self.blobs.append(q.tobytes())
        else:
            self.blobs.append(value.astype("<f4" if dtype == "float32" else "<i4").tobytes())
        self.weights.append(entry)
        self.nodes.append({"name": name, "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT" if dtype == "float32" else "DT_INT32"}}})
        return name

    def op(self, op, inputs, **attrs):
        name = f"n{self.k}"
        self.k += 1
        enc = {}
        for key, v in attrs.items():
            if isinstance(v, bool):
                enc[key] = {"b": v}
            elif isinstance(v, str):
                enc[key] = {"s": base64.b64encode(v.encode()).decode()}
            elif isinstance(v, float):
                enc[key] = {"f": v}
            elif isinstance(v, int):
                enc[key] = {"i": str(v)}
            elif isinstance(v, list) and v and isinstance(v[0], str):
                enc[key] = {"list": {"s": [base64.b64encode(s.encode()).decode() for s in v]}}
            elif isinstance(v, list):
                enc[key] = {"list": {"i": [str(i) for i in v]}}
        self.nodes.append({"name": name, "op": op, "input": list(inputs), "attr": enc})
        return name

    def model(self):
        return {"format": "graph-model", "modelTopology": {"node": self.nodes},
                "weightsManifest": [{"paths": ["w.bin"], "weights": self.weights}]}

    def module(self, out, nchw_input=True, fuse=True):
        m = self.model()
        return TfjsGraphModule(m, decode_weights(m["weightsManifest"], b"".join(self.blobs), "test"), [out],
                               nchw_input=nchw_input, fuse=fuse)

    def run(self, out, x_nhwc, nchw_input=True, fuse=True):
        """The module's output for an NHWC input (fed as NCHW unless ``nchw_input`` is False), in TF layout."""
        net = self.module(out, nchw_input, fuse)
        x = torch.from_numpy(x_nhwc)
        y = net(x.permute(0, 3, 1, 2) if nchw_input else x)
        if net.output_is_nchw(out):
            y = y.permute(0, 2, 3, 1)
        return y.detach().numpy()


# ---------------------------------------------------------------------------------------------
# NumPy references (NHWC)


def same_pads(size, k, s, d=1):
    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def np_conv(x, w, stride, padding, depthwise=False, explicit=None):
    """TF Conv2D / DepthwiseConv2dNative on NHWC ``x`` with HWIO / [H, W, C, M] ``w``."""
    n, h, wd, c = x.shape
    kh, kw = w.shape[:2]
    if padding == "SAME":
        (t, b), (l, r) = same_pads(h, kh, stride), same_pads(wd, kw, stride)
    elif padding == "EXPLICIT":
        t, b, l, r = explicit
    else:
        t = b = l = r = 0
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    oh = (xp.shape[1] - kh) // stride + 1
    ow = (xp.shape[2] - kw) // stride + 1
    if depthwise:
        m = w.shape[3]
        out = np.zeros((n, oh, ow, c * m), np.float64)
    else:
        out = np.zeros((n, oh, ow, w.shape[3]), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :].astype(np.float64)
            if depthwise:
                out[:, i, j, :] = np.einsum("nhwc,hwcm->ncm", patch, w).reshape(n, -1)
            else:
                out[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, w)
    return out.astype(np.float32)


def np_pool(x, k, s, kind):
    n, h, w, c = x.shape
    (t, b), (l, r) = same_pads(h, k, s), same_pads(w, k, s)
    fill = -np.inf if kind == "max" else np.nan
    xp = np.pad(x.astype(np.float64), ((0, 0), (t, b), (l, r), (0, 0)), constant_values=fill)
    oh, ow = math.ceil(h / s), math.ceil(w / s)
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            p = xp[:, i * s:i * s + k, j * s:j * s + k, :]
            out[:, i, j] = p.max(axis=(1, 2)) if kind == "max" else np.nanmean(p, axis=(1, 2))
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# ops


@pytest.mark.parametrize("size", [8, 9])
@pytest.mark.parametrize("padding,stride", [("SAME", 2), ("SAME", 1), ("VALID", 2), ("EXPLICIT", 2)])
def test_conv2d(size, padding, stride):
    x = RNG.uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    w = RNG.normal(0, 1, (3, 3, 3, 5)).astype(np.float32)
    g = G(x.shape)
    extra = {"explicit_paddings": [0, 0, 1, 2, 0, 1, 0, 0]} if padding == "EXPLICIT" else {}
    out = g.op("Conv2D", ["x", g.const(w)], strides=[1, stride, stride, 1], padding=padding, data_format="NHWC", **extra)
    ref = np_conv(x, w, stride, padding, explicit=(1, 2, 0, 1))
    np.testing.assert_allclose(g.run(out, x), ref, **TOL)
    np.testing.assert_allclose(g.run(out, x, nchw_input=False), ref, **TOL)


def test_same_padding_stride2_even_pads_zero_before_one_after():
    # on an even size with stride 2 and a 3x3 kernel TF pads 0 rows before and 1 after
    assert same_pads(8, 3, 2) == (0, 1)
    x = np.zeros((1, 8, 8, 1), np.float32)
    x[0, 0, 0, 0] = 1.0  # the top-left pixel is seen by output (0, 0) at kernel tap (0, 0) only with 0 before
    w = np.zeros((3, 3, 1, 1), np.float32)
    w[0, 0, 0, 0] = 1.0
    g = G(x.shape)
    out = g.op("Conv2D", ["x", g.const(w)], strides=[1, 2, 2, 1], padding="SAME", data_format="NHWC")
    assert g.run(out, x)[0, 0, 0, 0] == 1.0


@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise(multiplier, stride):
    x = RNG.uniform(-1, 1, (2, 10, 10, 4)).astype(np.float32)
    w = RNG.normal(0, 1, (3, 3, 4, multiplier)).astype(np.float32)
    g = G(x.shape)
    out = g.op("DepthwiseConv2dNative", ["x", g.const(w)], strides=[1, stride, stride, 1], padding="SAME", data_format="NHWC")
    np.testing.assert_allclose(g.run(out, x), np_conv(x, w, stride, "SAME", depthwise=True), **TOL)


@pytest.mark.parametrize("act", ["Relu", "Relu6", "Elu", "LeakyRelu", "Prelu", "Sigmoid"])
def test_fused_conv_activations(act):
    x = RNG.uniform(-3, 3, (1, 8, 8, 2)).astype(np.float32) * 3
    w = RNG.normal(0, 1, (3, 3, 2, 4)).astype(np.float32)
    b = RNG.normal(0, 1, (4,)).astype(np.float32)
    alpha = RNG.uniform(0.1, 0.5, (4,)).astype(np.float32)
    g = G(x.shape)
    ins = ["x", g.const(w), g.const(b)] + ([g.const(alpha)] if act == "Prelu" else [])
    kw = {"leakyrelu_alpha": 0.3} if act == "LeakyRelu" else {}
    out = g.op("_FusedConv2D", ins, strides=[1, 2, 2, 1], padding="SAME", data_format="NHWC",
               fused_ops=["BiasAdd", act], num_args=len(ins) - 2, **kw)
    y = np_conv(x, w, 2, "SAME").astype(np.float64) + b
    ref = {"Relu": np.maximum(y, 0), "Relu6": np.clip(y, 0, 6), "Elu": np.where(y > 0, y, np.expm1(y)),
           "LeakyRelu": np.where(y > 0, y, 0.3 * y), "Prelu": np.where(y >= 0, y, alpha * y),
           "Sigmoid": 1 / (1 + np.exp(-y))}[act]
    np.testing.assert_allclose(g.run(out, x), ref, **TOL)


def test_fused_depthwise_and_matmul():
    x = RNG.uniform(-1, 1, (2, 6, 6, 3)).astype(np.float32)
    w = RNG.normal(0, 1, (3, 3, 3, 1)).astype(np.float32)
    b = RNG.normal(0, 1, (3,)).astype(np.float32)
    g = G(x.shape)
    d = g.op("FusedDepthwiseConv2dNative", ["x", g.const(w), g.const(b)], strides=[1, 1, 1, 1], padding="VALID",
             data_format="NHWC", fused_ops=["BiasAdd", "Relu"], num_args=1)
    flat = g.op("Reshape", [d, g.const(np.array([-1, 4 * 4 * 3]), dtype="int32")])
    k = RNG.normal(0, 1, (48, 5)).astype(np.float32)
    c = RNG.normal(0, 1, (5,)).astype(np.float32)
    out = g.op("_FusedMatMul", [flat, g.const(k), g.const(c)], transpose_a=False, transpose_b=False,
               fused_ops=["BiasAdd", "Relu"], num_args=1)
    y = np.maximum(np_conv(x, w, 1, "VALID", depthwise=True) + b, 0)
    ref = np.maximum(y.reshape(2, -1) @ k + c, 0)  # flattening in NHWC order, as TF does
    np.testing.assert_allclose(g.run(out, x), ref, **TOL)


def test_elementwise_constants_broadcast_per_channel_and_scalar():
    x = RNG.uniform(-1, 1, (2, 5, 5, 3)).astype(np.float32)
    w = RNG.normal(0, 1, (1, 1, 3, 3)).astype(np.float32)
    g = G(x.shape)
    conv = g.op("Conv2D", ["x", g.const(w)], strides=[1, 1, 1, 1], padding="VALID", data_format="NHWC")
    scale = RNG.normal(0, 1, (3,)).astype(np.float32)
    shift = RNG.normal(0, 1, (1, 1, 1, 3)).astype(np.float32)
    m = g.op("Mul", [conv, g.const(scale)])
    a = g.op("AddV2", [g.const(shift), m])  # constant first: still broadcast to NCHW
    mx = g.op("Maximum", [g.const(np.float32(0.1)), a])
    sub = g.op("Sub", [mx, conv])  # two NCHW activations: never permuted again
    y = np_conv(x, w, 1, "VALID")
    ref = np.maximum(0.1, shift + y * scale) - y
    np.testing.assert_allclose(g.run(sub, x), ref, **TOL)


@pytest.mark.parametrize("depthwise", [False, True])
def test_unfolded_batch_norm_is_folded_into_the_convolution(depthwise):
    x = RNG.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    w = RNG.normal(0, 1, (3, 3, 3, 1 if depthwise else 4)).astype(np.float32)
    cout = 3 if depthwise else 4
    scale, shift = RNG.uniform(0.5, 2, (cout,)).astype(np.float32), RNG.normal(0, 1, (cout,)).astype(np.float32)
    g = G(x.shape)
    conv = g.op("DepthwiseConv2dNative" if depthwise else "Conv2D", ["x", g.const(w)], strides=[1, 2, 2, 1],
                padding="SAME", data_format="NHWC")
    relu = g.op("Relu", [g.op("Add", [g.op("Mul", [conv, g.const(scale)]), g.const(shift)])])
    out = g.op("Maximum", [g.op("Minimum", [relu, g.const(np.float32(6))]), g.const(np.float32(0))])
    ref = np.clip(np_conv(x, w, 2, "SAME", depthwise=depthwise) * scale + shift, 0, 6)
    net = g.module(out)
    assert net.fused == {"conv+scale/bias": 1, "relu6": 1} and len(net._steps) == 2
    np.testing.assert_allclose(g.run(out, x), ref, **TOL)
    np.testing.assert_allclose(g.run(out, x, fuse=False), ref, **TOL)


def test_prelu_written_as_max_min():
    # MobileFace's PReLU: max(0, x) + gamma * min(0, x)
    x = RNG.uniform(-2, 2, (1, 4, 4, 2)).astype(np.float32)
    w = RNG.normal(0, 1, (1, 1, 2, 2)).astype(np.float32)
    gamma = np.array([0.25, 0.5], np.float32)
    g = G(x.shape)
    conv = g.op("Conv2D", ["x", g.const(w)], strides=[1, 1, 1, 1], padding="VALID", data_format="NHWC")
    mx = g.op("Maximum", [g.const(np.float32(0)), conv])
    mn = g.op("Minimum", [g.const(np.float32(0)), conv])
    out = g.op("AddV2", [mx, g.op("Mul", [g.const(gamma), mn])])
    y = np_conv(x, w, 1, "VALID")
    assert g.module(out).fused == {"prelu": 1}
    for fuse in (True, False):
        np.testing.assert_allclose(g.run(out, x, fuse=fuse), np.where(y >= 0, y, gamma * y), **TOL)


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("axes", [[1, 2], [3], [1, 3], [2]])
def test_reductions_follow_nhwc_axes(axes, keep):
    x = RNG.uniform(-1, 1, (2, 4, 5, 3)).astype(np.float32)
    w = RNG.normal(0, 1, (1, 1, 3, 6)).astype(np.float32)
    g = G(x.shape)
    conv = g.op("Conv2D", ["x", g.const(w)], strides=[1, 1, 1, 1], padding="VALID", data_format="NHWC")
    out = g.op("Mean", [conv, g.const(np.array(axes), dtype="int32")], keep_dims=keep)
    ref = np_conv(x, w, 1, "VALID").mean(axis=tuple(axes), keepdims=keep)
    got = g.run(out, x)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, **TOL)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pools_same_stride2(kind):
    x = RNG.uniform(-1, 1, (2, 8, 7, 3)).astype(np.float32)
    g = G(x.shape)
    out = g.op("MaxPool" if kind == "max" else "AvgPool", ["x"], ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1],
               padding="SAME", data_format="NHWC")
    np.testing.assert_allclose(g.run(out, x), np_pool(x, 3, 2, kind), **TOL)


def test_pad_concat_softmax_squeeze():
    x = RNG.uniform(-1, 1, (1, 5, 5, 2)).astype(np.float32)
    g = G(x.shape)
    p = g.op("Pad", ["x", g.const(np.array([[0, 0], [1, 2], [0, 1], [0, 0]]), dtype="int32")])
    w = RNG.normal(0, 1, (2, 2, 2, 3)).astype(np.float32)
    conv = g.op("Conv2D", [p, g.const(w)], strides=[1, 1, 1, 1], padding="VALID", data_format="NHWC")
    cat = g.op("ConcatV2", [conv, conv, g.const(np.array(3), dtype="int32")], N=2)
    sm = g.op("Softmax", [cat])
    xp = np.pad(x, ((0, 0), (1, 2), (0, 1), (0, 0)))
    y = np_conv(xp, w, 1, "VALID")
    y = np.concatenate([y, y], axis=3)
    e = np.exp(y - y.max(axis=3, keepdims=True))
    np.testing.assert_allclose(g.run(sm, x), e / e.sum(axis=3, keepdims=True), **TOL)


@pytest.mark.parametrize("quant", ["float16", "uint8"])
def test_quantised_weights_are_dequantised(quant):
    x = RNG.uniform(-1, 1, (1, 6, 6, 2)).astype(np.float32)
    w = RNG.normal(0, 1, (3, 3, 2, 2)).astype(np.float32)
    g = G(x.shape)
    c = g.const(w, quant=quant)
    out = g.op("Conv2D", ["x", c], strides=[1, 1, 1, 1], padding="SAME", data_format="NHWC")
    wq = w.astype(np.float16).astype(np.float32) if quant == "float16" else g.values[c]
    if quant == "uint8":
        assert np.abs(wq - w).max() <= (w.max() - w.min()) / 255 / 2 + 1e-6
    np.testing.assert_allclose(g.run(out, x), np_conv(x, wq, 1, "SAME"), **TOL)


def test_gradients_reach_the_input():
    x = torch.from_numpy(RNG.uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32)).requires_grad_()
    g = G((-1, 8, 8, 3))
    conv = g.op("Conv2D", ["x", g.const(RNG.normal(0, 1, (3, 3, 3, 4)).astype(np.float32))],
                strides=[1, 2, 2, 1], padding="SAME", data_format="NHWC")
    out = g.op("Mean", [g.op("Relu", [conv]), g.const(np.array([1, 2]), dtype="int32")], keep_dims=False)
    g.module(out)(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# refusals


def test_unsupported_ops_refused_by_name():
    g = G()
    out = g.op("NonMaxSuppressionV5", [g.op("TopKV2", ["x"])])
    with pytest.raises(WeightsError, match="unsupported TensorFlow ops NonMaxSuppressionV5, TopKV2"):
        g.module(out)
    assert "Conv2D" in SUPPORTED_OPS and "DepthwiseConv2dNative" in SUPPORTED_OPS


def test_truncated_or_mismatched_weights(tmp_path):
    g = G()
    out = g.op("Conv2D", ["x", g.const(np.ones((3, 3, 3, 2), np.float32))], strides=[1, 1, 1, 1], padding="SAME",
               data_format="NHWC")
    (tmp_path / "model.json").write_text(json.dumps(g.model()))
    data = b"".join(g.blobs)
    (tmp_path / "w.bin").write_bytes(data[:-8])
    with pytest.raises(WeightsError, match=r"w.bin|truncated"):
        tfjs_to_torch(tmp_path / "model.json", [out])
    (tmp_path / "w.bin").write_bytes(data + b"\0" * 4)
    with pytest.raises(WeightsError, match="manifest describes"):
        tfjs_to_torch(tmp_path / "model.json", [out])
    (tmp_path / "w.bin").unlink()
    with pytest.raises(WeightsError, match="w.bin: weights shard of model.json not found"):
        read_tfjs(tmp_path / "model.json")
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(WeightsError, match="not a TensorFlow.js model.json"):
        read_tfjs(tmp_path / "model.json")
    (tmp_path / "model.json").write_text(json.dumps({"format": "layers-model", "modelTopology": {"node": []}}))
    with pytest.raises(WeightsError, match="only TensorFlow.js graph models"):
        read_tfjs(tmp_path / "model.json")


# ---------------------------------------------------------------------------------------------
# the real graphs against TensorFlow.js itself


def _reference_inputs(size):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "tfjs_reference"))
    try:
        from make_inputs import build_inputs
    finally:
        sys.path.pop(0)
    return build_inputs(size)


@pytest.mark.parametrize("name,size", [("faceres", 224), ("mobileface", 112)])
def test_real_graph_equals_tensorflow_js(name, size, tfjs_weights):
    """TF.js 4.22.0 (cpu backend) outputs, stored once: the torch module agrees to float32 rounding."""
    from xaiface.models.tfjs_model import packaged_files

    ref = np.load(DATA / "tfjs_reference.npz")
    meta = json.loads((DATA / "tfjs_reference.json").read_text())
    json_path, bin_path = packaged_files(name)
    from xaiface.io.hashing import file_sha256

    assert file_sha256(bin_path) == meta["model_files"]["sha256"][f"{name}.bin"]
    keys = [k.split("/", 1)[1] for k in ref.files if k.startswith(name + "/")]
    from xaiface.models.tfjs_reader import read_tfjs

    model, weights = read_tfjs(json_path)
    for fuse in (True, False):
        net = TfjsGraphModule(model, weights, keys, nchw_input=False, fuse=fuse)
        assert bool(net.fused) == fuse
        with torch.no_grad():
            out = net(torch.from_numpy(_reference_inputs(size)))
        out = out if isinstance(out, tuple) else (out,)
        for k, o in zip(keys, out):
            r = ref[f"{name}/{k}"]
            # ~30 layers of float32 sums in another order than TF.js's: relative 1e-5 of the output's scale
            np.testing.assert_allclose(o.numpy().reshape(r.shape), r, rtol=0, atol=1e-5 * float(np.abs(r).max()))
