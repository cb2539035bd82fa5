"""The batch face stage: many photos -> one located face each -> aligned crops -> embeddings.

Every data-set run (``xaiface eval lfw``, Patch-LFW, LIBF, the factor studies, the soft-biometric
runs) goes through these steps; the drivers keep only their own science.

1. :func:`locate_faces`: detect every photo through the detection cache, the cache misses on the
   run's executor (:func:`~xaiface.detect.batch.detect_many`, :mod:`xaiface.executor`); choose one face per photo
   (``select``: ``center``, ``largest`` or ``score``). **Fallback** for a photo without a
   detection, instead of dropping it: ``"median"`` (default) the median selected box of the run
   (LFW's centred photos; if no photo of the run has a face, the whole photo; a driver whose result
   must not depend on which photos run together passes a fixed ``fallback_box`` instead), or ``"image"`` the
   whole photo (data sets of already-cropped faces: UTKFace, VIP_attribute); landmarks inside the
   box come from dlib's shape predictors (:mod:`xaiface.detect.fallback`), the face is marked
   ``fallback=True`` and the reason recorded. **Failures**: a photo that cannot be read is
   recorded with its message and the run goes on; a driver that needs every photo calls
   :meth:`FaceBatch.require_all`. :func:`locate_in_image` is the same choice for one in-memory
   photo (a transformed photo of a factor study).
2. :func:`align_faces`: the aligned crops in the model's geometry.
3. :func:`embed_faces` / :func:`embed_crops`: embeddings of the plain and the mirrored crop, with
   the resumable :class:`~xaiface.pipeline.store.ResultStore` (keyed by pixel content, face and
   model digest) or none; :func:`mirror_average` is the one way to combine the two.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..align import align_face
from ..errors import ConfigError, DatasetError, XaifaceError
from ..io import array_sha256, image_shape, load_image
from ..types import DetectedFace
from .store import ResultStore, open_store, result_key

FALLBACKS = ("median", "image")
"""The fallback rules for photos without a detection (see the module docstring)."""

IN_PROCESS_BELOW = 32
"""Runs of at most this many photos detect in this process: worker processes would cost more than they save."""

_MEDIAN = "no face detected: median box of the run"
_WHOLE = "no face detected: whole photo"
_FIXED = "no face detected: the run's fixed fallback box"


@dataclass
class FaceBatch:
    """One face per photo of a run.

    Attributes:
        faces: photo -> the selected face, or its fallback face (input order).
        detections: photo -> every detected face (an empty list: none; absent: unreadable).
        fallback: photo -> why its face is a fallback face (photos without a detection).
        errors: photo -> message, for photos that could not be read (they have no face).
        fallback_box: ``(4,)`` the median box given to photos without a detection (``None``
            when no photo needed it or the rule was ``"image"``).
        detections_computed, detections_cached: where the detections came from.
    """

    faces: dict[str, DetectedFace]
    detections: dict[str, list[DetectedFace]] = field(default_factory=dict)
    fallback: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    fallback_box: np.ndarray | None = None
    detections_computed: int = 0
    detections_cached: int = 0

    @property
    def no_face(self) -> list[str]:
        """Photos without a detected face (they hold a fallback face), in input order."""
        return list(self.fallback)

    @property
    def several_faces(self) -> int:
        """How many photos have more than one detected face."""
        return sum(1 for d in self.detections.values() if len(d) > 1)

    def summary(self) -> dict[str, Any]:
        return {"photos": len(self.faces) + len(self.errors), "faces": len(self.faces),
                "fallback_boxes": len(self.fallback), "errors": len(self.errors),
                "photos_with_several_faces": self.several_faces}

    def require_all(self, what: str = "photos") -> "FaceBatch":
        """``self``, or DatasetError naming (up to five of) the photos that could not be read."""
        if self.errors:
            raise DatasetError(f"unreadable {what}: " + "; ".join(f"{k}: {v}" for k, v in list(self.errors.items())[:5]))
        return self

    def reselect(self, select: str) -> "FaceBatch":
        """The same run with another face choice among the detections; fallback faces are kept."""
        faces = {p: self.faces[p] if p in self.fallback else _choose(self.detections[p], image_shape(p), select, p)
                 for p in self.faces}
        return FaceBatch(faces, self.detections, dict(self.fallback), dict(self.errors), self.fallback_box,
                         self.detections_computed, self.detections_cached)


def _choose(detections: list[DetectedFace], shape: tuple[int, ...], select: str, source: str | None) -> DetectedFace:
    from ..detect.base import select_faces

    return select_faces(detections, shape, select, source=source)[0]


def _check_fallback(fallback: str) -> None:
    if fallback not in FALLBACKS:
        raise ConfigError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")


def _whole_photo(image: np.ndarray) -> np.ndarray:
    return np.array([0.0, 0.0, image.shape[1], image.shape[0]])


def locate_faces(paths: Iterable[str | os.PathLike], *, detector: str = "dlib-hog",
                 detector_kwargs: Mapping[str, Any] | None = None, select: str = "center",
                 fallback: str = "median", cache: Any = True, workers: int | None = None,
                 progress: bool = True, fallback_box: Sequence[float] | Callable[[], Sequence[float]] | None = None,
                 executor: Any = None, scheduler: str | None = None) -> FaceBatch:
    """Detect every photo and keep one face each (see the module docstring).

    Args:
        paths: photo files (repeats are taken once).
        detector, detector_kwargs: a registered detector and its options.
        select: ``"center"`` (default), ``"largest"`` or ``"score"`` (:func:`~xaiface.detect.base.select_faces`).
        fallback: ``"median"`` or ``"image"`` (see :data:`FALLBACKS`).
        cache: the detection cache: ``True`` (default location), a path, a
            :class:`~xaiface.detect.cache.DetectionCache`, or ``False``/``None``.
        workers: detection processes for the cache misses (default 2, a local Dask cluster; runs
            of at most :data:`IN_PROCESS_BELOW` photos detect in this process).
        executor, scheduler: the run's executor instead (:func:`xaiface.executor.get_executor`;
            an :class:`~xaiface.executor.Executor` object is used and left open).
        fallback_box: with ``fallback="median"``, this ``(4,)`` box ``x1, y1, x2, y2`` (or a
            function returning it, called only when a photo has no detection) instead of the run's
            median box, so that a photo's face does not depend on the other photos of the run
            (default ``None``: the run's median).
    Returns:
        a :class:`FaceBatch`; unreadable photos are in its ``errors``.
    """
    from ..detect.batch import detect_many
    from ..detect.cache import DetectionCache
    from ..detect.fallback import box_landmarker, fallback_face, median_box

    _check_fallback(fallback)
    paths = list(dict.fromkeys(str(p) for p in paths))
    kwargs = dict(detector_kwargs or {})
    det_cache = cache if isinstance(cache, DetectionCache) else (
        None if cache is False or cache is None else DetectionCache(None if cache is True else cache))
    small = len(paths) <= IN_PROCESS_BELOW and executor is None and scheduler is None
    found = detect_many(paths, detector, kwargs, cache=det_cache, workers=0 if small else workers, progress=progress,
                        executor=executor, scheduler=scheduler)
    out = FaceBatch({}, {p: found.faces[p] for p in paths if p in found.faces}, errors=dict(found.errors),
                    detections_computed=found.computed, detections_cached=found.cached)
    for p, fs in out.detections.items():
        if fs:
            out.faces[p] = _choose(fs, image_shape(p), select, p)
    missing = [p for p in paths if p not in out.faces and p not in out.errors]
    if missing:
        landmarker = box_landmarker(detector, kwargs)
        if fallback == "median" and fallback_box is not None:
            out.fallback_box = np.asarray(fallback_box() if callable(fallback_box) else fallback_box, dtype=np.float64)
        elif fallback == "median" and out.faces:
            out.fallback_box = median_box(out.faces.values())
        for p in missing:
            try:
                img = load_image(p)
                box = _whole_photo(img) if out.fallback_box is None else out.fallback_box
                out.faces[p] = fallback_face(img, box, landmarker)
                out.fallback[p] = _WHOLE if out.fallback_box is None else _FIXED if fallback_box is not None else _MEDIAN
            except XaifaceError as e:
                out.errors[p] = str(e)
    out.faces = {p: out.faces[p] for p in paths if p in out.faces}  # input order
    out.fallback = {p: out.fallback[p] for p in paths if p in out.fallback}
    return out


@dataclass(frozen=True)
class LocatedFace:
    """The face chosen in one photo: ``fallback`` says why it is a fallback face (``None``: detected)."""

    face: DetectedFace
    fallback: str | None = None

    @property
    def detected(self) -> bool:
        return self.fallback is None


def locate_in_image(image: np.ndarray, detector: Any, *, select: str = "center", fallback_box: Sequence[float] | None = None,
                    landmarker: Any = None, source: str | None = None) -> LocatedFace:
    """One in-memory photo: detect, choose one face, or the fallback face (the rule of :func:`locate_faces`).

    Args:
        image: ``(H, W, 3)`` uint8 RGB photo (e.g. a transformed photo).
        detector: a :class:`~xaiface.detect.base.Detector`.
        fallback_box: the run's median box (``None``: the whole photo).
        landmarker: places landmarks in the fallback box (default: ``detector`` when it can,
            see :func:`~xaiface.detect.fallback.box_landmarker`).
    """
    from ..detect.fallback import fallback_face

    faces = detector.detect(image)
    if faces:
        return LocatedFace(_choose(faces, image.shape, select, source))
    if landmarker is None:
        landmarker = detector if hasattr(detector, "face_in_box") else None
    box = _whole_photo(image) if fallback_box is None else np.asarray(fallback_box, dtype=np.float64)
    return LocatedFace(fallback_face(image, box, landmarker), _WHOLE if fallback_box is None else _MEDIAN)


def align_faces(faces: Mapping[str, DetectedFace], geometry: str, *, progress: bool = True,
                desc: str | None = None) -> dict[str, np.ndarray]:
    """Aligned crops ``(S, S, 3)`` uint8 of one face per photo in ``geometry`` (e.g. ``"dlib-150"``)."""
    from tqdm import tqdm

    return {p: align_face(load_image(p), f, geometry).image
            for p, f in tqdm(list(faces.items()), desc=desc or f"align ({geometry})", disable=not progress, unit="img")}


# ------------------------------------------------------------------------------- embeddings


def mirror_average(plain: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """The mirror-averaged embedding: the normalised sum of a crop's and its mirror image's embeddings.

    Args:
        plain, mirrored: ``(N, D)`` (rows normalised one by one) or ``(D,)`` (numpy's vector
            norm, ``sqrt(e @ e)``, which can differ from the row norm in the last bit: the factor
            studies score single vectors this way and keep doing so).
    Returns:
        the same shape, L2-normalised, in the inputs' dtype.
    """
    e = plain + mirrored
    if e.ndim == 1:
        return e / np.linalg.norm(e)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def embed_crops(model: Any, crops: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``(plain, mirrored)`` L2-normalised embeddings ``(B, D)`` float32 of aligned crops ``(B, S, S, 3)``."""
    plain = model.embed(crops, batch_size=batch_size)
    mirrored = model.embed(np.ascontiguousarray(crops[:, :, ::-1]), batch_size=batch_size)
    return plain, mirrored


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


@dataclass
class FaceEmbeddings:
    """Embeddings of one face per photo.

    Attributes:
        plain, mirrored: photo -> ``(D,)`` float32, each L2-normalised (the crop's and its mirror image's).
        errors: photo -> message for photos that could not be embedded.
    """

    plain: dict[str, np.ndarray] = field(default_factory=dict)
    mirrored: dict[str, np.ndarray] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def __contains__(self, path: object) -> bool:
        return path in self.plain

    def vectors(self, paths: Sequence[str], flip: bool) -> np.ndarray:
        """``(N, D)`` embeddings of ``paths``: mirror-averaged (:func:`mirror_average`) if ``flip``, else plain."""
        plain = np.stack([self.plain[p] for p in paths])
        return mirror_average(plain, np.stack([self.mirrored[p] for p in paths])) if flip else plain

    def update(self, other: "FaceEmbeddings") -> None:
        self.plain.update(other.plain)
        self.mirrored.update(other.mirrored)
        self.errors.update(other.errors)

    def require_all(self, what: str = "photos") -> "FaceEmbeddings":
        """``self``, or DatasetError naming (up to five of) the photos that could not be embedded."""
        if self.errors:
            raise DatasetError(f"{what} that could not be embedded: "
                               + "; ".join(f"{k}: {v}" for k, v in list(self.errors.items())[:5]))
        return self


def embed_faces(model: Any, faces: Mapping[str, DetectedFace], *, store: Any = True, batch_size: int = 32,
                progress: bool = True, desc: str = "embed") -> FaceEmbeddings:
    """Plain and mirrored embeddings of one face per photo, through the result store.

    Crops are embedded in batches of ``batch_size`` in the order of ``faces`` (stored results
    skipped), so a run without a store embeds exactly the batches ``faces[i : i + batch_size]``.

    Args:
        model: a :class:`~xaiface.models.base.FaceModel`.
        faces: photo -> the face to embed (e.g. :attr:`FaceBatch.faces`).
        store: a :class:`~xaiface.pipeline.store.ResultStore`, ``True`` (the default store), a
            path, or ``False`` (none: everything computed, nothing kept).
    Returns:
        :class:`FaceEmbeddings` (photos that fail are in its ``errors``; the run goes on).
    """
    from tqdm import tqdm

    st: ResultStore = open_store(store)
    settings = {"kind": "embedding", "model": model.spec.name, "digest": model_digest(model),
                "geometry": model.spec.preprocessing.geometry} if store is not False else None
    out = FaceEmbeddings()
    todo: list[tuple[str, str | None, np.ndarray]] = []

    def flush() -> None:
        if not todo:
            return
        plain, mirror = embed_crops(model, np.stack([c for _, _, c in todo]), batch_size)
        for (p, k, _), a, b in zip(todo, plain, mirror):
            out.plain[p], out.mirrored[p] = a, b
            if k is not None:
                st.put_array(k, np.stack([a, b]))
        todo.clear()

    for p, face in tqdm(list(faces.items()), desc=desc, unit="img", disable=not progress):
        try:
            img = load_image(p)
            k = None
            if settings is not None:
                k = result_key(array_sha256(img), face, settings)
                got = st.get_array(k)
                if got is not None and got.shape == (2, model.spec.embedding_size):
                    out.plain[p], out.mirrored[p] = got[0], got[1]
                    continue
            todo.append((p, k, align_face(img, face, model.spec.preprocessing.geometry).image))
        except XaifaceError as e:
            out.errors[p] = str(e)
        if len(todo) >= batch_size:
            flush()
    flush()
    return out
