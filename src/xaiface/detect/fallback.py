"""The documented rule for photos where the detector finds no face.

Such photos are not dropped from a data-set run: they take the *median box* of the faces
selected in the other photos of the same run, with landmarks from dlib's shape predictors inside
that box (a :class:`~xaiface.types.DetectedFace` marked ``fallback=True``). On LFW's deep-funneled
photos, where the labelled face is centred and about the same size in every photo, this box is
(67, 80, 176, 188) for the HOG detector. Every stage that runs over a data set uses these two
functions (``eval lfw``, Patch-LFW, LIBF, soft biometrics, factor studies).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from ..errors import DatasetError
from ..types import DetectedFace


def median_box(faces: Iterable[DetectedFace]) -> np.ndarray:
    """``(4,)`` the element-wise median of the faces' boxes ``x1, y1, x2, y2``.

    Raises:
        DatasetError: no face to take it from.
    """
    boxes = [f.box for f in faces]
    if not boxes:
        raise DatasetError("no face detected in any photo of the run; nothing to take a fallback box from")
    return np.median(np.stack(boxes), axis=0)


def box_landmarker(detector: str = "dlib-hog", detector_kwargs: Mapping[str, Any] | None = None):
    """A detector that can place landmarks inside a given box (``face_in_box``): ``detector`` itself
    when it can (the dlib detectors), else ``dlib-hog`` (dlib's shape predictors)."""
    from .base import get_detector

    det = get_detector(detector, **dict(detector_kwargs or {}))
    return det if hasattr(det, "face_in_box") else get_detector("dlib-hog")


def fallback_face(image: np.ndarray, box: np.ndarray, landmarker: Any = None) -> DetectedFace:
    """The fallback face of a photo: landmarks inside ``box``, marked ``fallback=True``."""
    det = landmarker if landmarker is not None else box_landmarker()
    return det.face_in_box(image, np.asarray(box, dtype=np.float64))
