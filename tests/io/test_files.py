"""Atomic writes and storage faults: a full disk leaves no truncated file, faults are one project error."""
from __future__ import annotations

import contextlib
import os
import resource
import signal
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from xaiface.errors import StorageError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "explain"))
from helpers import RegionMeanModel, toy_pair  # noqa: E402


@contextlib.contextmanager
def file_size_limit(nbytes: int):
    """A real write fault: the kernel refuses to grow any file past ``nbytes`` (EFBIG, as a full
    disk refuses with ENOSPC); SIGXFSZ is ignored so that the write returns the error."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path):
    from xaiface.io.files import save_npy_atomic

    path = tmp_path / "map.npy"
    save_npy_atomic(path, np.arange(4.0))
    with file_size_limit(4096), pytest.raises(StorageError) as e:
        save_npy_atomic(path, np.zeros(100_000, np.float32))
    assert str(e.value).startswith(f"{path}: cannot write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.npy"]  # no temporary file left
    np.testing.assert_array_equal(np.load(path), np.arange(4.0))  # the complete older file is untouched


def test_full_device_is_one_storage_error_and_never_replaced():
    from xaiface.io.files import atomic_write, storage_faults, write_text_atomic

    with pytest.raises(StorageError, match="/dev/full: .*No space left on device"):
        with storage_faults("/dev/full"), open("/dev/full", "w") as f:
            f.write("x" * 10_000)
    with pytest.raises(StorageError, match="not a regular file"):
        write_text_atomic("/dev/full", "x")
    with pytest.raises(StorageError, match="is a folder"), atomic_write("/tmp"):
        pass
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # the device is still the device


def test_explanations_on_a_full_disk_leave_no_truncated_npy(tmp_path):
    from xaiface.explain import Verifier, get_explainer
    from xaiface.explain.report import save_explanations

    e = get_explainer("gradient", Verifier(RegionMeanModel(), threshold=0.5)).explain(toy_pair())
    out = tmp_path / "out"
    out.mkdir()
    with file_size_limit(2000), pytest.raises(StorageError) as err:  # a 32x32 float32 map takes 4224 bytes
        save_explanations(e, out)
    assert str(out) in str(err.value)
    assert list(out.iterdir()) == []
    js = save_explanations(e, out)  # with room, everything is written
    assert js.is_file() and np.load(out / "gradient_combined_a.npy").shape == (32, 32)


@pytest.mark.parametrize("content", [b"", b"garbage, not a zip", b"PK\x03\x04truncated"])
def test_damaged_npz_is_a_storage_error(tmp_path, content):
    from xaiface.io.files import load_npz

    p = tmp_path / "x.npz"
    p.write_bytes(content)
    with pytest.raises(StorageError, match=str(p)):
        load_npz(p)


@pytest.mark.parametrize("where", ["text", "proc", "under-a-file"])
def test_unusable_database_path_is_a_storage_error(tmp_path, where):
    from xaiface.io.files import open_database

    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    path = {"text": text, "proc": Path("/proc/xaiface-nope/db.sqlite"), "under-a-file": text / "db.sqlite"}[where]
    with pytest.raises(StorageError, match=str(path if where == "text" else path.parent)):
        open_database(path, "CREATE TABLE IF NOT EXISTS t (a INTEGER);", "test")
