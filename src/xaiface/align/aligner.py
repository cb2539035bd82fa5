"""Alignment geometries: from a detected face to a model's aligned crop.

Two geometries ship, each model declares which it needs (``ModelSpec.preprocessing.geometry``):

* ``arcface-<S>``: the five landmarks mapped by a least-squares similarity transform onto
  insightface's 112x112 template (scaled by S/112), border 0; ``arcface-112`` is ArcFace's.
  ``arcface-<S>-zoom<Z>``: the same template zoomed out Z times about the crop centre (S/2, S/2),
  so that the face fills 1/Z of the crop (``arcface-224-zoom1.4``: HSE FaceRes's crops).
* ``dlib-150``: dlib's face chip (``get_face_chip(img, shape, size=150, padding=0.25)``), from
  dlib's 5-point shape. The chip rectangle and angle come from dlib's
  ``get_face_chip_details`` and the warp is ours (bilinear, values truncated as dlib does), so
  the chip equals dlib's to within rounding of a few pixels and the transform is kept. Deviation:
  dlib first down-samples through an image pyramid when the chip's source rectangle exceeds
  ~4x150^2 pixels; we sample the photo directly (only matters for faces above ~300 px).
  When a detector gives no dlib 5-point shape (e.g. RetinaFace), the chip is made from the five
  ArcFace-order landmarks with :data:`DLIB150_TEMPLATE`.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..types import AlignedFace, DetectedFace
from .geometry import ARCFACE_TEMPLATE_112, similarity_transform, warp_image

#: Mean positions of the five ArcFace-order landmarks (eye centres, nose tip, mouth corners,
#: from dlib's 68-point model) inside dlib's 150x150 chips (padding 0.25), measured on 199 LFW
#: faces of folds 1-2 (std 1.5-1.8 px for the eyes, 5-7 px for nose and mouth) (see ``benchmarks/estimate_dlib_template.py``). Used only for detectors
#: that give no dlib 5-point shape.
DLIB150_TEMPLATE = np.array(
    [[47.2, 46.2], [99.9, 46.0], [73.5, 76.1], [49.9, 104.3], [97.2, 104.3]], dtype=np.float64
)


def _dlib_chip_matrix(face: DetectedFace, size: int = 150, padding: float = 0.25) -> np.ndarray:
    import dlib

    pts = np.asarray(face.landmarks_dlib5, dtype=np.float64)
    x1, y1, x2, y2 = (int(round(v)) for v in face.box)
    shape = dlib.full_object_detection(
        dlib.rectangle(x1, y1, x2, y2), [dlib.point(int(round(x)), int(round(y))) for x, y in pts]
    )
    cd = dlib.get_face_chip_details(shape, size, padding)
    r = cd.rect
    c = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
    a = cd.angle
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = np.array([[r.left(), r.top()], [r.right(), r.top()], [r.right(), r.bottom()], [r.left(), r.bottom()]])
    src = (corners - c) @ rot.T + c
    s = size - 1
    return similarity_transform(src, np.array([[0, 0], [s, 0], [s, s], [0, s]], dtype=np.float64))


def alignment_matrix(face: DetectedFace, geometry: str) -> tuple[np.ndarray, int]:
    """The ``(2, 3)`` photo-to-crop matrix and crop size of ``geometry`` for ``face``."""
    if not np.all(np.isfinite(face.landmarks)):
        raise ConfigError(
            f"face at box {np.round(face.box, 1).tolist()} has no usable landmarks (detector {face.detector!r} "
            "gave none); alignment needs five landmarks"
        )
    if geometry.startswith("arcface-"):
        size, zoom = _size(geometry), _zoom(geometry)
        return similarity_transform(face.landmarks, arcface_template(size, zoom)), size
    if geometry.startswith("dlib-"):
        size = _size(geometry)
        if face.landmarks_dlib5 is not None:
            return _dlib_chip_matrix(face, size), size
        return similarity_transform(face.landmarks, DLIB150_TEMPLATE * (size / 150.0)), size
    raise ConfigError(f"unknown alignment geometry {geometry!r}; expected 'arcface-<size>' or 'dlib-<size>'")


def arcface_template(size: int, zoom: float = 1.0) -> np.ndarray:
    """insightface's five-point template scaled to ``size`` and zoomed out ``zoom`` times about the crop centre."""
    c = size / 2.0
    return c + (ARCFACE_TEMPLATE_112 * (size / 112.0) - c) / zoom


def _zoom(geometry: str) -> float:
    parts = geometry.split("-")
    if len(parts) < 3:
        return 1.0
    if len(parts) > 3 or not parts[2].startswith("zoom"):
        raise ConfigError(f"alignment geometry {geometry!r}: expected 'arcface-<size>' or 'arcface-<size>-zoom<factor>'")
    try:
        zoom = float(parts[2][4:])
    except ValueError:
        raise ConfigError(f"alignment geometry {geometry!r}: the zoom factor must be a number (e.g. 'arcface-224-zoom1.4')") from None
    if not 0.25 <= zoom <= 4.0:
        raise ConfigError(f"alignment geometry {geometry!r}: the zoom factor must be within 0.25..4")
    return zoom


def _size(geometry: str) -> int:
    try:
        size = int(geometry.split("-")[1])
    except ValueError:
        raise ConfigError(f"alignment geometry {geometry!r} has no crop size (e.g. 'arcface-112')") from None
    if not 16 <= size <= 1024:
        raise ConfigError(f"alignment geometry {geometry!r}: crop size must be within 16..1024")
    return size


def align_face(image: np.ndarray, face: DetectedFace, geometry: str, source: str | None = None) -> AlignedFace:
    """Cut the aligned crop of ``face`` out of the RGB photo ``image`` ``(H, W, 3)`` uint8."""
    matrix, size = alignment_matrix(face, geometry)
    rounding = "floor" if geometry.startswith("dlib-") else "nearest"
    crop = warp_image(image, matrix, size, rounding=rounding)
    return AlignedFace(crop, matrix, geometry, tuple(image.shape[:2]), face, source)
