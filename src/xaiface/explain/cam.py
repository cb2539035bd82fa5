"""Layer-wise maps of the similarity score: three white-box methods at 2 forwards + 1 backward an image.

The pixel-gradient maps (``gradient``, ``xssab``, ``fggb``) ask how sensitive the score is to each
pixel. These ask what each *place* of an internal feature map contributes to the score, and
project it back to the crop. They read a layer the model's spec declares
(:attr:`~xaiface.models.spec.ModelSpec.layers`) and need one backward pass per explained image
that stops at that layer.

The score. For image ``a`` with raw embedding ``f_a`` and the partner's normalised embedding
``e_b`` held fixed, ``s_a = <f_a, e_b> / |f_a|`` with the norm ``|f_a|`` *held fixed* in the
gradient. Its value is the cosine similarity; keeping the norm fixed makes it linear in ``f_a``,
so that where the embedding is an affine function of the layer's maps ``A`` (global pooling or
flattening, then linear layers and batch norm in eval mode: the spec's ``"last"`` layer),
``sum_{c,i,j} (ds_a / dA_cij) A_cij = s_a - s_a(A = 0)`` exactly (Euler's theorem for the linear
part; ``s_a(0)`` is the head's bias term, 0 for dlib and FaceRes). Through the full cosine
instead, the sum would be 0 for any bias-free head (the cosine is scale-invariant), so the
normalisation is not differentiated. For image ``b`` the roles swap.

The methods (``G = ds / dA``, ``(C, h, w)``; maps signed: > 0 similar, < 0 dissimilar):

* ``simcam``: ``M_ij = sum_c G_cij A_cij`` at the ``"last"`` layer: the exact decomposition of the
  cosine over the places of the last spatial maps, which for a global-average-pooling network is
  the similarity decomposition of Stylianou, Souvenir and Pless (Visualizing Deep Similarity
  Networks, WACV 2019) and, as a method, HiResCAM at that layer. The cells sum to the cosine
  minus the bias term (``extra["cell_sum"]``, ``extra["score"]``).
* ``hirescam``: the same product at the ``"cam"`` layer (output stride <= 16: finer places;
  Draelos & Carin, Use HiResCAM instead of Grad-CAM for faithful explanations of convolutional
  neural networks, 2020). Beyond the last layer the head is not affine, so this is a first-order
  (gradient x activation) estimate, not an exact decomposition.
* ``gradcam``: Grad-CAM (Selvaraju et al., ICCV 2017) at the ``"cam"`` layer: channel weights
  ``w_c = mean_ij G_cij``, ``M_ij = sum_c w_c A_cij``. Grad-CAM's final ReLU, which keeps a
  class's positive evidence, is not applied: the positive part is the similarity map and the
  negative part the dissimilarity map, as for every method here.

Projection back: bilinear interpolation of the ``(h, w)`` map to the crop (``align_corners=False``,
the resizing of the common Grad-CAM implementations), no blur. The layers were fixed by a rule
written down before any of these methods was run on Patch-LFW (see ``ModelSpec.layers``), and no
parameter here was tuned on it.

Cost: the pair's 2 forwards, and one backward pass per explained image that runs from the
embedding to the layer only (counted as a full backward pass, so at most 4 forward-equivalents
per explained image, 6 for both).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError, NumericalError
from .base import Cost, GradientExplainer, MapResult, Verifier, register_explainer


class LayerScoreExplainer(GradientExplainer):
    """Shared machinery: the score's gradient at a declared layer; subclasses turn it into a map.

    Args:
        verifier: model and threshold.
        layer: a key of the model spec's ``layers`` (``"last"`` or ``"cam"``) or a layer name of
            the model (a module path, or a graph node name); default per method.
    """

    default_layer = "last"

    def __init__(self, verifier: Verifier | Any = "dlib-resnet", layer: str | None = None):
        super().__init__(verifier)
        model = self.verifier.model
        key = layer or self.default_layer
        self.layer = model.layer_name(key) if key in ("last", "cam") else key
        self.params = {"layer": self.layer, "layer_key": key if key in ("last", "cam") else None,
                       "interpolation": "bilinear"}

    def _cells(self, g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _layer_gradients(self, xa: torch.Tensor, xb: torch.Tensor, which: tuple[int, ...], cost: Cost
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(e, A, G)``: the pair's normalised embeddings ``(2, D)``, the layer's maps ``(2, C, h, w)``
        and each explained image's score gradient there (zero rows for the others), detached."""
        x = torch.cat([xa, xb]).detach().requires_grad_(True)  # so that the layer's maps carry a graph
        cost.n_forward += 2
        f, maps = self.verifier.model.forward_with_layers(x, [self.layer])
        a = maps[self.layer]
        if not torch.isfinite(f).all():
            raise NumericalError(f"model {self.verifier.model.spec.name} produced NaN or infinite embeddings")
        if a.ndim != 4:
            raise ConfigError(f"{self.name}: layer {self.layer!r} of {self.verifier.model.spec.name} gives "
                              f"{tuple(a.shape)}, not (B, C, h, w) maps")
        e = F.normalize(f.detach(), dim=1)
        norm = f.detach().norm(dim=1, keepdim=True).clamp_min(torch.finfo(f.dtype).tiny)
        rows = torch.tensor([[1.0 if i in which else 0.0] for i in (0, 1)], dtype=f.dtype)
        cot = torch.stack([e[1], e[0]]) / norm * rows  # d s_i / d f_i, the norm held fixed
        (g,) = torch.autograd.grad(f, a, grad_outputs=cot)
        cost.n_backward += len(which)
        return e, a.detach(), g

    def _explain(self, xa: torch.Tensor, xb: torch.Tensor, which: tuple[int, ...], cost: Cost) -> MapResult:
        e, a, g = self._layer_gradients(xa, xb, which, cost)
        cells = self._cells(g, a)  # (2, h, w)
        s = self.verifier.input_size
        up = F.interpolate(cells[:, None], size=(s, s), mode="bilinear", align_corners=False)[:, 0]
        score = (e[0] * e[1]).sum()
        out = [up[i].numpy() if i in which else None for i in (0, 1)]
        return MapResult((out[0], out[1]), embeddings=(e[0], e[1]),
                         extra={"layer": self.layer, "cells": list(cells.shape[1:]), "score": float(score),
                                "cell_sum": [float(cells[i].sum()) if i in which else None for i in (0, 1)]})


