"""The Caffe reader's mechanics on tiny hand-made nets, against NumPy references of Caffe's layers.

The ``.caffemodel`` bytes are written by a small protobuf encoder here (field numbers from BVLC
Caffe's ``caffe.proto``), in both the current format (``NetParameter.layer`` = 100, packed
floats, ``BlobShape``) and the V1 format (``layers`` = 2, enum types, legacy
``num/channels/height/width``, unpacked floats), so that both decoding paths are exercised.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from xaiface.errors import WeightsError
from xaiface.models.caffe_reader import decode_fields, load_caffe, parse_prototxt, read_caffemodel_blobs

# ------------------------------------------------------------------------------ protobuf encoder


def varint(v: int) -> bytes:
    out = bytearray()
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def key(num: int, wt: int) -> bytes:
    return varint(num << 3 | wt)


def ld(num: int, payload: bytes) -> bytes:
    return key(num, 2) + varint(len(payload)) + payload


def vi(num: int, v: int) -> bytes:
    return key(num, 0) + varint(v)


def blob_new(a: np.ndarray) -> bytes:
    """BlobProto with ``shape`` (7: BlobShape, dim = 1 packed) and packed ``data`` (5)."""
    shape = ld(1, b"".join(varint(d) for d in a.shape))
    return ld(7, shape) + ld(5, np.asarray(a, "<f4").tobytes())


def blob_v1(a: np.ndarray, legacy: tuple[int, int, int, int]) -> bytes:
    """BlobProto with legacy num/channels/height/width (1-4) and unpacked float ``data`` (5)."""
    head = b"".join(vi(i + 1, d) for i, d in enumerate(legacy))
    return head + b"".join(key(5, 5) + struct.pack("<f", float(v)) for v in np.ravel(a))


def layer_new(name: str, type_: str, blobs: list[bytes]) -> bytes:
    return ld(100, ld(1, name.encode()) + ld(2, type_.encode()) + b"".join(ld(7, b) for b in blobs))


def layer_v1(name: str, enum: int, blobs: list[bytes]) -> bytes:
    return ld(2, ld(4, name.encode()) + vi(5, enum) + b"".join(ld(6, b) for b in blobs))


# ------------------------------------------------------------------------------ the tiny net

PROTOTXT_NEW = """
name: "tiny"  # a comment
input: "data"
input_shape { dim: 2 dim: 4 dim: 11 dim: 11 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 group: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" relu_param { negative_slope: 0.1 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1"
        lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: 2.0 } }
layer { name: "pool2" type: "Pooling" bottom: "norm1" top: "pool2"
        pooling_param: { pool: AVE kernel_size: 2 stride: 2 pad: 1 } }
layer { name: "drop" type: "Dropout" bottom: "pool2" top: "pool2" dropout_param { dropout_ratio: 0.5 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool2" top: "fc" inner_product_param { num_output: 3 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""

PROTOTXT_V1 = """
name: 'tiny'
input: "data"
input_dim: 2
input_dim: 4
input_dim: 11
input_dim: 11
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
         convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 group: 2 } }
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" relu_param { negative_slope: 0.1 } }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layers { name: "norm1" type: LRN bottom: "pool1" top: "norm1" lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: 2 } }
layers { name: "pool2" type: POOLING bottom: "norm1" top: "pool2" pooling_param { pool: AVE kernel_size: 2 stride: 2 pad: 1 } }
layers { name: "train_only" type: SIGMOID bottom: "pool2" top: "pool2" include { phase: TRAIN } }
layers { name: "drop" type: DROPOUT bottom: "pool2" top: "pool2" }
layers { name: "fc" type: INNER_PRODUCT bottom: "pool2" top: "fc" inner_product_param { num_output: 3 } }
layers { name: "prob" type: SOFTMAX bottom: "fc" top: "prob" }
"""


@pytest.fixture(scope="module")
def weights():
    rng = np.random.default_rng(7)
    return {"w1": rng.normal(size=(4, 2, 3, 3)).astype(np.float32), "b1": rng.normal(size=4).astype(np.float32),
            "wf": rng.normal(size=(3, 16)).astype(np.float32), "bf": rng.normal(size=3).astype(np.float32)}


def caffemodel_new(w) -> bytes:
    # a Data layer without blobs first, as real caffemodels have
    return (ld(1, b"tiny") + layer_new("data", "Data", []) + layer_new("conv1", "Convolution", [blob_new(w["w1"]), blob_new(w["b1"])])
            + layer_new("fc", "InnerProduct", [blob_new(w["wf"]), blob_new(w["bf"])]))


def caffemodel_v1(w) -> bytes:
    return (ld(1, b"tiny") + layer_v1("data", 5, [])
            + layer_v1("conv1", 4, [blob_v1(w["w1"], w["w1"].shape), blob_v1(w["b1"], (1, 1, 1, 4))])
            + layer_v1("fc", 14, [blob_v1(w["wf"], (1, 1, 3, 16)), blob_v1(w["bf"], (1, 1, 1, 3))]))


def write_net(tmp_path, prototxt: str, model: bytes, stem: str = "net"):
    p, m = tmp_path / f"{stem}.prototxt", tmp_path / f"{stem}.caffemodel"
    p.write_text(prototxt)
    m.write_bytes(model)
    return p, m


# ------------------------------------------------------------------------------ NumPy references of Caffe's layers


def ref_conv(x, w, b, stride, pad, group):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, o, oh, ow), np.float64)
    og = o // group
    for g in range(group):
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, g * cg:(g + 1) * cg, i * stride:i * stride + kh, j * stride:j * stride + kw]
                out[:, g * og:(g + 1) * og, i, j] = np.einsum("nchw,ochw->no", patch, w[g * og:(g + 1) * og])
    return out + b[None, :, None, None]


