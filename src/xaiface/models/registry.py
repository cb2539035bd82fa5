"""The model registry: ``register_model``, ``list_models``, ``get_model``, ``model_spec``.

In the manner of timm's ``_registry.py``: a builder function is registered under a name with
its :class:`~xaiface.models.base.ModelSpec`; ``get_model(name, weights=...)`` builds it and loads
weights from the user's file (or the packaged default).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..registry import Registry
from .catalog import BUILDERS, SPECS
from .spec import ModelSpec

if TYPE_CHECKING:  # the torch side is imported only to build a model
    from .base import FaceModel

#: builders ``builder(spec, weights=None, **kwargs) -> FaceModel``, each with its ``spec`` (metadata);
#: the built-ins' specs come from the torch-free catalog, their modules register the builders
#: when first built
MODELS: Registry[Callable[..., FaceModel]] = Registry("model")
for _name, _module in BUILDERS.items():
    MODELS.register_lazy(_name, _module, spec=SPECS[_name])

#: Models that passed the degenerate-model probe: (name, weights identity, builder arguments).
_PROBED: set[tuple[str, str, str]] = set()

DEFAULT_MODEL = "dlib-resnet"


def register_model(spec: ModelSpec, *, replace: bool = False) -> Callable[[Callable[..., FaceModel]], Callable[..., FaceModel]]:
    """Decorator registering ``builder(spec, weights=None, **kwargs) -> FaceModel`` under ``spec.name``.

    Raises:
        ConfigError: the name is registered already (unless ``replace``).
    """
    return MODELS.register(spec.name, replace=replace, spec=spec)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style wildcard, sorted."""
    return MODELS.list(pattern)


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registered model (ModelNotFoundError for an unknown name)."""
    return MODELS.meta(name)["spec"]


def get_model(name: str = DEFAULT_MODEL, weights: Any = None, **kwargs: Any) -> FaceModel:
    """Build a registered model and load its weights.

    Args:
        name: a name from :func:`list_models`.
        weights: a path to the user's weight file, ``None`` for the packaged default (an error
            for models without one), or ``"random"`` for a randomly initialised network (tests).
        **kwargs: passed to the builder.
    Returns:
        the model in eval mode; ``model.weights_sha256`` is the SHA-256 of the file loaded.
    Raises:
        ModelNotFoundError: unknown name.
        WeightsError: missing, truncated or mismatched weight file; a packaged file whose SHA-256
            is not the recorded one; a model whose embeddings are degenerate on the built-in probe
            (:func:`~xaiface.models.integrity.check_not_degenerate`; run once per weight file
            digest, or per seed for ``"random"``, in a process).
    """
    builder = MODELS.get(name)  # a built-in: importing its module registers the builder
    from .integrity import check_not_degenerate  # torch: only once a model is built

    model = builder(model_spec(name), weights=weights, **kwargs)
    random = isinstance(weights, str) and weights == "random"
    ident = "random" if random else model.spec.weights_sha256  # None: in-memory weights, always probed
    key = (name, ident or "", repr(sorted(kwargs.items())))
    if ident is None or key not in _PROBED:
        source = ("random weights" if random else str(weights) if weights is not None
                  else f"the packaged weights of {name}")
        check_not_degenerate(model, source)
        if ident is not None:
            _PROBED.add(key)
    return model.eval()
