"""LFW photos aligned for a model the way ``xaiface eval lfw`` aligns them.

Detection is cached on disk (:class:`~xaiface.detect.DetectionCache`) and run on worker
processes for the misses (:func:`~xaiface.detect.batch.detect_many`); one face per photo is
selected (``center`` by default: LFW photos are centred on the labelled person); a photo without
a detected face gets the documented fallback of :mod:`xaiface.verify.lfw_eval`: the median box of
the faces selected in the other photos of the same call, with landmarks from dlib's shape
predictor inside it. The fallback box therefore depends on which photos a call aligns: a subset
of LFW gets the median over that subset (as ``xaiface eval lfw --pairs-per-fold`` does).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from ..align import align_face
from ..detect.base import select_faces
from ..detect.batch import detect_many
from ..detect.cache import DetectionCache
from ..detect.fallback import box_landmarker, fallback_face, median_box
from ..errors import DatasetError
from ..io import load_image
from ..types import DetectedFace
from ..verify.lfw_eval import load_shape


@dataclass
class ChosenFaces:
    """One face per photo.

    Attributes:
        faces: photo path -> the selected (or fallback) face.
        no_face: photos where the detector found nothing (they hold a fallback face).
        fallback_box: ``(4,)`` the median box used for them (``None`` when every photo had a face).
        detections_computed, detections_cached: where the detections came from.
    """

    faces: dict[str, DetectedFace]
    no_face: list[str]
    fallback_box: np.ndarray | None
    detections_computed: int
    detections_cached: int


def _detection_cache(cache: str | os.PathLike | bool | None) -> DetectionCache | None:
    if cache is False or cache is None:
        return None
    return DetectionCache(None if cache is True else cache)


def choose_faces(paths: Iterable[str | os.PathLike], detector: str = "dlib-hog", detector_kwargs: dict[str, Any] | None = None,
                 select: str = "center", cache: str | os.PathLike | bool | None = True, workers: int | None = None,
                 progress: bool = True) -> ChosenFaces:
    """Detect, select one face per photo, and give photos without a face the median-box fallback.

    Args:
        paths: photos (duplicates are fine). detector, detector_kwargs: a registered detector.
        select: ``center`` (default, as ``xaiface eval lfw``), ``largest`` or ``score``.
        cache: ``True`` (the default cache file), a cache file, or ``False`` (no cache).
        workers: detection processes for the cache misses (default 2).
    Raises:
        DatasetError: a photo cannot be read, or no photo has a face at all.
    """
    paths = list(dict.fromkeys(str(p) for p in paths))
    kwargs = detector_kwargs or {}
    found = detect_many(paths, detector, kwargs, cache=_detection_cache(cache), workers=workers, progress=progress)
    if found.errors:
        raise DatasetError("unreadable photos: " + "; ".join(f"{k}: {v}" for k, v in list(found.errors.items())[:5]))
    faces = {p: select_faces(f, load_shape(p), select, source=p)[0] for p, f in found.faces.items() if f}
    no_face = [p for p in paths if p not in faces]
    box = None
    if no_face:
        box = median_box(faces.values())
        det = box_landmarker(detector, kwargs)
        for p in no_face:
            faces[p] = fallback_face(load_image(p), box, det)
    return ChosenFaces(faces, no_face, box, found.computed, found.cached)


def align_photos(paths: Iterable[str | os.PathLike], geometry: str, progress: bool = True,
                 **choose: Any) -> tuple[dict[str, np.ndarray], ChosenFaces]:
    """Aligned crops ``(S, S, 3)`` uint8 of each photo in ``geometry`` (e.g. ``"dlib-150"``).

    ``choose`` goes to :func:`choose_faces`. Returns ``(path -> crop, the chosen faces)``.
    """
    from tqdm import tqdm

    paths = list(dict.fromkeys(str(p) for p in paths))
    chosen = choose_faces(paths, progress=progress, **choose)
    crops = {p: align_face(load_image(p), chosen.faces[p], geometry).image
             for p in tqdm(paths, desc=f"align ({geometry})", disable=not progress, unit="img")}
    return crops, chosen
