"""The project's own exception types.

Every error a user can provoke with bad input is one of these, with the file (or
value) at fault and what was expected, never a traceback from inside a library.
"""
from __future__ import annotations


class XaifaceError(Exception):
    """Base class of every error raised on purpose by xaiface."""


class ImageError(XaifaceError, ValueError):
    """An image could not be read or is not usable (empty, truncated, not an image, too small, too large)."""


class NoFaceError(XaifaceError):
    """No face was found in an image."""


class WeightsError(XaifaceError, ValueError):
    """A weight file is missing, truncated, of another format or of another architecture."""


class ModelNotFoundError(XaifaceError, KeyError):
    """A model, detector or method name is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class DatasetError(XaifaceError):
    """A data set folder or protocol file is missing or malformed."""


class ConfigError(XaifaceError, ValueError):
    """A setting or argument has a value outside what is accepted."""


class NumericalError(XaifaceError, FloatingPointError):
    """A model produced NaN or infinite values."""


class StorageError(XaifaceError):
    """A file or folder could not be written or read back (unwritable place, full disk, not a
    folder, damaged store); the message names the path and the cause."""


class ExecutorError(XaifaceError):
    """A distributed run lost its scheduler or its workers; what had arrived is stored, and the
    same command run again computes only what is missing."""
