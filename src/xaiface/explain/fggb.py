"""FGGB: the feature-gradient baseline of Lu et al. (as FAME, Zhang & Guenther, CVPRW 2026, uses it).

For a pair with L2-normalised embeddings ``e_a``, ``e_b`` (``N`` dimensions) and the decision
threshold ``th`` (EER by default, as xSSAB), for image ``a`` (and likewise ``b``):

* per embedding dimension ``k``: ``g_k = mean_c |d e_a,k / d x_a|`` (one backward pass a
  dimension), L2-normalised over the pixels (``g_k / ||g_k||_2``; a zero map stays zero);
* ``S = sum_k (e_a,k e_b,k - th / N) g_k``: each dimension's map weighted by its similarity
  argument minus the argument threshold of xSSAB;
* a 25 x 25 Gaussian blur with sigma 5; similarity map ``max(S, 0)``, dissimilarity ``max(-S, 0)``.

These are the parameters of ``../shared/REFERENCES.md`` (no public code of FGGB was found). Two
choices: the gradients are those of the normalised embedding (whose products sum to the cosine
similarity, as in xSSAB), and of RGB pixels in 0..255 (the model's constant input scaling changes
every ``g_k`` by the same factor, removed by the L2 normalisation).

Cost: 2 forwards for the clean pair, then per explained image ``N`` forwards and ``N`` backward
passes. The ``N`` backward passes are batched: ``chunk`` copies of the image go forward as one
batch and one backward pass carries a one-hot cotangent per copy. Copies cost a forward each, but
on this CPU this was faster than one forward with ``N`` vmapped vector-Jacobian products
(``is_grads_batched``: dlib 0.82 s against 1.33 s per 32 dimensions).
"""
from __future__ import annotations

from typing import Any

import torch

from ..errors import ConfigError
from .base import Cost, GradientExplainer, MapResult, Verifier, gaussian_blur2d, register_explainer


@register_explainer(
    "fggb", "gradient", "Lu et al. (XAIface), the feature-gradient baseline of FAME (Zhang & Guenther, CVPRW 2026)",
    "per-dimension |gradient| maps weighted by (e_a,k e_b,k - th/N), blur 25 / sigma 5 (white-box, 2 forwards + N forwards and N backwards an image, batched)",
    needs_gradients=True,
)
class FGGB(GradientExplainer):
    """FGGB maps.

    Args:
        verifier: model and threshold (``th``; EER by default).
        blur: apply the Gaussian blur (default True). blur_size: 25. blur_sigma: 5.
        chunk: embedding dimensions per batched backward pass (default 32; memory grows with it).
        dimensions: only the first ``dimensions`` embedding dimensions (default ``None``: all
            ``N``, the method). A truncated sum is not FGGB: it exists for quick checks of the
            mechanics on large embeddings (FaceRes's 1,024 dimensions cost ~3 minutes a pair here)
            and is recorded in the parameters.
    """

    def __init__(self, verifier: Verifier | Any = "dlib-resnet", blur: bool = True, blur_size: int = 25,
                 blur_sigma: float = 5.0, chunk: int = 32, dimensions: int | None = None):
        super().__init__(verifier)
        if blur and (blur_size < 1 or blur_size % 2 == 0 or blur_sigma <= 0):
            raise ConfigError(f"blur_size must be odd and positive and blur_sigma positive, got {blur_size}, {blur_sigma}")
        if chunk < 1:
            raise ConfigError(f"chunk must be >= 1, got {chunk}")
        if dimensions is not None and not 1 <= int(dimensions) <= self.verifier.embedding_size:
            raise ConfigError(f"dimensions must be in 1..{self.verifier.embedding_size}, got {dimensions}")
        self.dimensions = None if dimensions is None else int(dimensions)
        self.blur, self.blur_size, self.blur_sigma, self.chunk = bool(blur), int(blur_size), float(blur_sigma), int(chunk)
        n = self.verifier.embedding_size
        self.params = {"threshold": self.verifier.threshold, "threshold_name": self.verifier.threshold_name,
                       "tau": self.verifier.threshold / n, "blur": self.blur, "blur_size": self.blur_size,
                       "blur_sigma": self.blur_sigma}
        if self.dimensions is not None:
            self.params["dimensions"] = self.dimensions

    def _dimension_maps(self, x1: torch.Tensor, weights: torch.Tensor, cost: Cost) -> torch.Tensor:
        """``sum_k weights_k g_k`` for one image ``x1`` ``(1, 3, S, S)``: ``(S, S)``."""
        n = int(weights.shape[0]) if self.dimensions is None else self.dimensions
        total = torch.zeros(x1.shape[-2:], dtype=torch.float32)
        for k0 in range(0, n, self.chunk):
            k1 = min(n, k0 + self.chunk)
            xr = x1.detach().expand(k1 - k0, -1, -1, -1).clone().requires_grad_(True)
            er = self._embed(xr, cost)
            onehot = torch.zeros_like(er)
            onehot[torch.arange(k1 - k0), torch.arange(k0, k1)] = 1.0
            (g,) = torch.autograd.grad(er, xr, grad_outputs=onehot)
            cost.n_backward += k1 - k0
            gk = g.abs().mean(dim=1)  # (k, S, S)
            norm = gk.flatten(1).norm(dim=1).clamp_min(torch.finfo(gk.dtype).tiny)
            total += (weights[k0:k1, None, None] * gk / norm[:, None, None]).sum(dim=0)
        return total

    def _explain(self, xa: torch.Tensor, xb: torch.Tensor, which: tuple[int, ...], cost: Cost) -> MapResult:
        with torch.no_grad():
            e = self._embed(torch.cat([xa, xb]), cost)
        n = int(e.shape[1])
        w = e[0] * e[1] - self.verifier.threshold / n  # the same argument weights for both images
        maps: list[Any] = [None, None]
        for i, x1 in enumerate((xa, xb)):
            if i not in which:
                continue
            s = self._dimension_maps(x1, w, cost)
            if self.blur:
                s = gaussian_blur2d(s, self.blur_size, self.blur_sigma)
            maps[i] = s.numpy()
        n_pos = int((w >= 0).sum())
        return MapResult((maps[0], maps[1]), embeddings=(e[0], e[1]),
                         extra={"n_positive_arguments": n_pos, "n_negative_arguments": n - n_pos})
