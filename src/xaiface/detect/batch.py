"""Detection over many photos: cache first, then the misses on the run's executor, with progress.

Per-photo work (detection here; transform + detection in the factor studies) runs on the one
executor of data-set runs (:mod:`xaiface.executor`): in this process, or on Dask workers, each
process keeping one detector per configuration (:func:`worker_detector`) and running with one
torch and OpenCV thread. A photo that cannot be read is recorded (with its error message) and
the run goes on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import XaifaceError
from ..executor import Executor, get_executor, state_key, worker_state
from ..io import array_sha256, load_image
from ..types import DetectedFace
from .base import Detector, get_detector
from .cache import DetectionCache, settings_hash

_DEFAULT_DETECTOR: list[tuple[str, dict[str, Any]]] = [("dlib-hog", {})]


def use_detector(detector: str, kwargs: dict[str, Any] | None = None) -> None:
    """Make ``detector`` this process's default for :func:`worker_detector` (tasks that carry no detector)."""
    _DEFAULT_DETECTOR[0] = (detector, dict(kwargs or {}))


def worker_detector(detector: str | None = None, kwargs: dict[str, Any] | None = None) -> Detector:
    """This process's detector of that configuration (default: :func:`use_detector`'s), built on first use."""
    name, kw = (detector, dict(kwargs or {})) if detector is not None else _DEFAULT_DETECTOR[0]
    return worker_state(state_key("detector", name, kw), lambda: get_detector(name, **kw))


def photo_executor(workers: int | None = None, executor: str | Executor | None = None, scheduler: str | None = None,
                   setup: Any = None, setup_args: Any = ()) -> Executor:
    """The executor of a per-photo run: ``workers`` Dask processes on 127.0.0.1 (``0``: this
    process), the cluster of ``scheduler``, or ``executor`` itself (see :func:`xaiface.executor.get_executor`)."""
    if isinstance(executor, Executor):
        return executor
    if executor is None and scheduler is None and not workers:
        executor = "local"
    return get_executor(executor, workers=workers, scheduler=scheduler, threads=1, setup=setup, setup_args=setup_args)


def _detect_path(task: tuple[str, str, dict[str, Any]]) -> tuple[str, list[dict] | None, str | None, str | None]:
    path, detector, kwargs = task
    try:
        img = load_image(path)
        faces = worker_detector(detector, kwargs).detect(img)
        return path, [f.to_dict() for f in faces], array_sha256(img), None
    except XaifaceError as e:
        return path, None, None, str(e)


@dataclass
class BatchDetections:
    faces: dict[str, list[DetectedFace]]
    errors: dict[str, str]
    computed: int
    cached: int


def detect_many(paths: Iterable[str | os.PathLike], detector: str = "dlib-hog", detector_kwargs: dict[str, Any] | None = None,
                cache: DetectionCache | None = None, workers: int | None = None, progress: bool = True,
                executor: str | Executor | None = None, scheduler: str | None = None) -> BatchDetections:
    """Detect every face in each photo.

    Args:
        workers: detection processes for the cache misses (default 2, a local Dask cluster;
            ``0``: in this process).
        executor, scheduler: another executor (see :func:`photo_executor`); an
            :class:`~xaiface.executor.Executor` given here is used and left open.
    Returns:
        :class:`BatchDetections`: all faces per path (possibly an empty list), errors per path.
        Faces are rounded as the cache stores them whichever way they were computed.
    """
    from tqdm import tqdm

    kwargs = detector_kwargs or {}
    paths = [str(p) for p in paths]
    workers = max(1, min(2, os.cpu_count() or 1)) if workers is None else int(workers)
    faces: dict[str, list[DetectedFace]] = {}
    errors: dict[str, str] = {}
    todo: list[str] = []
    skey = None
    if cache is not None:
        skey = settings_hash(get_detector(detector, **kwargs).settings())
        for p in tqdm(paths, desc="detection cache", disable=not progress, unit="img"):
            try:
                got = cache.get(array_sha256(load_image(p)), skey)
            except XaifaceError as e:
                errors[p] = str(e)
                continue
            if got is None:
                todo.append(p)
            else:
                faces[p] = got
    else:
        todo = paths
    n_cached = len(faces)
    if todo:
        ex = photo_executor(workers, executor, scheduler)
        try:
            it = ex.map(_detect_path, [(p, detector, dict(kwargs)) for p in todo], chunksize=8)
            for path, fl, key, err in tqdm(it, total=len(todo), desc=f"detect ({detector}, {ex.describe()})",
                                           disable=not progress, unit="img"):
                if err is not None:
                    errors[path] = err
                    continue
                dets = [DetectedFace.from_dict(f) for f in fl]  # type: ignore[union-attr]
                faces[path] = dets
                if cache is not None and key is not None and skey is not None:
                    cache.put(key, skey, dets)
        finally:
            if ex is not executor:
                ex.close()
    return BatchDetections(faces, errors, computed=len(todo), cached=n_cached)
