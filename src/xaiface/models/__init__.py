"""Face recognisers: the model contract, the registry and the implementations.

The registry and the specs (:mod:`.registry`, :mod:`.catalog`, :mod:`.spec`) import without
torch; the names below are imported on first use, so ``import xaiface.models`` stays cheap.
"""
from __future__ import annotations

from .._plugins import lazy_exports

_EXPORTS = {
    ".base": ("FaceModel", "crops_to_tensor"),
    ".spec": ("ModelSpec", "Preprocessing"),
    ".thresholds": ("OperatingPoint",),
    ".registry": ("DEFAULT_MODEL", "get_model", "list_models", "model_spec", "register_model"),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
