"""Opening an ONNX file with onnxruntime: the one place a session is made (CPU provider).

Detectors (RetinaFace/SCRFD), recognisers (``backend="onnxruntime"``) and soft-biometric
estimators all open their files here, so that every failure is a
:class:`~xaiface.errors.WeightsError` naming the file and what was expected of it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import WeightsError

#: onnxruntime's log level for sessions: errors only (failures are reported as WeightsError)
_LOG_ERRORS_ONLY = 3
_MESSAGE_CHARS = 200


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:_MESSAGE_CHARS] if text else type(e).__name__


def open_onnx_session(model: str | os.PathLike | bytes, *, source: str | None = None, expected: str | None = None,
                      intra_op_threads: int | None = None, inter_op_threads: int | None = None,
                      disable_optimizations: bool = False) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU provider.

    Args:
        model: a ``.onnx`` path, or a serialised ``ModelProto`` (bytes).
        source: how to name the model in messages (default: the path; ``"<onnx model>"`` for bytes).
        expected: what the file should be, for the message (``"an ONNX export of RetinaFace or SCRFD"``).
        intra_op_threads, inter_op_threads: onnxruntime's thread counts (default: its own).
        disable_optimizations: run the graph as stored (``ORT_DISABLE_ALL``), e.g. to reproduce a
            reference implementation exactly.
    Returns:
        the session.
    Raises:
        WeightsError: a missing path, a folder, an empty file, or a file onnxruntime cannot load
            (another format, truncated, unsupported ops); the message names the file.
    """
    import onnxruntime as ort

    if isinstance(model, (bytes, bytearray)):
        name, what = source or "<onnx model>", bytes(model)
    else:
        path = Path(model)
        name, what = source or str(path), str(path)
        if not path.exists():
            raise WeightsError(f"{name}: ONNX model file not found")
        if not path.is_file():
            raise WeightsError(f"{name}: not a file; expected an ONNX model file")
        if path.stat().st_size == 0:
            raise WeightsError(f"{name}: ONNX model file is empty")
    options = ort.SessionOptions()
    options.log_severity_level = _LOG_ERRORS_ONLY
    if intra_op_threads is not None:
        options.intra_op_num_threads = int(intra_op_threads)
    if inter_op_threads is not None:
        options.inter_op_num_threads = int(inter_op_threads)
    if disable_optimizations:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(what, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as e:  # InvalidProtobuf, InvalidArgument, Fail...: onnxruntime's own, untyped errors
        hint = f"; expected {expected}" if expected else ""
        raise WeightsError(f"{name}: not a loadable ONNX model ({type(e).__name__}: {_first_line(e)}){hint}") from None
