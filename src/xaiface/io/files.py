"""Files and stores written safely: atomic writes, checked reads, one message for storage faults.

* :func:`atomic_write` (and :func:`save_npz_atomic`, :func:`save_npy_atomic`,
  :func:`write_text_atomic`, :func:`write_bytes_atomic`): the data goes to a temporary file in the
  target's folder, which replaces the target only once it is complete, so a full disk or an
  interrupted run never leaves a truncated file behind (and an older complete file stays).
* :func:`storage_faults` / :func:`storage_error`: the one place that turns ``OSError``,
  ``sqlite3.Error``, ``zipfile.BadZipFile`` and ``EOFError`` into a :class:`StorageError` naming the
  path and the cause (the CLI prints it on one line and exits 1).
* :func:`ensure_dir`: an output folder, created if needed and probed for writing before any work.
* :func:`load_npz`: every array of an ``.npz``, or a :class:`StorageError` for a damaged file.
* :func:`open_database`: the SQLite file of a resumable store (write-ahead log);
  :func:`open_database_readonly`: the same file for reading only (reports, status).
* :func:`payload_checksum`: the checksum stored with each row of a resumable store.
* :func:`folder_lock`: one writer at a time for a folder that several processes may extend.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np

from ..errors import StorageError

#: the exceptions that mean "the storage failed" (not a bug of the caller)
STORAGE_FAULTS: tuple[type[BaseException], ...] = (OSError, sqlite3.Error, zipfile.BadZipFile, EOFError)

_UMASK = os.umask(0)
os.umask(_UMASK)


def describe_fault(e: BaseException) -> str:
    """A short cause for a storage exception (``No space left on device``, ``file is not a database``)."""
    if isinstance(e, OSError):
        return e.strerror or str(e) or type(e).__name__
    if isinstance(e, zipfile.BadZipFile):
        return f"not a valid .npz/zip archive ({e})"
    if isinstance(e, EOFError):
        return "the file is truncated"
    return str(e) or type(e).__name__


def storage_error(path: str | os.PathLike, e: BaseException, doing: str | None = None) -> StorageError:
    """A :class:`StorageError` ``"<path>: [doing: ]<cause>"``."""
    return StorageError(f"{path}: {doing + ': ' if doing else ''}{describe_fault(e)}")


@contextlib.contextmanager
def storage_faults(path: str | os.PathLike, doing: str | None = None) -> Iterator[None]:
    """Turn a storage exception raised in the block into a :class:`StorageError` naming ``path``."""
    try:
        yield
    except StorageError:
        raise
    except STORAGE_FAULTS as e:
        raise storage_error(path, e, doing) from None


def ensure_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create the folder ``path`` if needed and check that a file can be written in it.

    Raises:
        StorageError: ``path`` is an existing file, cannot be created, or is not writable.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise StorageError(f"{p}: exists and is not a folder; expected a folder (the {what}); "
                           "use another path or remove the file")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise storage_error(p, e, f"cannot create the {what}") from None
    try:  # a real write: permission bits say nothing for root, a read-only file system says it here
        with tempfile.TemporaryFile(dir=p):
            pass
    except OSError as e:
        raise storage_error(p, e, f"cannot write into the {what}") from None
    return p


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; it replaces ``path`` when the block ends
    without an exception, and is removed otherwise (``path`` is then untouched).

    Raises:
        StorageError: ``path`` is a folder or a special file, its folder cannot be created or
            written, or the write fails (full disk, ...). Other exceptions of the block pass through.
    """
    path = Path(path)
    if path.is_dir():
        raise StorageError(f"{path}: is a folder; expected a file path")
    if path.exists() and not path.is_file():
        raise StorageError(f"{path}: exists and is not a regular file (a device, pipe or socket); "
                           "expected a file path")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name[:120]}.", suffix=".tmp")
    except OSError as e:
        raise storage_error(path, e, "cannot write") from None
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, STORAGE_FAULTS) and not isinstance(e, StorageError):
            raise storage_error(path, e, "cannot write") from None
        raise


def save_npz_atomic(path: str | os.PathLike, compressed: bool = False, **arrays: Any) -> Path:
    """``np.savez`` (or ``savez_compressed``) to exactly ``path`` through :func:`atomic_write`."""
    with atomic_write(path) as f:
        (np.savez_compressed if compressed else np.savez)(f, **arrays)
    return Path(path)


