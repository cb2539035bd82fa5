"""The detector contract and registry.

A :class:`Detector` takes an RGB ``uint8`` photo ``(H, W, 3)`` and returns every face it finds as
:class:`~xaiface.types.DetectedFace` (box, score, five landmarks), sorted by descending score.
:func:`select_faces` picks the face(s) a caller wants; :class:`~xaiface.errors.NoFaceError` when
there are none.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import ConfigError, NoFaceError
from ..registry import Registry
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


SMALL_PHOTO_SIDE = 150
"""Photos with a shorter side below this (pixels) get the small-photo hint when no face is found."""


def no_face_hint(image_shape: tuple[int, ...], detector: Detector | dict[str, Any] | None = None) -> str:
    """What to try when ``detector`` found no face in a photo of ``image_shape`` ("" for nothing).

    A small photo (shorter side below :data:`SMALL_PHOTO_SIDE`) is most often a tight crop whose
    face fills the frame, which dlib's HOG detector misses: the padded retry or dlib's MMOD
    detector find such faces; a small face in a small photo needs more upsampling.
    """
    settings = detector.settings() if isinstance(detector, Detector) else dict(detector or {})
    name = settings.get("name")
    h, w = (int(v) for v in image_shape[:2])
    tries = []
    if min(h, w) < SMALL_PHOTO_SIDE:
        if name == "dlib-hog" and not settings.get("pad_retry"):
            tries.append("--pad-retry (detect again with a border, for a face that fills the frame)")
        if name != "dlib-mmod":
            tries.append("--detector dlib-mmod")
        if "upsample" in settings and int(settings["upsample"]) < 2:
            tries.append("--upsample 2 (for a small face)")
        return f"; the photo is only {w}x{h} pixels: try {', or '.join(tries)}" if tries else ""
    if name == "dlib-hog":
        return "; if it shows a face (turned, tilted or partly hidden), try --detector dlib-mmod"
    return ""


def select_faces(faces: list[DetectedFace], image_shape: tuple[int, ...], select: str = "largest",
                 source: str | None = None, detector: Detector | dict[str, Any] | None = None) -> list[DetectedFace]:
    """Pick faces from a detector's output.

    Args:
        faces: detections.
        image_shape: the photo's shape (for ``"center"`` and the no-face hint).
        select: ``"largest"`` (box area), ``"center"`` (box centre nearest the photo centre),
            ``"score"`` (highest score) or ``"all"`` (every face, largest first).
        source: the photo's name, for the error message.
        detector: the detector (or its settings) that gave ``faces``: the no-face message then
            says what may find the face (see :func:`no_face_hint`).
    Returns:
        a list with one face (or all of them for ``"all"``).
    Raises:
        NoFaceError: when ``faces`` is empty.
    """
    if select not in SELECTIONS:
        raise ConfigError(f"face selection must be one of {SELECTIONS}, got {select!r}")
    if not faces:
        raise NoFaceError(f"no face found in {source or 'the image'}" + no_face_hint(image_shape, detector))
    if select == "all":
        return sorted(faces, key=lambda f: -f.area)
    if select == "largest":
        return [max(faces, key=lambda f: f.area)]
    if select == "score":
        return [max(faces, key=lambda f: f.score)]
    h, w = image_shape[:2]
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    return [min(faces, key=lambda f: float(np.linalg.norm(f.center - c)))]


#: detector factories ``factory(**kwargs) -> Detector``, each with its ``description``
DETECTORS: Registry[Callable[..., Detector]] = Registry(
    "detector", builtins=("xaiface.detect.dlib_detectors", "xaiface.detect.retinaface"))
DEFAULT_DETECTOR = "dlib-hog"


def register_detector(name: str, description: str = "") -> Callable[[Callable[..., Detector]], Callable[..., Detector]]:
    """Decorator registering a detector factory ``factory(**kwargs) -> Detector`` (a duplicate name: ConfigError)."""
    return DETECTORS.register(name, description=description)


def list_detectors(pattern: str = "*") -> list[str]:
    """Registered detector names matching a shell-style wildcard, sorted."""
    return DETECTORS.list(pattern)


def detector_description(name: str) -> str:
    return DETECTORS.meta(name)["description"] if name in DETECTORS else ""


def get_detector(name: str = DEFAULT_DETECTOR, **kwargs: Any) -> Detector:
    """Build a registered detector (``dlib-hog``, ``dlib-mmod``, ``retinaface-onnx``...)."""
    return DETECTORS.get(name)(**kwargs)
