"""xaiface: explainable face verification."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: F401
    ConfigError, DatasetError, ImageError, ModelNotFoundError, NoFaceError, NumericalError,
    WeightsError, XaifaceError,
)
from .types import AlignedFace, DetectedFace, PairVerdict  # noqa: F401