def save_npy_atomic(path: str | os.PathLike, array: Any) -> Path:
    """``np.save`` to exactly ``path`` through :func:`atomic_write`."""
    with atomic_write(path) as f:
        np.save(f, np.asarray(array))
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` through :func:`atomic_write`."""
    with atomic_write(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_write`."""
    with atomic_write(path) as f:
        f.write(data)
    return Path(path)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file (read whole, no pickles).

    Raises:
        StorageError: the file cannot be read or is not a complete ``.npz`` (garbage, truncated).
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ValueError("a single .npy array, not an .npz archive")
            return {k: z[k] for k in z.files}
    except (*STORAGE_FAULTS, ValueError, KeyError) as e:
        cause = describe_fault(e) if isinstance(e, STORAGE_FAULTS) else "not an .npz archive (unrecognised or damaged content)"
        raise StorageError(f"{path}: {cause}") from None


def open_database(path: str | os.PathLike, schema: str, what: str, *, timeout: float = 5.0,
                  isolation_level: str | None = "") -> sqlite3.Connection:
    """The SQLite file of a store whose rows are written as they are produced: created with
    ``schema`` if new, write-ahead log (consistent if the process is killed between commits).

    Raises:
        StorageError: the path is a folder, cannot be created or opened, or the file is not a
            usable database (e.g. a text file); the message names the path and the cause.
    """
    path = Path(path)
    if path.is_dir():
        raise StorageError(f"{path}: is a folder; expected a {what} database file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise storage_error(path.parent, e, f"cannot create the folder of the {what} database") from None
    con = None
    try:
        con = sqlite3.connect(path, timeout=timeout, isolation_level=isolation_level)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.executescript(schema)
    except sqlite3.OperationalError as e:
        if con is not None:
            con.close()
        raise StorageError(f"{path}: cannot open or write the {what} database ({e})") from None
    except sqlite3.DatabaseError as e:
        if con is not None:
            con.close()
        raise StorageError(f"{path}: not a usable {what} database ({e}); use another path or delete the file") from None
    return con


def open_database_readonly(path: str | os.PathLike, what: str, tables: tuple[str, ...] = (), *,
                           timeout: float = 5.0) -> sqlite3.Connection:
    """An existing store's SQLite file opened read-only (``mode=ro``: no row, table or journal
    setting is ever written; a writer may keep writing meanwhile, as the write-ahead log allows).
    The database file itself is never changed; like any reader of a write-ahead-log database,
    SQLite creates its ``-wal`` / ``-shm`` side files (empty) beside it when they are absent.

    Args:
        path: the database file. what: its name in messages ("results").
        tables: tables that must be present (default none checked).
        timeout: seconds to wait for a writer's lock (default 5).
    Raises:
        StorageError: no such file, a folder, not a database, damaged, or without ``tables``;
            the message names the path and the cause.
    """
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"{path}: {'is a folder' if path.is_dir() else 'no such file'}; expected a {what} database file")
    con = None
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
        have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in tables if t not in have]
        if missing:
            raise StorageError(f"{path}: not a {what} database (no table {', '.join(missing)})")
    except StorageError:
        con.close()
        raise
    except sqlite3.Error as e:
        if con is not None:
            con.close()
        raise StorageError(f"{path}: not a readable {what} database ({e})") from None
    return con


def add_column(con: sqlite3.Connection, table: str, column: str, decl: str = "TEXT") -> bool:
    """Add ``column`` to ``table`` when an older store lacks it; returns whether it was added."""
    have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
    if column in have:
        return False
    with con:
        con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
    return True


def payload_checksum(values: Any) -> str:
    """SHA-256 of a row's canonical payload (its values as JSON; floats as ``repr``, bytes as hex,
    NaN as null, as SQLite stores it)."""
    def canon(v: Any) -> Any:
        if isinstance(v, (bytes, bytearray, memoryview)):
            return {"b": bytes(v).hex()}
        if isinstance(v, float) and v != v:
            return None
        return v

    return hashlib.sha256(json.dumps([canon(v) for v in values], allow_nan=True).encode()).hexdigest()


def savefig_atomic(fig: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """``fig.savefig`` (matplotlib) to ``path`` through :func:`atomic_write` (format from the suffix)."""
    path = Path(path)
    kwargs.setdefault("format", path.suffix.lstrip(".").lower() or "png")
    with atomic_write(path) as f:
        fig.savefig(f, **kwargs)
    return path


def save_image_atomic(image: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Save an RGB array or PIL image to ``path`` (format from the suffix) through :func:`atomic_write`."""
    from PIL import Image

    path = Path(path)
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.ascontiguousarray(image))
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    with atomic_write(path) as f:
        img.save(f, format=fmt, **kwargs)
    return path


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str, *, name: str = ".lock", timeout: float | None = None,
                announce: bool = True) -> Iterator[Path]:
    """Hold an exclusive lock (``flock``) on ``<folder>/<name>`` while the block runs.

    A second process (or a second open in this one) waits until the first leaves its block, so
    two writers never interleave; readers are not blocked. The lock goes with the process (a
    killed writer releases it), the file stays.

    Args:
        folder: the locked folder (it must exist). what: how to name it in messages.
        name: the lock file's name (default ``.lock``).
        timeout: seconds to wait at most (default ``None``: as long as it takes).
        announce: say on stderr, once, that the lock is being waited for (default True).
    Yields:
        the lock file's path.
    Raises:
        StorageError: the lock cannot be held within ``timeout`` (the message names the lock
            file and says that another process is writing), or the lock file cannot be opened.
    """
    path = Path(folder) / name
    with storage_faults(path, f"cannot open the lock file of the {what}"):
        f = open(path, "a+")
    try:
        t0, told = time.monotonic(), False
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - t0
                if timeout is not None and waited >= timeout:
                    raise StorageError(f"{path}: another process is writing the {what} {folder} (its lock is still "
                                       f"held after {waited:.1f} s); wait for it to finish, or use another folder") from None
                if announce and not told:
                    print(f"xaiface: waiting for another process writing the {what} {folder} (lock {path})", file=sys.stderr)
                    told = True
                time.sleep(0.2)
        yield path
    finally:
        f.close()  # releases the lock
