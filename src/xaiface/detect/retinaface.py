"""RetinaFace-family face detectors run from the user's ONNX file with onnxruntime (CPU).

Two decoders, each following its reference implementation:

``scrfd``
    insightface SCRFD (``det_500m``, ``det_2.5g``, ``det_10g``; decoding as in insightface
    ``python-package/insightface/model_zoo/retinaface.py``). Input RGB, ``(x - 127.5) / 128``.
    Outputs per stride 8/16/32: scores ``(K*2, 1)``, box distances ``(K*2, 4)`` (left, top,
    right, bottom, in strides) and, for 9-output models, keypoint offsets ``(K*2, 10)`` (x, y, in
    strides), for ``K = (h // s) * (w // s)`` locations with 2 anchors each, centred on
    ``grid * stride``; a leading batch axis of 1 is allowed. Models with strides 8..128 and one
    anchor (10 or 15 outputs) decode the same way. Score threshold 0.5, NMS IoU 0.4.
``retinaface``
    biubug6 ``Pytorch_Retinaface`` (mobilenet0.25 / resnet50 export). Input BGR minus
    ``(104, 117, 123)``. Priors with ``min_sizes [[16, 32], [64, 128], [256, 512]]``, ``steps
    [8, 16, 32]``, ``clip False``; outputs ``loc (N, 4)``, ``conf (N, 2)`` (softmaxed),
    ``landms (N, 10)``, decoded with variances ``[0.1, 0.2]``; confidence > 0.02, top 5000,
    NMS IoU 0.4, first 750 kept, then faces scoring at least ``score_threshold`` (0.5).

Both networks see the photo resized with its aspect ratio kept into the top-left corner of a
zero canvas (:class:`Letterbox`, insightface's ``detect``); boxes and landmarks are mapped back to
photo pixels with the resize's own x and y scales.

Landmark order: both networks were trained on the RetinaFace WIDER FACE annotations, whose five
points are the image-left eye, image-right eye, nose tip, image-left and image-right mouth
corners, the order insightface aligns directly onto the ArcFace template. That is
:data:`~xaiface.types.LANDMARK_NAMES`'s order, so the points are returned as the network gives
them. SCRFD models without keypoints (6 or 10 outputs) give NaN landmarks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from ..errors import ConfigError, ImageError, NumericalError, WeightsError
from ..io.hashing import file_sha256
from ..io.onnx_session import open_onnx_session
from ..types import DetectedFace
from .base import Detector, register_detector

__all__ = [
    "KINDS",
    "Letterbox",
    "RetinaFaceOnnxDetector",
    "decode_retinaface",
    "decode_scrfd",
    "nms",
    "retinaface_priors",
    "scrfd_anchor_centers",
]

KINDS = ("auto", "scrfd", "retinaface")
DEFAULT_INPUT_SIZE = 640

# insightface SCRFD: number of outputs -> (strides, anchors per location, with keypoints)
_SCRFD_LAYOUTS: dict[int, tuple[tuple[int, ...], int, bool]] = {
    6: ((8, 16, 32), 2, False),
    9: ((8, 16, 32), 2, True),
    10: ((8, 16, 32, 64, 128), 1, False),
    15: ((8, 16, 32, 64, 128), 1, True),
}
_SCRFD_WIDTHS = {1: "scores", 4: "box distances", 10: "keypoint offsets"}

# biubug6 cfg_mnet / cfg_re50
RETINAFACE_MIN_SIZES: tuple[tuple[int, ...], ...] = ((16, 32), (64, 128), (256, 512))
RETINAFACE_STEPS: tuple[int, ...] = (8, 16, 32)
RETINAFACE_VARIANCES: tuple[float, float] = (0.1, 0.2)
_RETINAFACE_WIDTHS = {4: "loc", 2: "conf", 10: "landms"}


@dataclass(frozen=True)
class _Preprocessing:
    """Canvas -> network input: channel order, then ``(x - mean) / std`` (mean in that order)."""

    color_order: str
    mean: tuple[float, float, float]
    std: float


_PREPROCESSING = {
    "scrfd": _Preprocessing("RGB", (127.5, 127.5, 127.5), 128.0),
    "retinaface": _Preprocessing("BGR", (104.0, 117.0, 123.0), 1.0),
}


# ---------------------------------------------------------------------------------------------
# geometry: NMS, anchors, priors, letterbox


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.4, *,
        pixel_offset: float = 1.0) -> np.ndarray:
    """Greedy non-maximum suppression (``py_cpu_nms`` of both references).

    The highest-scoring box is kept and every remaining box whose IoU with it is above
    ``iou_threshold`` is dropped; repeat on what is left.

    Args:
        boxes: ``(N, 4)`` ``x1, y1, x2, y2``.
        scores: ``(N,)``.
        iou_threshold: boxes with IoU strictly above it are suppressed.
        pixel_offset: added to widths and heights; 1.0 is the references' inclusive-pixel
            convention, 0.0 treats boxes as continuous rectangles.
    Returns:
        ``(K,)`` int64 indices of the kept boxes, by descending score (ties: lower index first).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ConfigError(f"nms: {len(boxes)} boxes but {len(scores)} scores")
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + pixel_offset) * (y2 - y1 + pixel_offset)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + pixel_offset)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + pixel_offset)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def scrfd_anchor_centers(height: int, width: int, stride: int, num_anchors: int = 2) -> np.ndarray:
    """Anchor centres of one SCRFD pyramid level.

    Args:
        height, width: the network input (canvas) size in pixels; the level has
            ``height // stride`` rows and ``width // stride`` columns.
        stride: 8, 16, 32 (64, 128).
        num_anchors: anchors per location (2 for the 3-level models).
    Returns:
        ``(rows * cols * num_anchors, 2)`` float64 ``x, y`` = ``(col, row) * stride``, row-major,
        each location repeated ``num_anchors`` times in a row (the order of the outputs).
    """
    rows, cols = height // stride, width // stride
    ys, xs = np.mgrid[:rows, :cols]
    centers = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float64) * stride
    return np.repeat(centers, num_anchors, axis=0)