def caffe_out_size(size, k, s, p):
    out = int(np.ceil((size + 2 * p - k) / s)) + 1
    if p and (out - 1) * s >= size + p:
        out -= 1
    return out


def ref_pool(x, k, s, p, method):
    """Caffe's PoolingLayer::Forward_cpu, loop for loop."""
    n, c, h, w = x.shape
    oh, ow = caffe_out_size(h, k, s, p), caffe_out_size(w, k, s, p)
    out = np.zeros((n, c, oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * s - p, j * s - p
            if method == "MAX":
                he, we = min(hs + k, h), min(ws + k, w)
                hs, ws = max(hs, 0), max(ws, 0)
                out[:, :, i, j] = x[:, :, hs:he, ws:we].max(axis=(2, 3))
            else:
                he, we = min(hs + k, h + p), min(ws + k, w + p)
                size = (he - hs) * (we - ws)
                hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
                out[:, :, i, j] = x[:, :, hs:he, ws:we].sum(axis=(2, 3)) / size
    return out


def ref_lrn(x, size, alpha, beta, k):
    """Caffe's LRNLayer CrossChannelForward: scale = k + alpha / size * sum of squares over the window."""
    c = x.shape[1]
    pre = (size - 1) // 2
    out = np.empty_like(x, dtype=np.float64)
    for ch in range(c):
        lo, hi = max(0, ch - pre), min(c, ch - pre + size)
        scale = k + alpha / size * (x[:, lo:hi] ** 2).sum(axis=1)
        out[:, ch] = x[:, ch] * scale ** -beta
    return out


def ref_net(x, w):
    y = ref_conv(x.astype(np.float64), w["w1"].astype(np.float64), w["b1"], 2, 1, 2)
    y = np.where(y > 0, y, 0.1 * y)
    y = ref_pool(y, 3, 2, 0, "MAX")
    assert y.shape[-2:] == (3, 3)  # ceil mode: floor would give 2x2
    y = ref_lrn(y, 3, 0.5, 0.75, 2.0)
    y = ref_pool(y, 2, 2, 1, "AVE")
    assert y.shape[-2:] == (2, 2)  # the last window would start in the padding: dropped, as Caffe does
    y = y.reshape(len(y), -1) @ w["wf"].T.astype(np.float64) + w["bf"]
    e = np.exp(y - y.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), y


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("fmt", ["new", "v1"])
def test_tiny_net_equals_the_numpy_reference(tmp_path, weights, fmt):
    proto, model = (PROTOTXT_NEW, caffemodel_new(weights)) if fmt == "new" else (PROTOTXT_V1, caffemodel_v1(weights))
    net = load_caffe(*write_net(tmp_path, proto, model))
    assert [lay.type for lay in net.layers] == ["Convolution", "ReLU", "Pooling", "LRN", "Pooling", "Dropout",
                                                "InnerProduct", "Softmax"]  # the TRAIN-only layer is left out
    x = np.random.default_rng(1).normal(size=(2, 4, 11, 11)).astype(np.float32)
    out = net(torch.from_numpy(x), outputs=["conv1", "pool1", "norm1", "pool2", "fc", "prob"])
    prob, logits = ref_net(x, weights)
    np.testing.assert_allclose(out["fc"].numpy(), logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["prob"].numpy(), prob, rtol=1e-5, atol=1e-6)
    assert torch.equal(net(torch.from_numpy(x)), out["prob"])


def test_layers_one_by_one(tmp_path, weights):
    """Each op against its reference on its own input (so an error cannot hide behind a later layer)."""
    net = load_caffe(*write_net(tmp_path, PROTOTXT_NEW, caffemodel_new(weights)))
    x = np.random.default_rng(2).normal(size=(2, 4, 11, 11)).astype(np.float32)
    o = {k: v.numpy().astype(np.float64) for k, v in net(torch.from_numpy(x), outputs=["conv1", "pool1", "norm1", "pool2"]).items()}
    conv = ref_conv(x.astype(np.float64), weights["w1"].astype(np.float64), weights["b1"], 2, 1, 2)
    np.testing.assert_allclose(o["conv1"], np.where(conv > 0, conv, 0.1 * conv), rtol=1e-5, atol=1e-5)  # in-place ReLU
    np.testing.assert_allclose(o["pool1"], ref_pool(o["conv1"], 3, 2, 0, "MAX"), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(o["norm1"], ref_lrn(o["pool1"], 3, 0.5, 0.75, 2.0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(o["pool2"], ref_pool(o["norm1"], 2, 2, 1, "AVE"), rtol=1e-5, atol=1e-6)


def test_lrn_of_five_channels_matches_caffes_alpha_over_n_convention(tmp_path):
    """torch's local_response_norm divides alpha by n like Caffe (the AlexNet nets' local_size 5)."""
    x = np.random.default_rng(3).normal(size=(1, 7, 3, 3)) * 3
    y = torch.nn.functional.local_response_norm(torch.from_numpy(x), 5, alpha=1e-1, beta=0.75, k=1.0).numpy()
    np.testing.assert_allclose(y, ref_lrn(x, 5, 1e-1, 0.75, 1.0), rtol=1e-12)


def test_unsupported_layer_type_is_refused_by_name(tmp_path, weights):
    proto = PROTOTXT_NEW.replace('layer { name: "prob" type: "Softmax"', 'layer { name: "odd" type: "Eltwise"')
    with pytest.raises(WeightsError, match=r"layer 'odd' \(Eltwise\): layer type 'Eltwise' is not supported"):
        load_caffe(*write_net(tmp_path, proto, caffemodel_new(weights)))
    proto = PROTOTXT_NEW.replace("lrn_param { local_size: 3", "lrn_param { norm_region: WITHIN_CHANNEL local_size: 3")
    with pytest.raises(WeightsError, match="norm1.*WITHIN_CHANNEL is not supported"):
        load_caffe(*write_net(tmp_path, proto, caffemodel_new(weights)))
    proto = PROTOTXT_NEW.replace("pool: MAX", "pool: STOCHASTIC")
    with pytest.raises(WeightsError, match="pool1.*STOCHASTIC is not supported"):
        load_caffe(*write_net(tmp_path, proto, caffemodel_new(weights)))


@pytest.mark.parametrize("cut", [1, 100, 500, -3])
def test_truncated_caffemodel_names_the_file(tmp_path, weights, cut):
    data = caffemodel_new(weights)
    p, m = write_net(tmp_path, PROTOTXT_NEW, data[:cut] if cut > 0 else data[:cut])
    with pytest.raises(WeightsError, match=rf"{m}: .*(truncated|no Caffe layers|no weights)"):
        load_caffe(p, m)


def test_other_file_faults(tmp_path, weights):
    p, m = write_net(tmp_path, PROTOTXT_NEW, caffemodel_new(weights))
    with pytest.raises(WeightsError, match="missing.caffemodel: not found"):
        load_caffe(p, tmp_path / "missing.caffemodel")
    m.write_bytes(ld(1, b"tiny") + layer_new("conv1", "Convolution", [blob_new(weights["w1"]), blob_new(weights["b1"])]))
    with pytest.raises(WeightsError, match="has no weights for layer 'fc'"):
        load_caffe(p, m)
    m.write_bytes(ld(1, b"tiny") + layer_new("conv1", "Convolution", [blob_new(weights["w1"]), blob_new(weights["b1"])])
                  + layer_new("fc", "InnerProduct", [blob_new(weights["wf"][:, :8]), blob_new(weights["bf"])]))
    with pytest.raises(WeightsError, match="layer 'fc' \\(InnerProduct\\): input"):
        load_caffe(p, m)  # 8 input features where the net gives 16: caught by the check run
    p.write_text(PROTOTXT_NEW + "layer { name: \"x\" ")
    with pytest.raises(WeightsError, match="not closed"):
        load_caffe(p, m)
    m.write_bytes(b"\x0b\x00")  # wire type 3 (a group)
    with pytest.raises(WeightsError, match="wire type 3"):
        read_caffemodel_blobs(m.read_bytes(), str(m))


def test_blob_encodings(weights):
    """Packed / unpacked floats, doubles, and legacy shapes decode to the same arrays."""
    a = weights["w1"]
    dbl = ld(7, ld(1, b"".join(varint(d) for d in a.shape))) + ld(8, a.astype("<f8").tobytes())
    for blob in (blob_new(a), blob_v1(a, a.shape), dbl):
        got = read_caffemodel_blobs(layer_new("c", "Convolution", [blob]))["c"][0]
        assert got.dtype == np.float32 and got.shape == a.shape and np.array_equal(got, a)
    with pytest.raises(WeightsError, match="shape \\[2, 2\\] holds 3 values"):
        read_caffemodel_blobs(layer_new("c", "Convolution", [ld(7, ld(1, varint(2) + varint(2))) + ld(5, b"\0" * 12)]))


def test_text_format_parser():
    msg = parse_prototxt('a: 1 b: -2.5e-1 c: "q\\"s" d: ENUM e { f: true g: [1, 2] } e: { f: false } # end')
    assert msg == {"a": [1], "b": [-0.25], "c": ['q"s'], "d": ["ENUM"], "e": [{"f": [True], "g": [1, 2]}, {"f": [False]}]}
    with pytest.raises(WeightsError, match="unbalanced"):
        parse_prototxt("a: 1 }", "x.prototxt")
    assert decode_fields(vi(1, 300) + ld(2, b"ab")) == [(1, 0, 300), (2, 2, memoryview(b"ab"))]
