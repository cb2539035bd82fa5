"""Face recognisers: the model contract, the registry and the implementations."""
from __future__ import annotations

from .base import FaceModel, ModelSpec, Preprocessing, crops_to_tensor  # noqa: F401
from .registry import DEFAULT_MODEL, get_model, list_models, model_spec, register_model  # noqa: F401
