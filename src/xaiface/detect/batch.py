"""Detection over many photos: cache first, then the misses on the one worker pool, with progress.

:class:`PhotoPool` is the project's one pool of worker processes for per-photo work (detection
here; transform + detection in the factor studies): spawned processes with one torch and OpenCV
thread each, each keeping one detector (:func:`worker_detector`); ``workers=0`` runs the same
functions in this process. A photo that cannot be read is recorded (with its error message) and
the run goes on.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import multiprocessing as mp

from ..errors import XaifaceError
from ..io import array_sha256, load_image
from ..types import DetectedFace
from .base import Detector, get_detector
from .cache import DetectionCache, settings_hash

_WORKER: dict[str, Any] = {}


def _configure(detector: str, kwargs: dict[str, Any]) -> None:
    _WORKER["config"] = (detector, dict(kwargs))
    _WORKER.pop("det", None)


def _init_worker(detector: str, kwargs: dict[str, Any], setup: Callable[..., None] | None,
                 setup_args: tuple[Any, ...]) -> None:
    import torch

    torch.set_num_threads(1)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover
        pass
    if setup is not None:
        setup(*setup_args)
    _configure(detector, kwargs)


def worker_detector() -> Detector:
    """The detector of this worker (or of this process for ``workers=0``), built on first use."""
    if "det" not in _WORKER:
        name, kwargs = _WORKER.get("config", ("dlib-hog", {}))
        _WORKER["det"] = get_detector(name, **kwargs)
    return _WORKER["det"]


class PhotoPool:
    """Worker processes for per-photo functions, each with its own detector.

    Args:
        workers: processes (``0``: run in this process, no pool).
        detector, detector_kwargs: the detector :func:`worker_detector` gives in each worker.
        setup, setup_args: a module-level function run once in each worker process before any
            task, e.g. to register plug-ins (not run for ``workers=0``: this process has its own).
    """

    def __init__(self, workers: int, detector: str = "dlib-hog", detector_kwargs: dict[str, Any] | None = None,
                 setup: Callable[..., None] | None = None, setup_args: Sequence[Any] = ()):
        kwargs = dict(detector_kwargs or {})
        self.workers = int(workers)
        self._ex: ProcessPoolExecutor | None = None
        if self.workers > 0:
            self._ex = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                           initargs=(detector, kwargs, setup, tuple(setup_args)))
        else:
            _configure(detector, kwargs)

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any], chunksize: int = 4) -> Iterator[Any]:
        """``fn(task)`` for each task, results in task order (``fn`` must be a module-level function)."""
        if self._ex is None:
            return (fn(t) for t in tasks)
        return self._ex.map(fn, tasks, chunksize=chunksize)

    def close(self) -> None:
        if self._ex is not None:
            self._ex.shutdown(wait=True, cancel_futures=True)
            self._ex = None

    def __enter__(self) -> "PhotoPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _detect_path(path: str) -> tuple[str, list[dict] | None, str | None, str | None]:
    try:
        img = load_image(path)
        faces = worker_detector().detect(img)
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
                cache: DetectionCache | None = None, workers: int | None = None, progress: bool = True) -> BatchDetections:
    """Detect every face in each photo.

    Args:
        workers: detection processes for the cache misses (default 2; ``0``: in this process).
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
        with PhotoPool(workers, detector, kwargs) as pool:
            it = pool.map(_detect_path, todo, chunksize=8)
            for path, fl, key, err in tqdm(it, total=len(todo), desc=f"detect ({detector})", disable=not progress, unit="img"):
                if err is not None:
                    errors[path] = err
                    continue
                dets = [DetectedFace.from_dict(f) for f in fl]  # type: ignore[union-attr]
                faces[path] = dets
                if cache is not None and key is not None and skey is not None:
                    cache.put(key, skey, dets)
    return BatchDetections(faces, errors, computed=len(todo), cached=n_cached)
