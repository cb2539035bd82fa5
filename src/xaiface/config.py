"""Settings: where the shared data lives and where caches go.

The data folder defaults to ``../shared/data`` (relative to the working directory, then to
the repository that holds this package) and is overridden by ``XAIFACE_DATA`` or by an
explicit argument. The cache folder defaults to ``~/.cache/xaiface`` (``XAIFACE_CACHE``).
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import DatasetError

_REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir(path: str | os.PathLike | None = None, *, must_exist: bool = True) -> Path:
    """Return the data folder: ``path`` if given, else ``$XAIFACE_DATA``, else ``../shared/data``."""
    if path is not None:
        candidates = [Path(path)]
    elif os.environ.get("XAIFACE_DATA"):
        candidates = [Path(os.environ["XAIFACE_DATA"])]
    else:
        candidates = [Path.cwd() / ".." / "shared" / "data", _REPO_ROOT / ".." / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    if must_exist:
        raise DatasetError(
            f"data folder not found: tried {', '.join(str(c) for c in candidates)}; "
            "pass --data DIR or set XAIFACE_DATA to the folder holding lfw/, utkface/, vip_attribute/"
        )
    return candidates[0]


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """Return (and create) the cache folder: ``path``, ``$XAIFACE_CACHE`` or ``~/.cache/xaiface``."""
    p = Path(path) if path is not None else Path(os.environ.get("XAIFACE_CACHE", Path.home() / ".cache" / "xaiface"))
    p.mkdir(parents=True, exist_ok=True)
    return p
