"""Input and output: images in (any source to RGB ``uint8``) and content hashes for caches."""
from __future__ import annotations

from .hashing import array_sha256, file_sha256
from .images import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIZE, ImageSource, image_shape, load_image

__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_MIN_SIZE", "ImageSource", "array_sha256", "file_sha256", "image_shape", "load_image"]