def retinaface_priors(height: int, width: int,
                      min_sizes: Sequence[Sequence[int]] = RETINAFACE_MIN_SIZES,
                      steps: Sequence[int] = RETINAFACE_STEPS, clip: bool = False) -> np.ndarray:
    """biubug6 ``PriorBox``: the prior boxes of a ``height x width`` input.

    Each level ``k`` has ``ceil(height / steps[k]) x ceil(width / steps[k])`` locations; each
    location one prior per ``min_sizes[k]`` entry.

    Returns:
        ``(N, 4)`` float64 ``cx, cy, w, h`` as fractions of the input width and height, in the
        order level, row, column, size (the order of the network's outputs).
    """
    levels = []
    for step, sizes in zip(steps, min_sizes):
        rows, cols = -(-height // step), -(-width // step)
        ys, xs = np.mgrid[:rows, :cols]
        level = np.empty((rows * cols, len(sizes), 4))
        level[..., 0] = ((xs.reshape(-1) + 0.5) * step / width)[:, None]
        level[..., 1] = ((ys.reshape(-1) + 0.5) * step / height)[:, None]
        level[..., 2] = np.asarray(sizes, dtype=np.float64) / width
        level[..., 3] = np.asarray(sizes, dtype=np.float64) / height
        levels.append(level.reshape(-1, 4))
    priors = np.concatenate(levels)
    return np.clip(priors, 0.0, 1.0) if clip else priors


@dataclass(frozen=True)
class Letterbox:
    """A photo resized with its aspect ratio kept into the top-left corner of a zero canvas.

    The longer side (relative to the canvas) fills the canvas; the other is truncated to whole
    pixels as insightface does, so the x and y scales differ slightly and are undone separately.

    Attributes:
        photo_hw: ``(H, W)`` of the photo.
        canvas_hw: ``(h, w)`` of the network input.
        resized_hw: ``(h', w')`` of the resized photo in the canvas.
    """

    photo_hw: tuple[int, int]
    canvas_hw: tuple[int, int]
    resized_hw: tuple[int, int]

    @classmethod
    def fit(cls, photo_hw: tuple[int, int], canvas_hw: tuple[int, int]) -> Letterbox:
        (ph, pw), (ch, cw) = photo_hw, canvas_hw
        if ph <= 0 or pw <= 0:
            raise ImageError(f"cannot detect faces in an empty {ph}x{pw} image")
        im_ratio, canvas_ratio = ph / pw, ch / cw
        if im_ratio > canvas_ratio:
            rh, rw = ch, int(ch / im_ratio)
        else:
            rh, rw = int(cw * im_ratio), cw
        return cls((int(ph), int(pw)), (int(ch), int(cw)), (max(1, rh), max(1, rw)))

    @classmethod
    def identity(cls, canvas_hw: tuple[int, int]) -> Letterbox:
        """No resize: coordinates stay canvas pixels."""
        hw = (int(canvas_hw[0]), int(canvas_hw[1]))
        return cls(hw, hw, hw)

    @property
    def scale(self) -> tuple[float, float]:
        """Canvas pixels per photo pixel, ``(x, y)``."""
        return self.resized_hw[1] / self.photo_hw[1], self.resized_hw[0] / self.photo_hw[0]

    def to_photo(self, xy: np.ndarray) -> np.ndarray:
        """Canvas -> photo coordinates of ``(..., 2k)`` interleaved ``x, y`` values."""
        xy = np.asarray(xy, dtype=np.float64)
        return xy / np.tile(self.scale, xy.shape[-1] // 2)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 photo -> ``(h, w, 3)`` uint8 canvas (bilinear resize)."""
        rh, rw = self.resized_hw
        if (rh, rw) != self.photo_hw:
            image = np.asarray(Image.fromarray(image).resize((rw, rh), Image.Resampling.BILINEAR))
        canvas = np.zeros((*self.canvas_hw, 3), dtype=np.uint8)
        canvas[:rh, :rw] = image
        return canvas


# ---------------------------------------------------------------------------------------------
# decoders


def decode_scrfd(outputs: Sequence[np.ndarray], letterbox: Letterbox, *, score_threshold: float = 0.5,
                 nms_threshold: float = 0.4, detector: str = "scrfd-onnx") -> list[DetectedFace]:
    """Faces from the raw outputs of an insightface SCRFD network.

    Args:
        outputs: 6, 9, 10 or 15 arrays: per stride, scores ``(K*A, 1)``, box distances
            ``(K*A, 4)`` and (9/15 outputs) keypoint offsets ``(K*A, 10)``, each optionally with a
            leading batch axis of 1, in any order (each is recognised by its width and length).
        letterbox: where the photo lies in the network input.
        score_threshold: faces scoring below it are dropped (reference 0.5).
        nms_threshold: NMS IoU (reference 0.4).
        detector: name written into each face.
    Returns:
        faces in photo pixels by descending score.
    Raises:
        WeightsError: the outputs do not have the shapes above for ``letterbox.canvas_hw``.
    """
    height, width = letterbox.canvas_hw
    boxes, scores, landmarks = [], [], []
    for stride, anchors, level_scores, distances, offsets in _scrfd_levels(outputs, letterbox.canvas_hw):
        hit = level_scores >= score_threshold
        centers = scrfd_anchor_centers(height, width, stride, anchors)[hit]
        d = distances[hit] * stride
        boxes.append(np.concatenate([centers - d[:, :2], centers + d[:, 2:]], axis=1))
        scores.append(level_scores[hit])
        if offsets is not None:
            landmarks.append(np.tile(centers, 5) + offsets[hit] * stride)
    return _faces(np.concatenate(boxes), np.concatenate(scores),
                  np.concatenate(landmarks) if landmarks else None,
                  letterbox, nms_threshold, detector)


def decode_retinaface(outputs: Sequence[np.ndarray], letterbox: Letterbox, *, score_threshold: float = 0.5,
                      nms_threshold: float = 0.4, confidence_threshold: float = 0.02, top_k: int = 5000,
                      keep_top_k: int = 750, detector: str = "retinaface-onnx") -> list[DetectedFace]:
    """Faces from the raw outputs of a biubug6 RetinaFace network.

    Args:
        outputs: ``loc (N, 4)``, ``conf (N, 2)`` (background, face; softmax is applied when the
            rows do not already sum to 1) and ``landms (N, 10)``, each optionally with a leading
            batch axis of 1, in any order; ``N`` = ``len(retinaface_priors(h, w))``.
        letterbox: where the photo lies in the network input.
        score_threshold: final cut-off on the face probability (default 0.5).
        nms_threshold: NMS IoU (reference 0.4).
        confidence_threshold: candidates must score above it before NMS (reference 0.02).
        top_k: candidates kept before NMS (reference 5000).
        keep_top_k: faces kept after NMS (reference 750).
        detector: name written into each face.
    Returns:
        faces in photo pixels by descending score.
    Raises:
        WeightsError: the outputs do not have the shapes above for ``letterbox.canvas_hw``.
    """
    height, width = letterbox.canvas_hw
    priors = retinaface_priors(height, width)
    loc, conf, landms = _retinaface_outputs(outputs, len(priors), letterbox.canvas_hw)
    if not np.allclose(conf.sum(axis=1), 1.0, atol=1e-3):  # logits from a training-phase export
        conf = np.exp(conf - conf.max(axis=1, keepdims=True))
        conf /= conf.sum(axis=1, keepdims=True)
    scores = conf[:, 1]
    candidates = np.flatnonzero(scores > confidence_threshold)
    candidates = candidates[np.argsort(-scores[candidates], kind="stable")[:top_k]]
    p = priors[candidates]
    v_center, v_size = RETINAFACE_VARIANCES
    centers = p[:, :2] + loc[candidates, :2] * v_center * p[:, 2:]
    sizes = p[:, 2:] * np.exp(loc[candidates, 2:] * v_size)
    unit = np.array([width, height], dtype=np.float64)
    boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1) * np.tile(unit, 2)
    landmarks = (np.tile(p[:, :2], 5) + landms[candidates] * v_center * np.tile(p[:, 2:], 5)) * np.tile(unit, 5)
    return _faces(boxes, scores[candidates], landmarks, letterbox, nms_threshold, detector,
                  keep_top_k=keep_top_k, min_score=score_threshold)


def _faces(boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray | None, letterbox: Letterbox,
           nms_threshold: float, detector: str, keep_top_k: int | None = None,
           min_score: float | None = None) -> list[DetectedFace]:
    """Canvas-pixel candidates ``(M, 4)``, ``(M,)``, ``(M, 10)`` -> NMS'd faces in photo pixels."""
    boxes = letterbox.to_photo(boxes)
    landmarks = None if landmarks is None else letterbox.to_photo(landmarks)
    keep = nms(boxes, scores, nms_threshold)[:keep_top_k]
    if min_score is not None:
        keep = keep[scores[keep] >= min_score]
    no_landmarks = np.full((5, 2), np.nan)
    return [
        DetectedFace(box=boxes[i].copy(), score=float(scores[i]),
                     landmarks=no_landmarks.copy() if landmarks is None else landmarks[i].reshape(5, 2).copy(),
                     detector=detector)
        for i in keep
    ]


def _drop_batch(a: np.ndarray) -> np.ndarray:
    """``(1, N, C)`` or ``(N, C)`` -> ``(N, C)``; ``(N,)`` -> ``(N, 1)``."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] == 1:
        return a[0]
    if a.ndim == 1:
        return a[:, None]
    return a


def _shapes(outputs: Sequence[np.ndarray]) -> str:
    return ", ".join(str(tuple(np.shape(o))) for o in outputs)


def _scrfd_levels(outputs: Sequence[np.ndarray], canvas_hw: tuple[int, int]
                  ) -> list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray | None]]:
    """Sort SCRFD outputs into levels ``(stride, anchors, scores (M,), distances (M, 4), offsets (M, 10) | None)``."""
    n = len(outputs)
    if n not in _SCRFD_LAYOUTS:
        raise WeightsError(
            "a SCRFD model has 6 or 9 outputs (scores, box distances[, keypoint offsets] at strides 8, 16, 32) "
            f"or 10 or 15 (strides 8 to 128); got {n} outputs of shapes {_shapes(outputs)}"
        )
    strides, anchors, with_kps = _SCRFD_LAYOUTS[n]
    height, width = canvas_hw
    rows = [(height // s) * (width // s) * anchors for s in strides]
    expected_widths = [1, 4, 10] if with_kps else [1, 4]
    expected = (f"for a {height}x{width} input, {len(strides)} outputs each of "
                + ", ".join(f"(N, {w}) {_SCRFD_WIDTHS[w]}" for w in expected_widths)
                + f" with N = {rows} (optionally with a leading batch axis of 1)")
    arrays = [_drop_batch(o) for o in outputs]
    by_width: dict[int, list[np.ndarray]] = {w: [] for w in expected_widths}
    for a in arrays:
        if a.ndim != 2 or a.shape[1] not in by_width:
            raise WeightsError(f"SCRFD outputs: expected {expected}; got shapes {_shapes(outputs)}")
        by_width[a.shape[1]].append(a)
    for w in expected_widths:
        by_width[w].sort(key=len, reverse=True)  # stride 8 has the most locations
        if [len(a) for a in by_width[w]] != rows:
            raise WeightsError(f"SCRFD outputs: expected {expected}; got shapes {_shapes(outputs)}")
    offsets: list[np.ndarray | None] = by_width[10] if with_kps else [None] * len(strides)
    return [(s, anchors, sc[:, 0], d, k) for s, sc, d, k in zip(strides, by_width[1], by_width[4], offsets)]


def _retinaface_outputs(outputs: Sequence[np.ndarray], n_priors: int, canvas_hw: tuple[int, int]
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``loc (N, 4)``, ``conf (N, 2)``, ``landms (N, 10)`` from the outputs in any order."""
    expected = (f"3 outputs loc (N, 4), conf (N, 2), landms (N, 10) with N = {n_priors} priors for a "
                f"{canvas_hw[0]}x{canvas_hw[1]} input (optionally with a leading batch axis of 1)")
    arrays = [_drop_batch(o) for o in outputs]
    by_width = {a.shape[1]: a for a in arrays if a.ndim == 2}
    if (len(arrays) != 3 or sorted(by_width) != sorted(_RETINAFACE_WIDTHS)
            or any(len(a) != n_priors for a in by_width.values())):
        raise WeightsError(f"a RetinaFace model has {expected}; got shapes {_shapes(outputs)}")
    return by_width[4], by_width[2], by_width[10]


# ---------------------------------------------------------------------------------------------
# the detector


class RetinaFaceOnnxDetector(Detector):
    """A RetinaFace or SCRFD network from an ONNX file, run with onnxruntime on the CPU.

    Args:
        model_path: the ONNX file.
        kind: ``"scrfd"``, ``"retinaface"`` or ``"auto"`` (3 outputs: RetinaFace; 6, 9, 10 or 15:
            SCRFD).
        input_size: side of the square canvas the photo is resized into; ``None`` takes the
            model's fixed input size, or 640 for a model with a dynamic input.
        score_threshold: faces scoring below it are dropped (0.5).
        nms_threshold: NMS IoU (0.4).
        confidence_threshold, top_k, keep_top_k: RetinaFace only (0.02, 5000, 750).
    Raises:
        WeightsError: missing, empty, corrupt or non-ONNX file, or a model whose inputs or outputs
            do not fit the decoder (the message names the file and what was expected).
        ConfigError: a setting out of range, or an ``input_size`` the model cannot take.

    Example:
        >>> det = RetinaFaceOnnxDetector("det_10g.onnx")  # doctest: +SKIP
        >>> faces = det(load_image("photo.jpg"))  # doctest: +SKIP
    """

    def __init__(self, model_path: str | os.PathLike, kind: str = "auto", input_size: int | None = None,
                 score_threshold: float = 0.5, nms_threshold: float = 0.4, confidence_threshold: float = 0.02,
                 top_k: int = 5000, keep_top_k: int = 750):
        if kind not in KINDS:
            raise ConfigError(f"kind must be one of {KINDS}, got {kind!r}")
        for label, value in (("score_threshold", score_threshold), ("nms_threshold", nms_threshold),
                             ("confidence_threshold", confidence_threshold)):
            if not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"{label} must lie in [0, 1], got {value!r}")
        for label, value in (("top_k", top_k), ("keep_top_k", keep_top_k)):
            if int(value) < 1:
                raise ConfigError(f"{label} must be a positive integer, got {value!r}")
        self.model_path = Path(model_path)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.confidence_threshold = float(confidence_threshold)
        self.top_k = int(top_k)
        self.keep_top_k = int(keep_top_k)
        self._session = open_onnx_session(self.model_path, expected="an ONNX export of RetinaFace or SCRFD")
        self.model_sha256 = _sha256(self.model_path)
        self.kind = _model_kind(self._session, self.model_path, kind)
        self._input_name, self.input_hw = _model_input(self._session, self.model_path, self.kind, input_size)
        self.name = f"{self.kind}-onnx"

    def settings(self) -> dict[str, Any]:
        """Everything that changes the output (the model file by content, not by path)."""
        s: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "model_sha256": self.model_sha256,
            "input_size": list(self.input_hw),
            "score_threshold": self.score_threshold,
            "nms_threshold": self.nms_threshold,
        }
        if self.kind == "retinaface":
            s.update(confidence_threshold=self.confidence_threshold, top_k=self.top_k, keep_top_k=self.keep_top_k)
        return s

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Faces in an RGB uint8 photo ``(H, W, 3)``, in photo pixels, by descending score."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ImageError(
                "detectors take an RGB uint8 array of shape (H, W, 3) (use xaiface.io.load_image); got "
                f"{type(image).__name__} {getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}"
            )
        letterbox = Letterbox.fit(image.shape[:2], self.input_hw)
        blob = _network_input(letterbox.apply(np.ascontiguousarray(image)), self.kind)
        try:
            outputs = self._session.run(None, {self._input_name: blob})
        except Exception as e:  # onnxruntime raises its own untyped errors
            raise WeightsError(f"model {self.model_path} failed on a {blob.shape} input: {_first_line(e)}") from None
        if not all(np.isfinite(o).all() for o in outputs):
            raise NumericalError(f"model {self.model_path} produced NaN or infinite outputs")
        try:
            if self.kind == "scrfd":
                return decode_scrfd(outputs, letterbox, score_threshold=self.score_threshold,
                                    nms_threshold=self.nms_threshold, detector=self.name)
            return decode_retinaface(outputs, letterbox, score_threshold=self.score_threshold,
                                     nms_threshold=self.nms_threshold,
                                     confidence_threshold=self.confidence_threshold, top_k=self.top_k,
                                     keep_top_k=self.keep_top_k, detector=self.name)
        except WeightsError as e:
            raise WeightsError(f"model {self.model_path}: {e}") from None


