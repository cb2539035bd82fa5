"""The one way an onnxruntime session is opened: CPU, options applied, every failure a
WeightsError naming the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from xaiface.errors import WeightsError
from xaiface.io.onnx_session import open_onnx_session


def _relu_model() -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def test_a_model_runs_with_the_options_given(tmp_path: Path) -> None:
    path = tmp_path / "relu.onnx"
    path.write_bytes(_relu_model())
    sess = open_onnx_session(path, intra_op_threads=1, inter_op_threads=1, disable_optimizations=True)
    x = np.array([[-1.0, 0.0, 2.0, -3.5]], np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], np.maximum(x, 0))  # exact: Relu only selects
    opts = sess.get_session_options()
    assert (opts.intra_op_num_threads, opts.inter_op_num_threads) == (1, 1)
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert open_onnx_session(_relu_model()).run(None, {"x": x})[0].shape == (1, 4)  # from bytes


@pytest.mark.parametrize("content", ["garbage", "truncated", "empty", "missing", "folder"])
def test_bad_files_are_weights_errors_naming_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / f"bad_{content}.onnx"
    if content == "garbage":
        path.write_bytes(b"\x00\x01 this is not an ONNX model " * 10)
    elif content == "truncated":
        data = _relu_model()
        path.write_bytes(data[: len(data) // 2])
    elif content == "empty":
        path.write_bytes(b"")
    elif content == "folder":
        path.mkdir()
    with pytest.raises(WeightsError, match=rf"bad_{content}\.onnx.*(not found|not a file|empty|not a loadable).*"):
        open_onnx_session(path, expected="a test model")


def test_garbage_bytes_are_named_by_their_source() -> None:
    with pytest.raises(WeightsError, match=r"^mine\.onnx: not a loadable ONNX model .*; expected a detector$"):
        open_onnx_session(b"not a model", source="mine.onnx", expected="a detector")
