"""Recognisers from a user's ONNX file (e.g. insightface ``w600k_r50.onnx``).

Two ways to run one file:

* :func:`onnx_to_torch` interprets the ONNX graph with PyTorch ops (:class:`OnnxGraphModule`,
  in :mod:`.onnx_interpreter`), so gradients reach the input; :class:`OnnxFaceModel` wraps it as a :class:`FaceModel`
  (``get_model("onnx", weights=PATH)``, the default ``backend="torch"``);
* :class:`OnnxRuntimeRecognizer` runs the file through onnxruntime's CPU provider: inference
  only, no gradients (``get_model("onnx", weights=PATH, backend="onnxruntime")``).

The spec is derived from the graph (:func:`onnx_face_spec`): input size from the input shape
``(N, 3, S, S)`` (112 when dynamic), embedding size from the output, insightface's convention
RGB with mean = std = 127.5, except for graphs that normalise inside (a ``Sub`` and a ``Mul``
among the first 8 nodes, as in the MXNet-converted ArcFace models), which get mean 0, std 1, the
rule insightface's ``ArcFaceONNX`` applies. Keyword arguments override all of these.

Supported ops (default domain): see :data:`SUPPORTED_OPS`. Control flow (If, Loop), custom
domains and quantised ops are not supported: such files raise :class:`WeightsError`.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import ConfigError, WeightsError
from ..io.onnx_session import open_onnx_session
from .base import FaceModel, ModelSpec, Preprocessing
from .catalog import ONNX_SPEC
from .integrity import weights_sha256
from .onnx_interpreter import SUPPORTED_OPS, OnnxGraphModule, load_onnx, onnx_to_torch, opset_version, read_onnx
from .registry import register_model

__all__ = ["SUPPORTED_OPS", "OnnxFaceModel", "OnnxGraphModule", "OnnxRuntimeRecognizer", "load_onnx",
           "load_onnx_face_model", "onnx_face_spec", "onnx_to_torch"]

Tensor = torch.Tensor

_DEFAULT_INPUT_SIZE = 112
_INSIGHTFACE_MEAN_STD = 127.5


def _as_model(path_or_model: Any) -> tuple[Any, str, str | None]:
    """``(ModelProto, source name, file SHA-256)`` from a path or an in-memory ``ModelProto``."""
    model, source = read_onnx(path_or_model)
    sha = weights_sha256(path_or_model) if isinstance(path_or_model, (str, os.PathLike)) else None
    return model, source, sha


# ----------------------------------------------------------------------------------------------
# spec and face models


def _input_dims(model: Any, source: str) -> list[int | None]:
    init_names = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init_names]
    if len(inputs) != 1:
        raise WeightsError(f"{source}: a recogniser takes one input image batch, the graph has {len(inputs)} inputs")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[1] not in (3, None):
        raise WeightsError(f"{source}: input shape {dims}, expected (N, 3, S, S) (NCHW, 3 colour channels)")
    return dims


def _normalises_inside(model: Any) -> bool:
    """insightface's rule: a Sub and a Mul among the first 8 nodes mean the graph normalises."""
    first = model.graph.node[:8]

    def has(op: str, prefixes: tuple[str, ...]) -> bool:
        return any(n.op_type == op or n.name.startswith(prefixes) for n in first)

    return has("Sub", ("Sub", "_minus")) and has("Mul", ("Mul", "_mul"))


def _triple(v: float | Sequence[float], what: str) -> tuple[float, float, float]:
    t = (float(v),) * 3 if isinstance(v, (int, float)) else tuple(float(x) for x in v)
    if len(t) != 3:
        raise ConfigError(f"{what} must be a number or 3 numbers, got {v!r}")
    return t  # type: ignore[return-value]


