"""Many photos at once: one face per photo, its embedding and its traits, cached by content.

The steps of every data-set run of this stage (LFW analysis, estimator accuracy, body-mass
training, disentangling):

1. :func:`locate_faces`: detect every photo (the project's detection cache and worker
   processes), pick one face per photo, and give photos without a detection a documented
   fallback box instead of dropping them: the median selected box of the run (``"median"``, as
   ``xaiface eval lfw`` does for LFW's centred photos) or the whole photo (``"image"``, for data
   sets of already-cropped faces such as UTKFace and VIP_attribute); landmarks inside the
   fallback box come from dlib's shape predictors.
2. :func:`embed_faces`: the recogniser's embeddings of those faces (plain and mirrored crops,
   stored; combined on demand).
3. :func:`estimate_traits`: every estimator's traits of those faces.

Steps 2 and 3 keep each result in a :class:`~xaiface.soft.store.ResultStore` keyed by pixel
content, face and producer settings, write as they go (an interrupted run resumes where it
stopped) and show progress bars. A photo that fails is recorded with its message; the run goes on.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..align import align_face
from ..errors import XaifaceError
from ..io import array_sha256, load_image
from ..types import DetectedFace
from .store import ResultStore, open_store, result_key
from .traits import FaceTraits, Trait, TraitEstimator


@dataclass
class LocatedFaces:
    """One face per photo. ``fallback``: photo -> how its box was made when nothing was detected."""

    faces: dict[str, DetectedFace]
    fallback: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    several_faces: int = 0

    def summary(self) -> dict[str, Any]:
        return {"photos": len(self.faces) + len(self.errors), "faces": len(self.faces),
                "fallback_boxes": len(self.fallback), "errors": len(self.errors),
                "photos_with_several_faces": self.several_faces}


def locate_faces(paths: Iterable[str | os.PathLike], *, detector: str = "dlib-hog",
                 detector_kwargs: Mapping[str, Any] | None = None, select: str = "center",
                 fallback: str = "median", cache: Any = True, workers: int | None = None,
                 progress: bool = True) -> LocatedFaces:
    """Detect every photo and keep one face each (see the module docstring).

    Args:
        select: ``"center"``, ``"largest"`` or ``"score"`` (see :func:`xaiface.detect.base.select_faces`).
        fallback: ``"median"`` (median selected box of the run) or ``"image"`` (the whole photo).
        cache: the detection cache: ``True`` (default location), a path, a
            :class:`~xaiface.detect.cache.DetectionCache`, or ``False``.
    """
    from ..detect.base import select_faces
    from ..detect.batch import detect_many
    from ..detect.cache import DetectionCache
    from ..detect.fallback import box_landmarker, fallback_face, median_box
    from ..errors import ConfigError
    from ..verify.lfw_eval import load_shape

    if fallback not in ("median", "image"):
        raise ConfigError(f"fallback must be 'median' or 'image', got {fallback!r}")
    paths = [str(p) for p in paths]
    kwargs = dict(detector_kwargs or {})
    det_cache = cache if isinstance(cache, DetectionCache) else (
        None if cache is False else DetectionCache(None if cache is True or cache is None else cache))
    if len(paths) <= _IN_PROCESS:  # a few photos: worker processes would cost more than they save
        found_faces, found_errors = _detect_here(paths, detector, kwargs, det_cache)
    else:
        found = detect_many(paths, detector, kwargs, cache=det_cache, workers=workers, progress=progress)
        found_faces, found_errors = found.faces, found.errors
    out = LocatedFaces({}, errors=dict(found_errors))
    for p in paths:
        fs = found_faces.get(p)
        if fs:
            out.faces[p] = select_faces(fs, load_shape(p), select)[0]
            out.several_faces += len(fs) > 1
    missing = [p for p in paths if p not in out.faces and p not in out.errors]
    if missing:
        det = box_landmarker(detector, kwargs)
        median = median_box(out.faces.values()) if out.faces else None
        for p in missing:
            try:
                img = load_image(p)
                if fallback == "median" and median is not None:
                    box, why = median, "no face detected: median box of the run"
                else:
                    box, why = np.array([0.0, 0.0, img.shape[1], img.shape[0]]), "no face detected: whole photo"
                out.faces[p] = fallback_face(img, box, det)
                out.fallback[p] = why
            except XaifaceError as e:
                out.errors[p] = str(e)
    out.faces = {p: out.faces[p] for p in paths if p in out.faces}  # input order
    return out


_IN_PROCESS = 32


def _detect_here(paths: list[str], detector: str, kwargs: dict[str, Any], det_cache: Any
                 ) -> tuple[dict[str, list[DetectedFace]], dict[str, str]]:
    """Detection in this process, through the same cache entries as :func:`~xaiface.detect.batch.detect_many`."""
    from ..detect.base import get_detector
    from ..detect.cache import settings_hash

    det = get_detector(detector, **kwargs)
    skey = settings_hash(det.settings())
    faces: dict[str, list[DetectedFace]] = {}
    errors: dict[str, str] = {}
    for p in paths:
        try:
            img = load_image(p)
            key = array_sha256(img)
            got = det_cache.get(key, skey) if det_cache is not None else None
            if got is None:  # the same rounding as a worker's result, so keys match either way
                got = [DetectedFace.from_dict(f.to_dict()) for f in det.detect(img)]
                if det_cache is not None:
                    det_cache.put(key, skey, got)
            faces[p] = got
        except XaifaceError as e:
            errors[p] = str(e)
    return faces, errors


# ------------------------------------------------------------------------------- embeddings

_MODEL_DIGESTS: dict[int, str] = {}


def model_digest(model: Any) -> str:
    """SHA-256 of a model's parameters and buffers (keys the embedding store)."""
    key = id(model)
    if key not in _MODEL_DIGESTS:
        h = hashlib.sha256(model.spec.name.encode())
        for name, t in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(np.ascontiguousarray(t.detach().cpu().numpy()).tobytes())
        _MODEL_DIGESTS[key] = h.hexdigest()
    return _MODEL_DIGESTS[key]


