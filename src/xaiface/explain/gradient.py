"""Plain saliency of the similarity score (Simonyan et al. 2014, applied to a pair).

``G_i = mean_c |d cos(e_i, e_j) / d x_i|`` for each image, the partner's embedding held fixed.
A plain gradient says how sensitive the score is to each pixel, not whether the pixel argues for
or against a match: it is reported as the similarity map (and as the combined map), with a zero
dissimilarity map. Cost: one forward of the pair and one backward pass carrying both images.
"""
from __future__ import annotations

from typing import Any

import torch

from .base import Cost, GradientExplainer, MapResult, Verifier, gaussian_blur2d, register_explainer


@register_explainer(
    "gradient", "gradient", "Simonyan, Vedaldi, Zisserman: Deep Inside Convolutional Networks, ICLR-W 2014",
    "|d similarity / d pixel|, mean over colour channels (white-box, 2 forwards + 2 VJPs)", needs_gradients=True,
)
class GradientSaliency(GradientExplainer):
    """Plain gradient saliency. Args: blur (default False), blur_size 5, blur_sigma 5."""

    def __init__(self, verifier: Verifier | Any = "dlib-resnet", blur: bool = False, blur_size: int = 5, blur_sigma: float = 5.0):
        super().__init__(verifier)
        self.blur, self.blur_size, self.blur_sigma = bool(blur), int(blur_size), float(blur_sigma)
        self.params = {"blur": self.blur, "blur_size": self.blur_size, "blur_sigma": self.blur_sigma}

    def _explain(self, xa: torch.Tensor, xb: torch.Tensor, which: tuple[int, ...], cost: Cost) -> MapResult:
        x, e = self._forward_pair(xa, xb, cost)
        ed = e.detach()
        rows = torch.tensor([[1.0 if i in which else 0.0] for i in (0, 1)], dtype=ed.dtype)
        (g,) = self._vjp(x, e, [torch.stack([ed[1], ed[0]]) * rows], cost)
        sal = g.abs().mean(dim=1)
        if self.blur:
            sal = gaussian_blur2d(sal, self.blur_size, self.blur_sigma)
        # sal >= 0: its positive part is itself, its negative part zero
        return MapResult((sal[0].numpy(), sal[1].numpy()), embeddings=(ed[0], ed[1]))