@register_explainer(
    "simcam", "gradient", "Stylianou, Souvenir, Pless: Visualizing Deep Similarity Networks, WACV 2019 "
    "(HiResCAM at the last spatial layer, the cosine's exact decomposition for an affine head)",
    "each place of the last spatial maps' share of the cosine (white-box, 2 forwards + 1 partial backward an image)",
    needs_gradients=True,
)
class SimCAM(LayerScoreExplainer):
    """The cosine decomposed over the places of the last spatial maps (``layer="last"``)."""

    default_layer = "last"

    def _cells(self, g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return (g * a).sum(dim=1)


@register_explainer(
    "hirescam", "gradient", "Draelos & Carin: Use HiResCAM instead of Grad-CAM for faithful explanations "
    "of convolutional neural networks, arXiv 2011.08891, 2020 (for the similarity score)",
    "gradient x activation of the similarity at the stride-16 layer, summed over channels (white-box, 2 + 1 partial backward)",
    needs_gradients=True,
)
class HiResCAM(SimCAM):
    """Gradient x activation at the model's ``"cam"`` layer (finer than the last maps; first-order there)."""

    default_layer = "cam"


@register_explainer(
    "gradcam", "gradient", "Selvaraju et al.: Grad-CAM, ICCV 2017 (for the similarity score, signed)",
    "channel-mean gradient weights x activations at the stride-16 layer (white-box, 2 + 1 partial backward)",
    needs_gradients=True,
)
class GradCAM(LayerScoreExplainer):
    """Grad-CAM of the similarity at the model's ``"cam"`` layer, without the final ReLU (signed)."""

    default_layer = "cam"

    def _cells(self, g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return (g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1)
