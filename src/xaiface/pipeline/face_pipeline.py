"""The verification pipeline: image in -> detect -> align -> embed -> compare.

:class:`FacePipeline` ties a detector, an alignment geometry (the model's) and a recogniser
together and answers ``verify(a, b)`` with a :class:`~xaiface.types.PairVerdict`.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch

from ..align import align_face
from ..detect.base import Detector, get_detector, select_faces
from ..detect.cache import CachedDetector, DetectionCache
from ..errors import NoFaceError
from ..io import ImageSource, load_image
from ..models.base import FaceModel, crops_to_tensor
from ..models.registry import DEFAULT_MODEL, get_model
from ..models.thresholds import OperatingPoint, WithOperatingPoint
from ..types import AlignedFace, DetectedFace, PairVerdict
from .batch import embed_crops, mirror_average


class FacePipeline(WithOperatingPoint):
    """Detector + alignment + model, with the model's calibrated threshold.

    Args:
        model: a registered name or a :class:`FaceModel`.
        detector: a registered name or a :class:`Detector`.
        weights: weight file for ``model`` (see :func:`~xaiface.models.get_model`).
        select: which face when a photo has several: ``"largest"`` (default), ``"center"``,
            ``"score"``.
        flip: embed each face as the normalised sum of the embeddings of the crop and its
            mirror image (test-time augmentation; thresholds are calibrated for each setting).
        threshold: a name from the model's calibration (``"eer"``, ``"fmr=1e-2"``,
            ``"fmr=1e-3"``, for the ``flip`` setting), a number (cosine similarity, labelled
            ``"user"``; ``>=`` means match) or an :class:`OperatingPoint`; NaN, infinite or
            outside [-1, 1] is a ConfigError. ``self.operating_point`` holds it.
        cache: detection cache: ``True`` for the default location, a path, or ``False``.
        detector_kwargs: passed to the detector's factory.
    """

    def __init__(self, model: str | FaceModel = DEFAULT_MODEL, detector: str | Detector = "dlib-hog", *,
                 weights: Any = None, select: str = "largest", flip: bool = False,
                 threshold: str | float | OperatingPoint = "eer", cache: bool | str | os.PathLike = False,
                 detector_kwargs: dict[str, Any] | None = None):
        self.model = model if isinstance(model, FaceModel) else get_model(model, weights=weights)
        det = detector if isinstance(detector, Detector) else get_detector(detector, **(detector_kwargs or {}))
        if cache is not False and cache is not None:
            det = CachedDetector(det, DetectionCache(None if cache is True else cache))
        self.detector = det
        self.select = select
        self.flip = bool(flip)
        self.operating_point = self.model.spec.operating_point(threshold, flip=self.flip)

    # ---- stages --------------------------------------------------------------------------
    def load(self, source: ImageSource) -> np.ndarray:
        return load_image(source)

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        return self.detector.detect(image)

    def align(self, source: ImageSource, select: str | None = None, name: str | None = None) -> AlignedFace:
        """Load, detect, pick one face and align it to the model's geometry."""
        label = name or (str(source) if isinstance(source, (str, os.PathLike)) else None)
        image = load_image(source, name=label)
        face = select_faces(self.detect(image), image.shape, select or self.select, source=label,
                            detector=self.detector)[0]
        return align_face(image, face, self.model.spec.preprocessing.geometry, source=label)

    def align_all(self, source: ImageSource, name: str | None = None) -> list[AlignedFace]:
        """Every face in a photo, aligned (largest first); empty list when none."""
        label = name or (str(source) if isinstance(source, (str, os.PathLike)) else None)
        image = load_image(source, name=label)
        try:
            faces = select_faces(self.detect(image), image.shape, "all", source=label)
        except NoFaceError:
            return []
        return [align_face(image, f, self.model.spec.preprocessing.geometry, source=label) for f in faces]

    def embed_aligned(self, crops: Sequence[AlignedFace] | np.ndarray, batch_size: int = 32) -> np.ndarray:
        """L2-normalised embeddings ``(B, D)`` of aligned crops (flip-averaged if ``self.flip``)."""
        arr = np.stack([c.image for c in crops]) if not isinstance(crops, np.ndarray) else crops
        if not self.flip:
            return self.model.embed(arr, batch_size=batch_size)
        return mirror_average(*embed_crops(self.model, arr, batch_size))

    def embed(self, source: ImageSource) -> np.ndarray:
        return self.embed_aligned([self.align(source)])[0]

    def similarity(self, a: AlignedFace, b: AlignedFace) -> float:
        from ..verify.similarity import pair_similarity  # the scoring path the thresholds were calibrated with

        e = self.embed_aligned([a, b])
        return pair_similarity(e[0], e[1])

    def verify(self, a: ImageSource, b: ImageSource) -> PairVerdict:
        """Compare the faces of two photos. Raises NoFaceError naming the photo without a face."""
        fa, fb = self.align(a), self.align(b)
        s = self.similarity(fa, fb)
        return PairVerdict(
            similarity=s, threshold=self.threshold, match=s >= self.threshold, model=self.model.spec.name,
            threshold_name=self.threshold_name, detector=self.detector.name, faces=(fa.face, fb.face),
            sources=(fa.source, fb.source), weights_sha256=self.model.weights_sha256,
        )

    def pixels(self, crops: Sequence[AlignedFace]) -> torch.Tensor:
        """Float RGB pixels ``(B, 3, S, S)`` in 0..255 of aligned crops, for white-box methods."""
        return crops_to_tensor([c.image for c in crops])