def onnx_face_spec(
    model: Any,
    source: str,
    embedding_size: int,
    *,
    input_size: int | None = None,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    color_order: str | None = None,
    geometry: str | None = None,
    weights_sha256: str | None = None,
) -> ModelSpec:
    """The :class:`ModelSpec` of an ONNX recogniser; keyword arguments override what is derived.

    Args:
        model: the ``onnx.ModelProto``.
        source: its file name.
        embedding_size: ``D`` (from the output shape, or a trial forward when dynamic).
        input_size: the crop side ``S`` (default: the graph's, 112 when dynamic).
        mean, std: in 0..255 units (default 127.5 / 127.5, or 0 / 1 when the graph normalises).
        color_order: ``"RGB"`` (default, insightface) or ``"BGR"``.
        geometry: alignment geometry (default ``"arcface-112"`` at 112, else ``"arcface-S"``).
    """
    dims = _input_dims(model, source)
    h, w = dims[2], dims[3]
    if input_size is None:
        if h is not None and w is not None and h != w:
            raise WeightsError(f"{source}: input is {h}x{w}; only square crops are supported")
        input_size = h or w or _DEFAULT_INPUT_SIZE
    elif (h is not None and h != input_size) or (w is not None and w != input_size):
        raise ConfigError(f"{source}: input_size={input_size} but the graph's input is {h}x{w}")
    inside = _normalises_inside(model)
    default_mean, default_std = (0.0, 1.0) if inside else (_INSIGHTFACE_MEAN_STD, _INSIGHTFACE_MEAN_STD)
    name = Path(source).name
    return ModelSpec(
        name="onnx",
        architecture=f"onnx:{name}",
        embedding_size=int(embedding_size),
        preprocessing=Preprocessing(
            input_size=int(input_size),
            geometry=geometry or ("arcface-112" if input_size == 112 else f"arcface-{input_size}"),
            color_order=color_order or "RGB",
            mean=_triple(default_mean if mean is None else mean, "mean"),
            std=_triple(default_std if std is None else std, "std"),
        ),
        license=ONNX_SPEC.license,
        weights_sha256=weights_sha256,
        description=f"ONNX recogniser {name} ({len(model.graph.node)} nodes, opset {opset_version(model)})",
        weights_required=True,
    )


def _output_size(model: Any) -> int | None:
    dims = model.graph.output[0].type.tensor_type.shape.dim
    last = dims[-1] if len(dims) else None
    return last.dim_value if last is not None and last.HasField("dim_value") and last.dim_value > 0 else None


def _in_chunks(run: Callable[[Tensor], Tensor], x: Tensor, fixed_batch: int | None) -> Tensor:
    """``run(x)``, or, for a graph exported with a fixed batch size, ``run`` on zero-padded chunks."""
    n = x.shape[0]
    if fixed_batch is None or n == fixed_batch or n == 0:
        return run(x)
    parts = []
    for i in range(0, n, fixed_batch):
        part = x[i : i + fixed_batch]
        k = part.shape[0]
        if k < fixed_batch:
            part = torch.cat([part, part.new_zeros((fixed_batch - k, *part.shape[1:]))])
        parts.append(run(part)[:k])
    return torch.cat(parts)