def combine_flip(pair: np.ndarray, flip: bool = True) -> np.ndarray:
    """``(N, 2, D)`` plain and mirrored embeddings -> ``(N, D)`` L2-normalised (their sum if ``flip``)."""
    e = pair[:, 0] + pair[:, 1] if flip else pair[:, 0]
    return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)


def embed_faces(model: Any, faces: Mapping[str, DetectedFace], *, store: Any = True, batch_size: int = 32,
                progress: bool = True, desc: str = "embed") -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Plain and mirrored embeddings ``(2, D)`` of one face per photo, through the store.

    Returns:
        ``(embeddings, errors)``: photo -> ``(2, D)`` float32 (row 0 plain, row 1 mirrored crop,
        each L2-normalised; see :func:`combine_flip`), and photo -> message for failures.
    """
    from tqdm import tqdm

    st: ResultStore = open_store(store)
    settings = {"kind": "embedding", "model": model.spec.name, "digest": model_digest(model),
                "geometry": model.spec.preprocessing.geometry}
    out: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    todo: list[tuple[str, str, np.ndarray]] = []

    def flush() -> None:
        if not todo:
            return
        crops = np.stack([c for _, _, c in todo])
        plain = model.embed(crops, batch_size=batch_size)
        mirror = model.embed(np.ascontiguousarray(crops[:, :, ::-1]), batch_size=batch_size)
        for (p, k, _), a, b in zip(todo, plain, mirror):
            out[p] = np.stack([a, b])
            st.put_array(k, out[p])
        todo.clear()

    for p, face in tqdm(list(faces.items()), desc=desc, unit="img", disable=not progress):
        try:
            img = load_image(p)
            k = result_key(array_sha256(img), face, settings)
            got = st.get_array(k)
            if got is not None and got.shape == (2, model.spec.embedding_size):
                out[p] = got
                continue
            todo.append((p, k, align_face(img, face, model.spec.preprocessing.geometry).image))
        except XaifaceError as e:
            errors[p] = str(e)
        if len(todo) >= batch_size:
            flush()
    flush()
    return out, errors


# ---------------------------------------------------------------------------------- traits


def estimate_traits(estimators: Sequence[TraitEstimator], faces: Mapping[str, DetectedFace], *, store: Any = True,
                    progress: bool = True, desc: str = "traits") -> tuple[dict[str, FaceTraits], dict[str, str]]:
    """Every estimator's traits of one face per photo, through the store.

    Returns:
        ``(traits, errors)``: photo -> merged :class:`FaceTraits`, photo -> message for failures.
    """
    from tqdm import tqdm

    st: ResultStore = open_store(store)
    out: dict[str, FaceTraits] = {}
    errors: dict[str, str] = {}
    settings = [est.settings() for est in estimators]
    for p, face in tqdm(list(faces.items()), desc=desc, unit="img", disable=not progress):
        try:
            img = load_image(p)
            sha = array_sha256(img)
            merged: FaceTraits | None = None
            for est, s in zip(estimators, settings):
                k = result_key(sha, face, {"kind": "traits", **s})
                doc = st.get_json(k)
                if doc is None:
                    ft = est.estimate(img, [face], source=p)[0]
                    st.put_json(k, {k2: t.to_dict(with_distribution=True, exact=True) for k2, t in ft.traits.items()})
                else:
                    ft = FaceTraits({k2: Trait.from_dict(k2, v) for k2, v in doc.items()}, face, p)
                merged = ft if merged is None else merged.merged(ft)
            if merged is not None:
                out[p] = FaceTraits(merged.traits, face, p)
        except XaifaceError as e:
            errors[p] = str(e)
    return out, errors
