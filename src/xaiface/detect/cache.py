"""An on-disk detection cache (SQLite), keyed by image content and detector settings.

Detection over LFW takes ~15 minutes on 2 CPU cores and every later benchmark walks LFW again,
so detections (all faces: boxes, scores, landmarks) are stored under
``sha256(image values) + sha256(detector settings)``. Each row carries a checksum of its
payload; a row whose checksum or content does not verify (stale format, corruption) is
dropped and recomputed. SQLite in WAL mode lets several worker processes share one cache.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..config import cache_dir
from ..io.files import open_database, storage_faults
from ..io.hashing import array_sha256
from ..types import DetectedFace
from .base import Detector

_FORMAT = 1
_SCHEMA = ("CREATE TABLE IF NOT EXISTS detections (image TEXT, settings TEXT, payload TEXT, checksum TEXT,"
           " PRIMARY KEY (image, settings));")


def settings_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


class DetectionCache:
    """A key-value store of detections. ``path`` defaults to ``<cache>/detections.sqlite``."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else cache_dir() / "detections.sqlite"
        self._con = open_database(self.path, _SCHEMA, "detection cache", timeout=60, isolation_level=None)
        self.hits = 0
        self.misses = 0
        self.repaired = 0

    def get(self, image_key: str, settings_key: str) -> list[DetectedFace] | None:
        with storage_faults(self.path, "cannot read the detection cache"):
            row = self._con.execute(
                "SELECT payload, checksum FROM detections WHERE image=? AND settings=?", (image_key, settings_key)
            ).fetchone()
        if row is None:
            return None
        payload, checksum = row
        try:
            if hashlib.sha256(payload.encode()).hexdigest() != checksum:
                raise ValueError("checksum")
            d = json.loads(payload)
            if d.get("format") != _FORMAT or d.get("image") != image_key:
                raise ValueError("stale")
            return [DetectedFace.from_dict(f) for f in d["faces"]]
        except (ValueError, KeyError, TypeError):
            self.repaired += 1
            with storage_faults(self.path, "cannot write the detection cache"):
                self._con.execute("DELETE FROM detections WHERE image=? AND settings=?", (image_key, settings_key))
            return None

    def put(self, image_key: str, settings_key: str, faces: list[DetectedFace]) -> None:
        payload = json.dumps({"format": _FORMAT, "image": image_key, "faces": [f.to_dict() for f in faces]})
        with storage_faults(self.path, "cannot write the detection cache"):
            self._con.execute(
                "INSERT OR REPLACE INTO detections VALUES (?, ?, ?, ?)",
                (image_key, settings_key, payload, hashlib.sha256(payload.encode()).hexdigest()),
            )

    def __len__(self) -> int:
        return int(self._con.execute("SELECT COUNT(*) FROM detections").fetchone()[0])

    def close(self) -> None:
        self._con.close()


class CachedDetector(Detector):
    """A detector whose results are looked up in (and saved to) a :class:`DetectionCache`.

    Landmarks are stored rounded to 0.01 px, so cached and fresh results agree to that.
    """

    def __init__(self, detector: Detector, cache: DetectionCache | str | os.PathLike | None = None):
        self.detector = detector
        self.cache = cache if isinstance(cache, DetectionCache) else DetectionCache(cache)
        self.name = detector.name
        self._settings_key = settings_hash(detector.settings())

    def settings(self) -> dict[str, Any]:
        return self.detector.settings()

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        key = array_sha256(image)
        faces = self.cache.get(key, self._settings_key)
        if faces is not None:
            self.cache.hits += 1
            return faces
        self.cache.misses += 1
        faces = self.detector.detect(image)
        self.cache.put(key, self._settings_key, faces)
        # return what a cache hit would return, so that results never depend on cache state
        return [DetectedFace.from_dict(f.to_dict()) for f in faces]

    def face_in_box(self, image: np.ndarray, box: np.ndarray) -> DetectedFace:
        return self.detector.face_in_box(image, box)  # type: ignore[attr-defined]
