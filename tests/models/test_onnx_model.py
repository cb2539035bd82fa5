"""ONNX recognisers: a random iresnet18 exported to ONNX must give the same embeddings through
onnxruntime, the torch conversion and the original network, with gradients through the
conversion; each supported op is checked against onnxruntime on a one-node graph."""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from xaiface.errors import ConfigError, WeightsError
from xaiface.models.iresnet import IResNetModel
from xaiface.models.onnx_model import (
    SUPPORTED_OPS,
    OnnxFaceModel,
    OnnxGraphModule,
    OnnxRuntimeRecognizer,
    onnx_to_torch,
)
from xaiface.models.registry import get_model, model_spec

TOL = {"rtol": 1e-4, "atol": 1e-4}


@pytest.fixture(scope="module")
def original(perturb: Callable[[torch.nn.Module, int], torch.nn.Module]) -> IResNetModel:
    return perturb(get_model("iresnet18", weights="random", seed=5), 5).eval()


@pytest.fixture(scope="module")
def onnx_path(original: IResNetModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The original's backbone exported with the TorchScript exporter (no onnxscript needed)."""
    path = tmp_path_factory.mktemp("onnx") / "r18.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            original.backbone, (torch.zeros(1, 3, 112, 112),), str(path), dynamo=False, opset_version=17,
            input_names=["input.1"], output_names=["embedding"],
            dynamic_axes={"input.1": {0: "batch"}, "embedding": {0: "batch"}},
        )
    return path


@pytest.fixture(scope="module")
def converted(onnx_path: Path) -> OnnxFaceModel:
    return get_model("onnx", weights=onnx_path)


def _normalised(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - 127.5) / 127.5


def test_onnxruntime_converted_and_original_agree(original: IResNetModel, onnx_path: Path, pixels: torch.Tensor) -> None:
    x = _normalised(torch.cat([pixels, 255 - pixels]))  # batch 2 through the dynamic batch axis
    with torch.no_grad():
        expected = original.backbone(x)
        from_module = onnx_to_torch(onnx_path)(x)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    from_ort = torch.from_numpy(session.run(None, {"input.1": x.numpy()})[0])
    torch.testing.assert_close(from_ort, expected, **TOL)
    torch.testing.assert_close(from_module, expected, **TOL)
    torch.testing.assert_close(from_module, from_ort, **TOL)


def test_registered_model_spec_and_forward(converted: OnnxFaceModel, original: IResNetModel, onnx_path: Path,
                                           pixels: torch.Tensor) -> None:
    spec = converted.spec
    p = spec.preprocessing
    assert isinstance(converted, OnnxFaceModel) and not converted.training
    assert (spec.name, spec.architecture, spec.embedding_size) == ("onnx", "onnx:r18.onnx", 512)
    assert (p.input_size, p.geometry, p.color_order, p.mean, p.std) == (112, "arcface-112", "RGB", (127.5,) * 3, (127.5,) * 3)
    assert spec.weights_sha256 == hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert model_spec("onnx").weights_required
    with torch.no_grad():
        torch.testing.assert_close(converted(pixels), original(pixels), **TOL)
    crops = np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    np.testing.assert_allclose(converted.embed(crops), original.embed(crops), rtol=1e-4, atol=1e-5)


def test_gradients_reach_the_pixels(converted: OnnxFaceModel, original: IResNetModel, pixels: torch.Tensor) -> None:
    target = torch.nn.functional.normalize(torch.randn(1, 512, generator=torch.Generator().manual_seed(1)))

    def grad_of(model: torch.nn.Module) -> torch.Tensor:
        x = pixels.clone().requires_grad_(True)
        torch.nn.functional.cosine_similarity(model(x), target).sum().backward()
        return x.grad

    g, g_ref = grad_of(converted), grad_of(original)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert ((g - g_ref).norm() / g_ref.norm()).item() < 1e-3
    assert all(p.requires_grad for p in converted.graph_module.parameters())  # float initializers


def test_onnxruntime_backend(onnx_path: Path, original: IResNetModel, pixels: torch.Tensor) -> None:
    rec = get_model("onnx", weights=onnx_path, backend="onnxruntime")
    assert isinstance(rec, OnnxRuntimeRecognizer) and rec.spec.embedding_size == 512
    with torch.no_grad():
        expected = original(pixels).numpy()
    np.testing.assert_allclose(rec.run(pixels.numpy()), expected, **TOL)
    with pytest.raises(ConfigError, match="no gradients"):
        rec(pixels.clone().requires_grad_(True))


