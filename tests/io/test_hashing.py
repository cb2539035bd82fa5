"""Tests of xaiface.io.hashing: file and array content hashes."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from xaiface.errors import ConfigError
from xaiface.io import array_sha256, file_sha256


def test_file_sha256_matches_hashlib_over_several_chunks(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, 3_000_000, dtype=np.uint8).tobytes()
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(str(tmp_path / "empty")) == hashlib.sha256(b"").hexdigest()


def test_file_sha256_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.bin"):
        file_sha256(tmp_path / "nope.bin")


def test_array_sha256_depends_on_values_shape_and_dtype_only():
    a = np.arange(24, dtype=np.uint16).reshape(4, 6)
    digest = array_sha256(a)
    assert len(digest) == 64 and digest == array_sha256(a.copy())
    assert array_sha256(np.asfortranarray(a)) == digest  # layout does not matter
    assert array_sha256(a.astype(">u2")) == digest  # nor byte order
    assert array_sha256(a.T.T) == digest
    assert array_sha256(a.reshape(6, 4)) != digest  # same bytes, other shape
    assert array_sha256(a.view(np.int16)) != digest  # same bytes, other dtype
    b = a.copy()
    b[3, 5] += 1
    assert array_sha256(b) != digest


def test_array_sha256_refuses_object_arrays():
    with pytest.raises(ConfigError, match="object"):
        array_sha256(np.array([1, "a"], dtype=object))
