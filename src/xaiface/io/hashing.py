"""Content hashes for cache keys: of a file's bytes and of an array's values."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError


def file_sha256(path: str | os.PathLike) -> str:
    """Return the SHA-256 hex digest of a file's bytes, read in chunks (never whole into memory).

    Raises:
        OSError: the file cannot be opened or read (``FileNotFoundError``, ``IsADirectoryError``,
            ...); the exception names the path.
    """
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def array_sha256(arr: np.ndarray) -> str:
    """Return the SHA-256 hex digest of an array's shape, dtype and values.

    Arrays that hold the same values with the same shape and dtype hash equal whatever their
    memory layout (strides, views) or byte order; a different shape or dtype over the same bytes
    hashes differently.

    Raises:
        ConfigError: the array holds Python objects, whose bytes are pointers, not values.
    """
    a = np.asarray(arr)
    if a.dtype.hasobject:
        raise ConfigError(f"array_sha256: dtype {a.dtype} holds Python objects; expected a numeric or bool array")
    shape = a.shape
    # one canonical byte order and layout, so equal values give equal bytes
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    h = hashlib.sha256()
    h.update(f"{a.dtype.str}{shape}".encode())
    h.update(a.data)
    return h.hexdigest()


def weights_digest(model: object, weights: object = None) -> str | None:
    """The SHA-256 of the weights a loaded model runs with, for the keys of stored results.

    ``weights`` is what was passed to :func:`~xaiface.models.get_model`. The model's recorded
    digest is used when it has one (``model.weights_sha256`` or ``model.spec.weights_sha256``);
    otherwise a weights file's bytes are hashed here, and a non-path value (``"random"``) is kept
    as text. ``None`` when neither the model nor ``weights`` says anything (no key to add).
    """
    sha = getattr(model, "weights_sha256", None) or getattr(getattr(model, "spec", None), "weights_sha256", None)
    if isinstance(sha, str) and sha:
        return sha
    if isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
        return file_sha256(weights)
    return None if weights is None else str(weights)


# weight files: digests cached per file state (``models.integrity`` re-exports these)

_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_state(path: Path) -> tuple[str, int, int]:
    st = os.stat(path)
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def weights_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a weight file, streamed, and cached per (path, size, mtime_ns).

    Raises:
        OSError: the file cannot be read (the exception names it).
    """
    path = Path(path)
    state = _file_state(path)
    digest = _DIGESTS.get(state)
    if digest is None:
        digest = file_sha256(path)
        if _file_state(path) == state:  # unchanged while it was read
            _DIGESTS[state] = digest
    return digest


def read_weights(path: str | os.PathLike) -> tuple[bytes, str]:
    """A weight file's bytes and SHA-256 (for loaders that parse the whole file in memory).

    The digest is computed from the bytes read (no second read of the file) unless this file
    state is already cached.
    """
    path = Path(path)
    state = _file_state(path)
    data = path.read_bytes()
    unchanged = _file_state(path) == state
    digest = _DIGESTS.get(state) if unchanged else None
    if digest is None:
        digest = hashlib.sha256(data).hexdigest()
        if unchanged:
            _DIGESTS[state] = digest
    return data, digest