def test_spec_overrides(onnx_path: Path) -> None:
    model = get_model("onnx", weights=onnx_path, mean=0.0, std=(1.0, 2.0, 3.0), color_order="BGR")
    p = model.spec.preprocessing
    assert (p.mean, p.std, p.color_order, p.input_size) == ((0.0,) * 3, (1.0, 2.0, 3.0), "BGR", 112)
    with pytest.raises(ConfigError, match="input_size=96"):
        get_model("onnx", weights=onnx_path, input_size=96)
    with pytest.raises(ConfigError, match="unknown arguments"):
        get_model("onnx", weights=onnx_path, scale=2)
    with pytest.raises(ConfigError, match="backend"):
        get_model("onnx", weights=onnx_path, backend="tensorrt")


# ---------------------------------------------------------------------------------------------
# bad files


def test_weights_are_required() -> None:
    for weights in (None, "random"):
        with pytest.raises(WeightsError, match=r"\.onnx"):
            get_model("onnx", weights=weights)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_bad_files_name_the_file(backend: str, tmp_path: Path, onnx_path: Path) -> None:
    with pytest.raises(WeightsError, match="absent.onnx.*not found"):
        get_model("onnx", weights=tmp_path / "absent.onnx", backend=backend)
    text = tmp_path / "readme.onnx"
    text.write_text("this is not an ONNX model\n" * 20)
    with pytest.raises(WeightsError, match="readme.onnx"):
        get_model("onnx", weights=text, backend=backend)
    data = onnx_path.read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated.onnx"):
        get_model("onnx", weights=truncated, backend=backend)


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], initializers: list[Any] = (), opset: int = 17) -> Any:
    graph = helper.make_graph(nodes, "test", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _float_info(name: str, shape: list[Any] | None) -> Any:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_unsupported_op_names_op_and_file(tmp_path: Path) -> None:
    node = helper.make_node("LRN", ["x"], ["y"], size=3)
    path = tmp_path / "lrn.onnx"
    onnx.save(_model([node], [_float_info("x", [1, 3, 112, 112])], [_float_info("y", None)]), path)
    with pytest.raises(WeightsError, match=r"lrn.onnx.*unsupported ONNX ops LRN"):
        onnx_to_torch(path)


def test_graph_normalising_inside_fixed_batch_dynamic_output(tmp_path: Path) -> None:
    """An MXNet-style graph (x - 127.5) * 0.0078125 first: mean 0, std 1; D found by a trial run."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Constant", [], ["mean"], value=numpy_helper.from_array(np.array(127.5, np.float32))),
        helper.make_node("Sub", ["data", "mean"], ["centred"], name="_minusscalar0"),
        helper.make_node("Mul", ["centred", "scale"], ["scaled"], name="_mulscalar0"),
        helper.make_node("Conv", ["scaled", "w"], ["conv"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["conv"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["fc1"]),
    ]
    inits = [numpy_helper.from_array(np.array(0.0078125, np.float32), "scale"),
             numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")]
    path = tmp_path / "mxnet_style.onnx"
    onnx.save(_model(nodes, [_float_info("data", [1, 3, 112, 112])], [_float_info("fc1", None)], inits), path)
    crops = rng.integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    embeddings = []
    for backend in ("torch", "onnxruntime"):
        model = get_model("onnx", weights=path, backend=backend)
        p = model.spec.preprocessing
        assert (p.mean, p.std, p.input_size, model.spec.embedding_size) == ((0.0,) * 3, (1.0,) * 3, 112, 8)
        embeddings.append(model.embed(crops))  # batch 3 through a batch-1 graph
    np.testing.assert_allclose(embeddings[0], embeddings[1], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# op-by-op parity with onnxruntime


def _rand(*shape: int, seed: int = 0, positive: bool = False) -> np.ndarray:
    a = np.random.default_rng(seed + len(shape)).standard_normal(shape).astype(np.float32)
    return np.abs(a) + 0.1 if positive else a


def _i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def case(op: str, *inputs: np.ndarray | None, const: tuple[int, ...] = (), opset: int = 17,
         out: tuple[int, ...] = (TensorProto.FLOAT,), case_id: str = "", **attrs: Any) -> Any:
    """One single-node graph: ``inputs`` (None = omitted optional), indices in ``const`` as initializers."""
    return pytest.param(op, inputs, const, opset, out, attrs, id=case_id or op)


X4 = _rand(2, 3, 7, 8)
OP_CASES = [
    case("Conv", X4, _rand(4, 3, 3, 2), _rand(4), const=(1, 2), pads=[1, 0, 2, 1], strides=[2, 1], dilations=[1, 2], case_id="Conv-asym"),
    case("Conv", _rand(1, 4, 9, 9), _rand(4, 2, 3, 3), const=(1,), group=2, auto_pad="SAME_UPPER", strides=[2, 2], case_id="Conv-same-group"),
    case("Conv", _rand(1, 4, 9, 9), _rand(4, 1, 3, 3), const=(1,), group=4, auto_pad="SAME_LOWER", strides=[2, 2], case_id="Conv-same-lower-depthwise"),
    case("Conv", _rand(2, 3, 10), _rand(5, 3, 3), const=(1,), pads=[1, 1], case_id="Conv-1d"),
    case("BatchNormalization", X4, _rand(3), _rand(3), _rand(3), _rand(3, positive=True), const=(1, 2, 3, 4), epsilon=2e-5),
    case("PRelu", X4, _rand(3, 1, 1), const=(1,)),
    *[case(op, X4) for op in ("Relu", "Sigmoid", "Tanh", "Elu", "Selu", "HardSigmoid", "HardSwish", "Softplus",
                              "Exp", "Neg", "Abs", "Erf", "Floor", "Ceil", "Identity")],
    *[case(op, _rand(2, 3, positive=True)) for op in ("Sqrt", "Log", "Reciprocal")],
    case("LeakyRelu", X4, alpha=0.2),
    case("HardSigmoid", X4, alpha=0.3, beta=0.4, case_id="HardSigmoid-attrs"),
    *[case(op, X4, _rand(3, 1, 1, seed=1)) for op in ("Add", "Sub", "Mul", "Max", "Min")],
    case("Div", X4, _rand(8, positive=True)),
    case("Div", _i64(7, -7, 9), _i64(2, 2, -4), out=(TensorProto.INT64,), case_id="Div-int"),
    case("Pow", _rand(2, 3, positive=True), _rand(3)),
    case("Sum", X4, _rand(3, 1, 1, seed=1), _rand(8, seed=2)),
    case("MatMul", _rand(2, 3, 4), _rand(4, 5)),
    case("Gemm", _rand(2, 4), _rand(5, 4), _rand(5), const=(1, 2), transB=1, alpha=0.5, beta=2.0),
    case("Gemm", _rand(4, 2), _rand(4, 5), transA=1, case_id="Gemm-transA-noC"),
    case("Flatten", X4, axis=2),
    case("Flatten", X4, axis=-1, case_id="Flatten-neg"),
    case("Flatten", X4, case_id="Flatten-default"),
    case("Reshape", X4, _i64(0, -1, 4), const=(1,)),
    case("Transpose", X4, perm=[0, 2, 3, 1]),
    case("Transpose", X4, case_id="Transpose-default"),
    case("Dropout", X4, out=(TensorProto.FLOAT, TensorProto.BOOL)),
    case("Shape", X4, out=(TensorProto.INT64,)),
    case("Shape", X4, out=(TensorProto.INT64,), start=1, end=-1, opset=15, case_id="Shape-slice"),
    case("Gather", X4, _i64(2, -1, 0), const=(1,), axis=1),
    case("Gather", X4, np.array(-2, np.int64), const=(1,), axis=3, case_id="Gather-scalar"),
    case("Unsqueeze", _rand(2, 3), axes=[0, -1], opset=11, case_id="Unsqueeze-attr"),
    case("Unsqueeze", _rand(2, 3), _i64(1, 3), const=(1,), case_id="Unsqueeze-input"),
    case("Squeeze", _rand(2, 1, 3, 1), axes=[1], opset=11, case_id="Squeeze-attr"),
    case("Squeeze", _rand(2, 1, 3, 1), _i64(-1), const=(1,), case_id="Squeeze-input"),
    case("Squeeze", _rand(2, 1, 3, 1), case_id="Squeeze-all"),
    case("Concat", X4, _rand(2, 1, 7, 8), axis=1),
    case("GlobalAveragePool", X4),
    case("GlobalMaxPool", X4),
    case("AveragePool", X4, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    case("AveragePool", X4, kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1, case_id="AveragePool-include-pad"),
    case("AveragePool", X4, kernel_shape=[3, 2], pads=[0, 1, 2, 0], case_id="AveragePool-asym"),
    case("AveragePool", X4, kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER", case_id="AveragePool-same"),
    case("MaxPool", X4, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    case("MaxPool", X4, kernel_shape=[2, 3], pads=[1, 0, 0, 2], case_id="MaxPool-asym"),
    case("MaxPool", X4, kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1, case_id="MaxPool-ceil"),
    case("MaxPool", X4, kernel_shape=[2, 2], dilations=[2, 2], case_id="MaxPool-dilated"),
    case("Pad", X4, _i64(0, 0, 1, 2, 0, 0, 3, 0), np.array(1.5, np.float32), const=(1, 2), mode="constant"),
    case("Pad", X4, _i64(0, 0, 1, 2, 0, 0, 2, 1), const=(1,), mode="reflect", case_id="Pad-reflect"),
    case("Pad", X4, _i64(0, 1, 1, 2, 0, 0, 2, 1), const=(1,), mode="edge", case_id="Pad-edge"),
    case("Pad", X4, pads=[0, 0, 1, 1, 0, 0, 1, 1], value=-2.0, opset=10, case_id="Pad-attrs"),
    case("Pad", X4, _i64(1, 2, 3, 0), None, _i64(2, -1), const=(1, 3), opset=18, case_id="Pad-axes"),
    case("Softmax", X4, axis=1, opset=11, case_id="Softmax-coerced"),
    case("Softmax", X4, axis=1, case_id="Softmax-axis"),
    case("LogSoftmax", X4),
    case("Clip", X4, min=-0.5, max=0.5, opset=6, case_id="Clip-attrs"),
    case("Clip", X4, np.array(-0.3, np.float32), np.array(0.2, np.float32), const=(1, 2)),
    case("Clip", X4, np.array(0.0, np.float32), const=(1,), case_id="Clip-min-only"),
    case("Cast", X4 * 10, to=TensorProto.INT64, out=(TensorProto.INT64,)),
    case("ConstantOfShape", _i64(2, 3), const=(0,), value=numpy_helper.from_array(np.array([0.5], np.float32))),
    case("Expand", _rand(3, 1), _i64(2, 1, 4), const=(1,)),
    case("Slice", X4, _i64(1, -1), _i64(7, 0), _i64(2, 3), _i64(2, -2), const=(1, 2, 3, 4)),
    case("Slice", X4, _i64(0, 1), _i64(1, 100), const=(1, 2), case_id="Slice-clamped"),
    case("Slice", X4, starts=[1], ends=[-1], axes=[2], opset=9, case_id="Slice-attrs"),
    case("ReduceMean", X4, axes=[2, 3], opset=13),
    case("ReduceMean", X4, _i64(1), const=(1,), keepdims=0, opset=18, case_id="ReduceMean-input"),
    case("ReduceSum", X4, _i64(-1), const=(1,)),
    case("ReduceMax", X4, axes=[1], keepdims=0, opset=13),
    case("ReduceMin", X4, opset=13),
    case("ReduceL2", X4, axes=[1], opset=13),
    case("LpNormalization", X4, axis=1),
]


def _run_single_node(op: str, inputs: tuple[np.ndarray | None, ...], const: tuple[int, ...], opset: int,
                     out: tuple[int, ...], attrs: dict[str, Any]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    names = [("" if a is None else f"in{i}") for i, a in enumerate(inputs)]
    while names and names[-1] == "":
        names.pop()
    outputs = [f"out{i}" for i in range(len(out))]
    feeds = {n: a for i, (n, a) in enumerate(zip(names, inputs)) if n and i not in const}
    inits = [numpy_helper.from_array(inputs[i], names[i]) for i in const]
    graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in feeds.items()]
    model = _model([helper.make_node(op, names, outputs, **attrs)], graph_inputs,
                   [helper.make_tensor_value_info(n, t, None) for n, t in zip(outputs, out)], inits, opset)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    with torch.no_grad():
        got = OnnxGraphModule(model, f"{op}.onnx")(*(torch.from_numpy(a) for a in feeds.values()))
    got = list(got) if isinstance(got, tuple) else [got]
    return [g.numpy() for g in got], expected


@pytest.mark.parametrize(("op", "inputs", "const", "opset", "out", "attrs"), OP_CASES)
def test_op_matches_onnxruntime(op: str, inputs: tuple, const: tuple, opset: int, out: tuple, attrs: dict) -> None:
    got, expected = _run_single_node(op, inputs, const, opset, out, attrs)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


def test_every_supported_op_is_checked() -> None:
    checked = {p.values[0] for p in OP_CASES} | {"Constant"}  # Constant: see the MXNet-style graph test
    assert SUPPORTED_OPS <= checked, sorted(SUPPORTED_OPS - checked)
