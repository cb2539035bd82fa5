"""The face-model contract: a module from RGB pixels to an embedding, with its metadata.

Every recogniser is a :class:`FaceModel`: ``forward`` takes float RGB pixels in ``[0, 255]``,
shape ``(B, 3, S, S)`` at the model's aligned-crop size, and returns raw (not normalised)
embeddings ``(B, D)``. Colour order and normalisation happen inside ``forward`` so that
gradients reach the pixels, and no caller ever guesses a model's preprocessing.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, NumericalError
from .spec import ModelSpec, Preprocessing  # noqa: F401  (re-exported: their home before spec.py)


def _flush_denormals() -> None:
    """Flush denormal floats to zero (once, process-wide) unless ``XAIFACE_KEEP_DENORMALS=1``.

    Backward passes through face networks produce denormal gradients (below 1.2e-38); on x86
    CPUs each costs ~100x a normal multiply, which made one xSSAB explanation 5-10x slower on
    some faces. Zeroing them changes results by less than 1e-38 per value.
    """
    import os

    if os.environ.get("XAIFACE_KEEP_DENORMALS") != "1":
        torch.set_flush_denormal(True)


class _FeaturesOf(nn.Module):
    """``model.features`` as a module of its own, for tracing."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


class FaceModel(nn.Module):
    """A recogniser with its :class:`ModelSpec`.

    Subclasses implement :meth:`features`, taking the normalised network input. ``forward``
    handles the colour order and normalisation.

    Subclasses whose :meth:`features` is a plain stack of torch operations (no Python branch on
    values, no call out of torch) set ``frozen_inference = True``: without autograd
    (``torch.no_grad`` / ``torch.inference_mode``) and in eval mode, ``forward`` then runs
    :meth:`features` through a frozen TorchScript trace of the network (``torch.jit.freeze`` +
    ``optimize_for_inference``), built on first use and rebuilt when a parameter changes. On this
    project's 2-core CPU it embeds 1.09-1.11x as many faces per second as the eager network, one
    thread (``benchmarks/replace_and_score.py``, same run), and its outputs agree with the eager
    ones to float rounding (a test checks 1e-5). Gradients always take the eager path.
    ``XAIFACE_FROZEN_INFERENCE=0`` (or ``model.frozen_inference = False``) turns it off; a network
    that cannot be traced falls back to the eager path once and for all.
    """

    frozen_inference: bool = False

    def __init__(self, spec: ModelSpec):
        super().__init__()
        _flush_denormals()
        self.spec = spec
        p = spec.preprocessing
        if p.color_order not in ("RGB", "BGR"):
            raise ConfigError(f"model {spec.name}: color_order must be 'RGB' or 'BGR', got {p.color_order!r}")
        self.register_buffer("_mean", torch.tensor(p.mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(p.std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    @property
    def input_size(self) -> int:
        return self.spec.preprocessing.input_size

    @property
    def weights_sha256(self) -> str | None:
        """SHA-256 of the weight file this model was loaded from (``None``: random or in-memory weights)."""
        return self.spec.weights_sha256

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """RGB pixels in 0..255 ``(B, 3, S, S)`` -> the network's input."""
        if self.spec.preprocessing.color_order == "BGR":
            pixels = pixels.flip(1)
        return (pixels - self._mean) / self._std

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Raw embeddings ``(B, D)`` of RGB pixels ``(B, 3, S, S)`` in 0..255."""
        x = self.normalize(self._checked(pixels).float())
        if not torch.is_grad_enabled() and not self.training and self.frozen_inference:
            frozen = self._frozen_features(x)
            if frozen is not None:
                return frozen(x)
        return self.features(x)

    def layer_name(self, key: str) -> str:
        """The internal layer the spec names ``key`` (``"last"``, ``"cam"``); ConfigError if none."""
        name = self.spec.layers.get(key)
        if not name:
            raise ConfigError(f"model {self.spec.name} declares no {key!r} layer (ModelSpec.layers: "
                              f"{sorted(self.spec.layers) or 'none'}); layer-wise explainers need it")
        return name

    def forward_with_layers(self, pixels: torch.Tensor, layers: "list[str] | tuple[str, ...]") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Raw embeddings ``(B, D)`` and the activations of the named internal layers, in one eager forward.

        Layers are module paths of this model (``"blocks.13"``), read by forward hooks; a graph
        model overrides :meth:`_features_with_layers` to read its node names instead. The
        activations stay in the autograd graph, so ``torch.autograd.grad(score, maps)`` gives a
        score's gradient with respect to them.

        Raises:
            ConfigError: a layer that is not a module of the model, or that produced no tensor.
        """
        return self._features_with_layers(self.normalize(self._checked(pixels).float()), list(layers))

    def _features_with_layers(self, x: torch.Tensor, layers: list[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:meth:`features` of the network input ``x``, with the named modules' outputs (forward hooks)."""
        got: dict[str, torch.Tensor] = {}
        handles = []
        try:
            for name in layers:
                try:
                    mod = self.get_submodule(name)
                except AttributeError:
                    raise ConfigError(f"model {self.spec.name} has no layer {name!r}") from None
                handles.append(mod.register_forward_hook(lambda m, i, o, n=name: got.__setitem__(n, o)))
            emb = self.features(x)
        finally:
            for h in handles:
                h.remove()
        missing = [n for n in layers if not isinstance(got.get(n), torch.Tensor)]
        if missing:
            raise ConfigError(f"model {self.spec.name}: layers {missing} produced no tensor")
        return emb, got

    def _checked(self, pixels: torch.Tensor) -> torch.Tensor:
        """``pixels`` when they are ``(B, 3, S, S)`` at this model's crop size (else ConfigError)."""
        s = self.input_size
        if pixels.ndim != 4 or pixels.shape[1] != 3 or pixels.shape[2] != s or pixels.shape[3] != s:
            raise ConfigError(
                f"model {self.spec.name} expects pixels of shape (B, 3, {s}, {s}), got {tuple(pixels.shape)}"
            )
        return pixels

    def _frozen_features(self, example: torch.Tensor) -> Any:
        """The frozen trace of :meth:`features` for this device and dtype (None: eager)."""
        import os
        import warnings

        if os.environ.get("XAIFACE_FROZEN_INFERENCE", "1") == "0":
            return None
        cache = self.__dict__.setdefault("_frozen_cache", {})
        if cache.get("failed"):
            return None
        key = (example.device, example.dtype, tuple(example.shape[1:]),
               tuple((id(p), p._version) for p in self.parameters()))
        if cache.get("key") == key:
            return cache["module"]
        try:
            with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ex = example[:2].clone()
                traced = torch.jit.trace(_FeaturesOf(self).eval(), ex, check_trace=False)
                module = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
                ok = torch.allclose(module(ex), self.features(ex), rtol=1e-4, atol=1e-4)
        except Exception:  # noqa: BLE001 - any tracing failure means: stay eager
            ok = False
        cache.clear()
        if not ok:
            cache["failed"] = True
            return None
        cache.update(key=key, module=module)
        return module

    @torch.no_grad()
    def embed(self, crops: np.ndarray | torch.Tensor | list, batch_size: int = 32, normalize: bool = True) -> np.ndarray:
        """Embeddings of aligned crops (``(S, S, 3)`` uint8 each, or ``(B, S, S, 3)``).

        Returns ``(B, D)`` float32, L2-normalised unless ``normalize=False``.
        Raises :class:`~xaiface.errors.NumericalError` when the model yields NaN or inf.
        """
        x = crops_to_tensor(crops)
        was_training = self.training
        self.eval()
        out = []
        for i in range(0, x.shape[0], batch_size):
            out.append(self(x[i : i + batch_size]))
        self.train(was_training)
        e = torch.cat(out) if out else torch.zeros(0, self.spec.embedding_size)
        if not torch.isfinite(e).all():
            raise NumericalError(f"model {self.spec.name} produced NaN or infinite embeddings")
        if normalize:
            e = torch.nn.functional.normalize(e, dim=1)
        return e.numpy().astype(np.float32)


def crops_to_tensor(crops: np.ndarray | torch.Tensor | list) -> torch.Tensor:
    """``(B, S, S, 3)`` uint8 (array, tensor or list of arrays) -> float ``(B, 3, S, S)`` in 0..255."""
    if isinstance(crops, list):
        crops = np.stack([np.asarray(c) for c in crops]) if crops else np.zeros((0, 1, 1, 3), np.uint8)
    if isinstance(crops, np.ndarray):
        crops = torch.from_numpy(np.ascontiguousarray(crops))
    if crops.ndim == 3:
        crops = crops[None]
    if crops.ndim != 4 or crops.shape[-1] != 3:
        raise ConfigError(f"expected aligned crops of shape (B, S, S, 3), got {tuple(crops.shape)}")
    return crops.permute(0, 3, 1, 2).float()