class OnnxFaceModel(FaceModel):
    """A :class:`FaceModel` running an ONNX graph converted to PyTorch (gradients flow).

    Args:
        spec: see :func:`onnx_face_spec`.
        graph_module: from :func:`onnx_to_torch`.
        fixed_batch: the graph's static batch size, if any (batches are then run in chunks).

    Shape: RGB pixels ``(B, 3, S, S)`` in 0..255 -> raw embeddings ``(B, D)``.
    """

    def __init__(self, spec: ModelSpec, graph_module: OnnxGraphModule, fixed_batch: int | None = None):
        super().__init__(spec)
        self.graph_module = graph_module
        self.fixed_batch = fixed_batch

    def _run(self, x: Tensor) -> Tensor:
        out = self.graph_module(x)
        out = out[0] if isinstance(out, tuple) else out
        return out.reshape(out.shape[0], -1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised input ``(B, 3, S, S)`` -> the graph's first output as ``(B, D)``."""
        return _in_chunks(self._run, x, self.fixed_batch)


_SPEC_OVERRIDES = ("input_size", "mean", "std", "color_order", "geometry")


def _derive_spec(model: Any, source: str, sha: str | None, overrides: dict[str, Any],
                 trial: Callable[[int], Any]) -> ModelSpec:
    """:func:`onnx_face_spec`, finding ``D`` with ``trial(S) -> (1, ...) output`` when dynamic."""
    unknown = set(overrides) - set(_SPEC_OVERRIDES)
    if unknown:
        raise ConfigError(f"model onnx: unknown arguments {sorted(unknown)}; accepted: backend, {', '.join(_SPEC_OVERRIDES)}")
    spec = onnx_face_spec(model, source, 0, weights_sha256=sha, **overrides)
    d = _output_size(model)
    if d is None:  # dynamic output: one trial forward finds D (and runs every op once)
        out = trial(spec.preprocessing.input_size)
        d = int(np.prod(out.shape[1:]))
    return replace(spec, embedding_size=d)


class OnnxRuntimeRecognizer(FaceModel):
    """A :class:`FaceModel` running an ONNX file through onnxruntime (CPU): no gradients.

    ``run(pixels)`` is numpy in, numpy out; ``forward`` and ``embed`` work as for every
    :class:`FaceModel`, but a forward on an input that requires grad raises ``ConfigError``
    (use ``backend="torch"`` for gradient explanations). The session is not picklable.

    Args:
        path_or_model: a ``.onnx`` path or an ``onnx.ModelProto``.
        **spec_overrides: ``input_size``, ``mean``, ``std``, ``color_order``, ``geometry``
            (see :func:`onnx_face_spec`).
    Raises:
        WeightsError: unreadable file, or one onnxruntime refuses (names the file).
    """

    def __init__(self, path_or_model: str | os.PathLike | Any, **spec_overrides: Any):
        model, source, sha = _as_model(path_or_model)
        session = open_onnx_session(model.SerializeToString(), source=source, expected="a face recogniser")
        input_name = session.get_inputs()[0].name
        fixed_batch = _input_dims(model, source)[0]

        def trial(s: int) -> np.ndarray:
            return session.run(None, {input_name: np.zeros((fixed_batch or 1, 3, s, s), np.float32)})[0]

        super().__init__(_derive_spec(model, source, sha, spec_overrides, trial))
        self.session = session
        self.source = source
        self.fixed_batch = fixed_batch
        self._input_name = input_name

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised input ``(B, 3, S, S)`` -> ``(B, D)``, computed by onnxruntime."""
        if x.requires_grad and torch.is_grad_enabled():
            raise ConfigError(
                f"{self.source}: the onnxruntime backend computes no gradients; "
                "use get_model('onnx', weights=..., backend='torch') for gradient-based explanations"
            )
        return _in_chunks(self._run, x.detach().cpu(), self.fixed_batch).to(x.device)

    def _run(self, x: Tensor) -> Tensor:
        out = self.session.run(None, {self._input_name: x.numpy().astype(np.float32, copy=False)})[0]
        return torch.from_numpy(out.reshape(out.shape[0], -1))

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """RGB pixels ``(B, 3, S, S)`` in 0..255 (numpy) -> raw embeddings ``(B, D)`` float32."""
        with torch.no_grad():
            return self(torch.from_numpy(np.asarray(pixels, dtype=np.float32))).numpy()


def load_onnx_face_model(
    path_or_model: str | os.PathLike | Any, backend: str = "torch", **spec_overrides: Any
) -> OnnxFaceModel | OnnxRuntimeRecognizer:
    """Build a recogniser from a ``.onnx`` file (or an ``onnx.ModelProto``).

    Args:
        path_or_model: the ONNX file.
        backend: ``"torch"`` (converted graph, gradients) or ``"onnxruntime"`` (inference only).
        **spec_overrides: ``input_size``, ``mean``, ``std``, ``color_order``, ``geometry``
            (see :func:`onnx_face_spec`).
    Returns:
        the model in eval mode.
    Raises:
        WeightsError: unreadable or unsupported file (names it).
        ConfigError: unknown backend or override.
    """
    if backend == "onnxruntime":
        return OnnxRuntimeRecognizer(path_or_model, **spec_overrides).eval()
    if backend != "torch":
        raise ConfigError(f"model onnx: backend must be 'torch' or 'onnxruntime', got {backend!r}")
    model, source, sha = _as_model(path_or_model)
    fixed_batch = _input_dims(model, source)[0]
    net = OnnxGraphModule(model, source).eval()

    def trial(s: int) -> Tensor:
        with torch.no_grad():
            out = net(torch.zeros(fixed_batch or 1, 3, s, s))
        return out[0] if isinstance(out, tuple) else out

    spec = _derive_spec(model, source, sha, spec_overrides, trial)
    return OnnxFaceModel(spec, net, fixed_batch).eval()


@register_model(ONNX_SPEC)
def _build(spec: ModelSpec, weights: Any = None, backend: str = "torch", **kwargs: Any) -> FaceModel:
    """Registry builder: ``weights`` must be a path to a ``.onnx`` file."""
    if weights is None or (isinstance(weights, str) and weights == "random"):
        raise WeightsError(
            "model onnx needs weights=PATH to a .onnx recogniser (e.g. insightface w600k_r50.onnx); "
            "it has no packaged or random weights"
        )
    return load_onnx_face_model(weights, backend=backend, **kwargs)
