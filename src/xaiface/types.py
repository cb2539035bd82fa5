"""Small typed objects that travel between pipeline stages.

Coordinates are in pixels of the image they refer to, x to the right, y down, with the
centre of the top-left pixel at (0, 0). Images are ``uint8`` arrays ``(H, W, 3)`` in RGB.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Names of the five landmarks, in the order every detector returns them (ArcFace order):
#: the eye and mouth corner on the image's left come first.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose_tip", "left_mouth", "right_mouth")


@dataclass(frozen=True)
class DetectedFace:
    """One face found in a photo.

    Attributes:
        box: ``(4,)`` float ``x1, y1, x2, y2`` in photo pixels.
        score: detector confidence (detector-specific scale; higher is more confident).
        landmarks: ``(5, 2)`` float, eye centres, nose tip, mouth corners (see ``LANDMARK_NAMES``).
        landmarks_dlib5: ``(5, 2)`` float, dlib's 5-point shape (eye corners, nose base) when the
            detector has it; dlib's own chip geometry is computed from it.
        detector: the name of the detector that produced it.
        fallback: True when no face was detected and the box is a documented fallback.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    landmarks_dlib5: np.ndarray | None = None
    detector: str = ""
    fallback: bool = False

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = (float(v) for v in self.box)
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)

    @property
    def center(self) -> np.ndarray:
        b = np.asarray(self.box, dtype=np.float64)
        return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "box": [round(float(v), 2) for v in self.box],
            "score": float(self.score),
            "landmarks": np.round(np.asarray(self.landmarks, dtype=float), 2).tolist(),
            "detector": self.detector,
            "fallback": self.fallback,
        }
        if self.landmarks_dlib5 is not None:
            d["landmarks_dlib5"] = np.round(np.asarray(self.landmarks_dlib5, dtype=float), 2).tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DetectedFace":
        return cls(
            box=np.asarray(d["box"], dtype=np.float64),
            score=float(d["score"]),
            landmarks=np.asarray(d["landmarks"], dtype=np.float64).reshape(5, 2),
            landmarks_dlib5=None if d.get("landmarks_dlib5") is None else np.asarray(d["landmarks_dlib5"], dtype=np.float64).reshape(5, 2),
            detector=d.get("detector", ""),
            fallback=bool(d.get("fallback", False)),
        )


@dataclass(frozen=True)
class AlignedFace:
    """A face crop in a model's geometry, with the transform that made it.

    Attributes:
        image: ``(S, S, 3)`` uint8 RGB crop.
        matrix: ``(2, 3)`` float64 affine map from photo pixel coordinates to crop coordinates
            (``crop_xy = matrix[:, :2] @ photo_xy + matrix[:, 2]``).
        geometry: the alignment geometry's name (``"arcface-112"``, ``"dlib-150"``, ...).
        photo_shape: ``(H, W)`` of the photo it was cut from.
        face: the detection it was aligned from.
        source: where the photo came from (a path or a label), for messages and reports.
    """

    image: np.ndarray
    matrix: np.ndarray
    geometry: str
    photo_shape: tuple[int, int]
    face: DetectedFace | None = None
    source: str | None = None

    @classmethod
    def from_crop(cls, crop: Any, source: str | None = None) -> "AlignedFace":
        """A crop already in a model's geometry, without a photo: identity ``matrix``, geometry ``crop-<S>``.

        ``crop`` is an ``(S, S, 3)`` array (it is not checked here; the explainers check it).
        """
        arr = np.asarray(crop)
        s = arr.shape[0] if arr.ndim == 3 else 0
        return cls(arr, np.array([[1.0, 0, 0], [0, 1.0, 0]]), f"crop-{s}", (s, arr.shape[1] if arr.ndim == 3 else 0),
                   source=source)

    @property
    def size(self) -> int:
        return int(self.image.shape[0])

    @property
    def inverse_matrix(self) -> np.ndarray:
        """``(2, 3)`` affine map from crop coordinates back to photo coordinates."""
        a = np.vstack([self.matrix, [0.0, 0.0, 1.0]])
        return np.linalg.inv(a)[:2]


@dataclass(frozen=True)
class PairVerdict:
    """The outcome of comparing two faces.

    ``weights_sha256`` is the SHA-256 of the model's weight file (``None`` for random or
    in-memory weights), so that a recorded verdict names the exact weights that produced it.
    """

    similarity: float
    threshold: float
    match: bool
    model: str
    threshold_name: str = "eer"
    detector: str = ""
    faces: tuple[DetectedFace | None, DetectedFace | None] = field(default=(None, None))
    sources: tuple[str | None, str | None] = field(default=(None, None))
    weights_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "similarity": round(float(self.similarity), 6),
            "threshold": round(float(self.threshold), 6),
            "threshold_name": self.threshold_name,
            "decision": "match" if self.match else "no match",
            "match": bool(self.match),
            "model": self.model,
            "weights_sha256": self.weights_sha256,
            "detector": self.detector,
            "images": [s for s in self.sources],
            "faces": [None if f is None else f.to_dict() for f in self.faces],
        }