def _network_input(canvas: np.ndarray, kind: str) -> np.ndarray:
    """``(h, w, 3)`` uint8 RGB canvas -> ``(1, 3, h, w)`` float32 network input of ``kind``."""
    p = _PREPROCESSING[kind]
    x = canvas[..., ::-1] if p.color_order == "BGR" else canvas
    x = (x.astype(np.float32) - np.asarray(p.mean, dtype=np.float32)) / np.float32(p.std)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _sha256(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError as e:
        raise WeightsError(f"cannot read ONNX model file {path}: {e}") from None


def _model_kind(session: Any, path: Path, kind: str) -> str:
    """The decoder that fits the model's outputs (count, and widths where they are fixed)."""
    outputs = session.get_outputs()
    n = len(outputs)
    found = "scrfd" if n in _SCRFD_LAYOUTS else "retinaface" if n == 3 else None
    shapes = ", ".join(str(o.shape) for o in outputs)
    if found is None or (kind != "auto" and kind != found):
        wanted = {"auto": "3 outputs (RetinaFace) or 6, 9, 10 or 15 (SCRFD)",
                  "retinaface": "3 outputs (loc, conf, landms)",
                  "scrfd": "6 or 9 outputs (scores, box distances[, keypoints] at strides 8, 16, 32) or 10 or 15"}[kind]
        raise WeightsError(f"model {path}: expected {wanted}; it has {n} outputs of shapes {shapes}")
    if found == "scrfd":
        strides, _, with_kps = _SCRFD_LAYOUTS[n]
        widths = ([1, 4, 10] if with_kps else [1, 4]) * len(strides)
    else:
        widths = list(_RETINAFACE_WIDTHS)
    fixed = sorted(o.shape[-1] for o in outputs if o.shape and isinstance(o.shape[-1], int))
    if len(fixed) == n and fixed != sorted(widths):
        raise WeightsError(
            f"model {path}: a {found} model's outputs end in widths {sorted(widths)}; it has shapes {shapes}"
        )
    return found


def _model_input(session: Any, path: Path, kind: str, input_size: int | None) -> tuple[str, tuple[int, int]]:
    """The input's name and the canvas ``(h, w)`` to feed it."""
    inputs = session.get_inputs()
    shape = list(inputs[0].shape) if len(inputs) == 1 else []
    if (len(shape) != 4 or inputs[0].type != "tensor(float)"
            or (isinstance(shape[1], int) and shape[1] != 3)):
        described = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
        raise WeightsError(f"model {path}: expected one float image input of shape (1, 3, H, W); it has {described}")
    if input_size is not None and int(input_size) < 1:
        raise ConfigError(f"input_size must be a positive number of pixels, got {input_size!r}")
    fixed = tuple(shape[2:]) if all(isinstance(d, int) and d > 0 for d in shape[2:]) else None
    if fixed is not None:
        if input_size is not None and (int(input_size), int(input_size)) != fixed:
            raise ConfigError(
                f"model {path} takes a fixed {fixed[0]}x{fixed[1]} input; input_size={input_size} does not fit "
                "(leave it unset)"
            )
        return inputs[0].name, (int(fixed[0]), int(fixed[1]))
    size = DEFAULT_INPUT_SIZE if input_size is None else int(input_size)
    if kind == "scrfd":
        largest = max(_SCRFD_LAYOUTS[len(session.get_outputs())][0])
        if size % largest:
            raise ConfigError(f"a SCRFD model needs an input_size divisible by {largest}, got {size}")
    return inputs[0].name, (size, size)


def _factory(name: str, kind: str, model_path: str | os.PathLike | None, weights: str | os.PathLike | None,
             kwargs: dict[str, Any]) -> RetinaFaceOnnxDetector:
    path = model_path if model_path is not None else weights  # ``weights=`` as for get_model
    if path is None:
        raise ConfigError(f"detector {name} needs model_path=<your ONNX file>; no weights are bundled")
    return RetinaFaceOnnxDetector(path, kind=kind, **kwargs)


@register_detector("retinaface-onnx", "RetinaFace (biubug6) or SCRFD (insightface) from your ONNX file; "
                   "kind inferred from its outputs")
def _retinaface_onnx(model_path: str | os.PathLike | None = None, weights: str | os.PathLike | None = None,
                     kind: str = "auto", **kwargs: Any) -> RetinaFaceOnnxDetector:
    return _factory("retinaface-onnx", kind, model_path, weights, kwargs)


@register_detector("scrfd-onnx", "insightface SCRFD (det_500m, det_2.5g, det_10g) from your ONNX file")
def _scrfd_onnx(model_path: str | os.PathLike | None = None, weights: str | os.PathLike | None = None,
                **kwargs: Any) -> RetinaFaceOnnxDetector:
    if kwargs.pop("kind", "scrfd") != "scrfd":
        raise ConfigError("detector scrfd-onnx decodes SCRFD models only; use retinaface-onnx for other kinds")
    return _factory("scrfd-onnx", "scrfd", model_path, weights, kwargs)
