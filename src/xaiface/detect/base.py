"""The detector contract and registry.

A :class:`Detector` takes an RGB ``uint8`` photo ``(H, W, 3)`` and returns every face it finds as
:class:`~xaiface.types.DetectedFace` (box, score, five landmarks), sorted by descending score.
:func:`select_faces` picks the face(s) a caller wants; :class:`~xaiface.errors.NoFaceError` when
there are none.
"""
from __future__ import annotations

import fnmatch
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError, ModelNotFoundError, NoFaceError
from ..types import DetectedFace


class Detector:
    """Base class of face detectors.

    Subclasses set ``name`` and implement :meth:`detect`. :meth:`settings` returns everything
    that changes the output (used as the detection cache key).
    """

    name: str = "detector"

    def detect(self, image: np.ndarray) -> list[DetectedFace]:  # pragma: no cover - abstract
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def __call__(self, image: np.ndarray) -> list[DetectedFace]:
        return self.detect(image)


SELECTIONS = ("largest", "center", "score", "all")


def select_faces(faces: list[DetectedFace], image_shape: tuple[int, ...], select: str = "largest",
                 source: str | None = None) -> list[DetectedFace]:
    """Pick faces from a detector's output.

    Args:
        faces: detections.
        image_shape: the photo's shape (for ``"center"``).
        select: ``"largest"`` (box area), ``"center"`` (box centre nearest the photo centre),
            ``"score"`` (highest score) or ``"all"`` (every face, largest first).
        source: the photo's name, for the error message.
    Returns:
        a list with one face (or all of them for ``"all"``).
    Raises:
        NoFaceError: when ``faces`` is empty.
    """
    if select not in SELECTIONS:
        raise ConfigError(f"face selection must be one of {SELECTIONS}, got {select!r}")
    if not faces:
        raise NoFaceError(f"no face found in {source or 'the image'}")
    if select == "all":
        return sorted(faces, key=lambda f: -f.area)
    if select == "largest":
        return [max(faces, key=lambda f: f.area)]
    if select == "score":
        return [max(faces, key=lambda f: f.score)]
    h, w = image_shape[:2]
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    return [min(faces, key=lambda f: float(np.linalg.norm(f.center - c)))]


_DETECTORS: dict[str, tuple[Callable[..., Detector], str]] = {}
DEFAULT_DETECTOR = "dlib-hog"


def register_detector(name: str, description: str = "") -> Callable[[Callable[..., Detector]], Callable[..., Detector]]:
    """Decorator registering a detector factory ``factory(**kwargs) -> Detector``."""

    def deco(factory: Callable[..., Detector]) -> Callable[..., Detector]:
        _DETECTORS[name] = (factory, description)
        return factory

    return deco


def _ensure_loaded() -> None:
    from . import dlib_detectors, retinaface  # noqa: F401  (importing registers them)


def list_detectors(pattern: str = "*") -> list[str]:
    _ensure_loaded()
    return sorted(n for n in _DETECTORS if fnmatch.fnmatch(n, pattern))


def detector_description(name: str) -> str:
    _ensure_loaded()
    return _DETECTORS[name][1] if name in _DETECTORS else ""


def get_detector(name: str = DEFAULT_DETECTOR, **kwargs: Any) -> Detector:
    """Build a registered detector (``dlib-hog``, ``dlib-mmod``, ``retinaface-onnx``...)."""
    _ensure_loaded()
    if name not in _DETECTORS:
        raise ModelNotFoundError(f"unknown detector {name!r}; registered detectors: {', '.join(sorted(_DETECTORS))}")
    return _DETECTORS[name][0](**kwargs)
