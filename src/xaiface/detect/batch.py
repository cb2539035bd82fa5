"""Detection over many photos: cache first, then the misses on worker processes, with progress.

A photo that cannot be read is recorded (with its error message) and the run goes on.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable

import multiprocessing as mp

from ..errors import XaifaceError
from ..io import array_sha256, load_image
from ..types import DetectedFace
from .base import get_detector
from .cache import DetectionCache, settings_hash

_WORKER: dict[str, Any] = {}


def _init_worker(name: str, kwargs: dict[str, Any]) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER["det"] = get_detector(name, **kwargs)


def _detect_path(path: str) -> tuple[str, list[dict] | None, str | None, str | None]:
    try:
        img = load_image(path)
        faces = _WORKER["det"].detect(img)
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

    Returns:
        :class:`BatchDetections`: all faces per path (possibly an empty list), errors per path.
    """
    from tqdm import tqdm

    kwargs = detector_kwargs or {}
    paths = [str(p) for p in paths]
    workers = workers or max(1, min(2, os.cpu_count() or 1))
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
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(detector, kwargs)) as ex:
            it = ex.map(_detect_path, todo, chunksize=8)
            for path, fl, key, err in tqdm(it, total=len(todo), desc=f"detect ({detector})", disable=not progress, unit="img"):
                if err is not None:
                    errors[path] = err
                    continue
                dets = [DetectedFace.from_dict(f) for f in fl]  # type: ignore[union-attr]
                faces[path] = dets
                if cache is not None and key is not None and skey is not None:
                    cache.put(key, skey, dets)
    return BatchDetections(faces, errors, computed=len(todo), cached=n_cached)
