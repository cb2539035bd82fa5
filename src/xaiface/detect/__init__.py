"""Face detection: the detector contract, dlib's detectors, RetinaFace/SCRFD from ONNX, a cache."""
from __future__ import annotations

from .base import (  # noqa: F401
    DEFAULT_DETECTOR, Detector, get_detector, list_detectors, register_detector, select_faces,
)
from .cache import CachedDetector, DetectionCache  # noqa: F401
