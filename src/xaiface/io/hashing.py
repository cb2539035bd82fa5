"""Content hashes for cache keys: of a file's bytes and of an array's values."""
from __future__ import annotations

import hashlib
import os

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
