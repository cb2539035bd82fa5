"""The batch face stage's on-disk store of per-face results (embeddings, traits), keyed by content.

A key is the SHA-256 of (the photo's pixel values, the face's box and landmarks, the producer's
settings), so a result is reused whenever the same face of the same pixels goes through the same
estimator or model, whatever the file is called, and never when any of them changed. SQLite in
WAL mode, like the detection cache (``<cache>/soft.sqlite`` by default); each row carries the
SHA-256 of its payload, and a row that does not verify is computed again.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..config import cache_dir
from ..io.files import add_column, open_database, storage_faults
from ..types import DetectedFace


def face_key(face: DetectedFace) -> str:
    """A stable text key of a detection (box and both landmark sets, rounded to 1e-3 px)."""
    parts = [np.round(np.asarray(face.box, float), 3).tolist(), np.round(np.asarray(face.landmarks, float), 3).tolist(),
             None if face.landmarks_dlib5 is None else np.round(np.asarray(face.landmarks_dlib5, float), 3).tolist()]
    return json.dumps(parts)


def result_key(image_sha: str, face: DetectedFace, settings: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(image_sha.encode())
    h.update(face_key(face).encode())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()


class ResultStore:
    """Key-value store of JSON documents and float32 arrays.

    Args:
        path: SQLite file (default ``<cache>/soft.sqlite``, see :func:`xaiface.config.cache_dir`).
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else cache_dir() / "soft.sqlite"
        self._con = open_database(self.path, "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, kind TEXT, payload BLOB);",
                                  "soft-biometrics store", timeout=60, isolation_level=None)
        with storage_faults(self.path, "cannot update the soft-biometrics store"):
            add_column(self._con, "results", "checksum")  # older rows: no checksum, recomputed on first use
        self.hits = 0
        self.misses = 0
        self.dropped = 0

    def _get(self, key: str, kind: str) -> bytes | None:
        with storage_faults(self.path, "cannot read the soft-biometrics store"):
            row = self._con.execute("SELECT payload, checksum FROM results WHERE key=? AND kind=?", (key, kind)).fetchone()
        if row is not None and row[1] != hashlib.sha256(bytes(row[0])).hexdigest():  # damaged or unsigned: recomputed
            self.dropped += 1
            row = None
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return bytes(row[0])

    def _put(self, key: str, kind: str, payload: bytes) -> None:
        with storage_faults(self.path, "cannot write the soft-biometrics store"):
            self._con.execute("INSERT OR REPLACE INTO results (key, kind, payload, checksum) VALUES (?, ?, ?, ?)",
                              (key, kind, payload, hashlib.sha256(payload).hexdigest()))

    def get_json(self, key: str) -> Any | None:
        raw = self._get(key, "json")
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:  # a damaged row is recomputed
            return None

    def put_json(self, key: str, value: Any) -> None:
        self._put(key, "json", json.dumps(value).encode())

    def get_array(self, key: str) -> np.ndarray | None:
        raw = self._get(key, "f32")
        if raw is None:
            return None
        try:
            head, body = raw.split(b"\n", 1)
            shape = tuple(json.loads(head))
            arr = np.frombuffer(body, dtype="<f4")
            return arr.reshape(shape).copy()
        except ValueError:
            return None

    def put_array(self, key: str, value: np.ndarray) -> None:
        a = np.ascontiguousarray(value, dtype="<f4")
        self._put(key, "f32", json.dumps(list(a.shape)).encode() + b"\n" + a.tobytes())

    def __len__(self) -> int:
        return int(self._con.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def close(self) -> None:
        self._con.close()


class NullStore(ResultStore):
    """A store that keeps nothing (``cache=False``)."""

    def __init__(self) -> None:  # noqa: D401 - no file
        self.path = None  # type: ignore[assignment]
        self.hits = 0
        self.misses = 0

    def _get(self, key: str, kind: str) -> bytes | None:
        self.misses += 1
        return None

    def _put(self, key: str, kind: str, payload: bytes) -> None:
        pass

    def __len__(self) -> int:
        return 0

    def close(self) -> None:
        pass


def open_store(cache: bool | str | os.PathLike | ResultStore | None) -> ResultStore:
    """``True``/``None`` -> the default store, a path -> that file, ``False`` -> no store."""
    if isinstance(cache, ResultStore):
        return cache
    if cache is False:
        return NullStore()
    return ResultStore(None if cache is True or cache is None else cache)
