"""The per-face result store now lives with the batch face stage (:mod:`xaiface.pipeline.store`)."""
from __future__ import annotations

from ..pipeline.store import NullStore, ResultStore, face_key, open_store, result_key

__all__ = ["NullStore", "ResultStore", "face_key", "open_store", "result_key"]
