"""Face recognisers: the model contract, the registry and the implementations.

The registry and the specs (:mod:`.registry`, :mod:`.catalog`, :mod:`.spec`) import without
torch; the names below are imported on first use, so ``import xaiface.models`` stays cheap.
"""
from __future__ import annotations

from .._plugins import lazy_exports

_EXPORTS = {
    "FaceModel": ".base", "crops_to_tensor": ".base",
    "ModelSpec": ".spec", "Preprocessing": ".spec", "OperatingPoint": ".thresholds",
    "DEFAULT_MODEL": ".registry", "get_model": ".registry", "list_models": ".registry", "model_spec": ".registry",
    "register_model": ".registry",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
