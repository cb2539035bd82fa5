"""CorrRISE: rank correlation of random occlusions with the similarity (Lu, Xu, Ebrahimi; XAIface).

There is no official code; this follows FAME's transcription of the XAIface ``Corrise.py``
(Zhang & Guenther; ``corrise`` in FAME's perturbation baselines):

* ``N`` masks (default 500), each zeroing 3 square patches of 30x30 px at 112 px (scaled to the
  crop size ``S`` as ``round(30 * S / 112)``: 40 px at 150 px), whose top-left corners are drawn
  uniformly from ``[0, S - patch]`` so that every patch lies fully inside the image (patches may
  overlap). One seeded mask set is drawn once and reused for every pair and both images (the
  original builds it once at import time); it is cached on the explainer per crop size;
* masked image ``= image x mask`` (occluded pixels black); ``s_n = cos(f(partner), f(masked_n))``
  with the partner clean;
* per pixel, Spearman's rank correlation ``rho`` between the pixel's mask value (1 kept, 0
  occluded) and ``s_n`` over the ``N`` masks; a pixel never (or always) occluded has no variance
  and ``rho`` is NaN, set to 0 as in the original;
* ``similarity = max(rho, 0)``, ``dissimilarity = |min(rho, 0)|``, ``combined = rho``: a positive
  value means keeping the pixel goes with a higher similarity. No blur (CorrRISE has none).

Computation: the masks are binary, so their average ranks are an affine function of the mask
values and Spearman's ``rho`` equals Pearson's correlation between the binary mask and the
average ranks of ``s`` (ties share their mean rank, as ``scipy.stats.rankdata``): all pixels
at once as one ``(N,) x (N, S*S)`` product with the mask variances precomputed. (FAME ranks
with ``argsort``, which breaks ties by order; with continuous scores ties do not occur.)

Cost per pair: 2 clean forwards + ``N`` per explained image (1,002 for both images at N = 500).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata

from ..errors import ConfigError
from .base import Cost, MapResult, PerturbationExplainer, Verifier, register_explainer


def corrrise_masks(size: int, n_masks: int, n_patches: int, patch_size: int, seed: int) -> torch.Tensor:
    """``(n_masks, 1, size, size)`` float masks: 0 inside ``n_patches`` random squares, 1 elsewhere.

    Corners ``(row, column)`` are drawn from ``numpy.random.default_rng(seed).integers(0, size -
    patch_size + 1)``, ``n_patches`` per mask, so every square lies fully inside the crop.
    """
    corners = torch.from_numpy(np.random.default_rng(seed).integers(0, size - patch_size + 1, (n_masks, n_patches, 2)))
    ar = torch.arange(size)
    rows = (ar >= corners[..., :1]) & (ar < corners[..., :1] + patch_size)  # (N, K, S)
    cols = (ar >= corners[..., 1:]) & (ar < corners[..., 1:] + patch_size)
    occluded = torch.zeros(n_masks, size, size, dtype=torch.bool)
    for k in range(n_patches):
        occluded |= rows[:, k, :, None] & cols[:, k, None, :]
    return (~occluded).float()[:, None]


class _MaskSet:
    """One seeded mask set with what the correlation needs of it: flat masks and their spread."""

    def __init__(self, masks: torch.Tensor):
        self.masks = masks  # (N, 1, S, S)
        self.flat = masks.reshape(len(masks), -1)  # a view: (N, S*S)
        n = len(masks)
        total = self.flat.sum(0, dtype=torch.float64)
        # sqrt(sum_n (m_n - mean m)^2) per pixel: 0 where a pixel is never (or always) occluded
        self.norm = ((self.flat * self.flat).sum(0, dtype=torch.float64) - total * total / n).clamp_min(0).sqrt()


@register_explainer(
    "corrrise", "perturbation", "Lu, Xu, Ebrahimi: CorrRISE (XAIface project); no official code, FAME's "
    "transcription (Zhang & Guenther, CVPRW 2026)",
    "Spearman correlation of pixel occlusion with the similarity over 500 random 3-patch masks (2 + 500 forwards "
    "per image)",
)
class CorrRISE(PerturbationExplainer):
    """CorrRISE maps for both images of a pair.

    Args:
        verifier: model and threshold (the threshold only gives the verdict).
        n_masks: number of masks N (default 500, as the original).
        n_patches: occluding squares per mask (default 3, as the original).
        patch_size: side of the squares at ``reference_size`` px (default 30, as the original),
            scaled to the crop size as ``round(patch_size * S / reference_size)``.
        reference_size: crop size ``patch_size`` is given for (default 112).
        seed: seed of the one mask set (default 0).
        batch_size: images per forward batch (default 64). progress: show a progress bar.
    """

    def __init__(self, verifier: Verifier | Any = "dlib-resnet", n_masks: int = 500, n_patches: int = 3,
                 patch_size: int = 30, reference_size: int = 112, seed: int = 0, batch_size: int = 64,
                 progress: bool = False):
        super().__init__(verifier, batch_size=batch_size, progress=progress)
        s = self.verifier.input_size
        if n_masks < 2 or n_patches < 1 or patch_size < 1 or reference_size < 1:
            raise ConfigError(f"n_masks must be >= 2 and n_patches, patch_size, reference_size positive, got "
                              f"{n_masks}, {n_patches}, {patch_size}, {reference_size}")
        self.n_masks, self.n_patches, self.seed = int(n_masks), int(n_patches), int(seed)
        self.patch_size_px = max(1, round(int(patch_size) * s / reference_size))
        if self.patch_size_px > s:
            raise ConfigError(f"patch of {self.patch_size_px} px does not fit in a {s} px crop")
        self._mask_sets: dict[int, _MaskSet] = {}
        self.params = {
            "n_masks": self.n_masks, "n_patches": self.n_patches, "patch_size": int(patch_size),
            "reference_size": int(reference_size), "crop_size": s, "patch_size_px": self.patch_size_px,
            "seed": self.seed, "correlation": "spearman", "batch_size": self.batch_size,
        }

    def mask_set(self, size: int) -> _MaskSet:
        """The explainer's one mask set at crop size ``size`` (drawn once, then reused)."""
        if size not in self._mask_sets:
            self._mask_sets[size] = _MaskSet(corrrise_masks(size, self.n_masks, self.n_patches, self.patch_size_px,
                                                            self.seed))
        return self._mask_sets[size]

    def _explain(self, xa: torch.Tensor, xb: torch.Tensor, which: tuple[int, ...], cost: Cost) -> MapResult:
        ea, eb = self._clean(xa, xb, cost)
        size = xa.shape[-1]
        ms = self.mask_set(size)
        maps: list[np.ndarray | None] = [None, None]
        for i, x, partner in ((0, xa, eb), (1, xb, ea)):
            if i not in which:
                continue
            s = (self._embed_perturbed(x, ms.masks, self.n_masks, cost) @ partner[0]).double()
            maps[i] = spearman_map(ms, s.numpy()).reshape(size, size).astype(np.float32)
        return MapResult((maps[0], maps[1]), embeddings=(ea[0], eb[0]), extra={"n_masks": self.n_masks})


def spearman_map(masks: _MaskSet, scores: np.ndarray) -> np.ndarray:
    """Spearman's rho ``(S*S,)`` of each pixel's binary mask value with ``scores`` ``(N,)`` (NaN -> 0)."""
    r = torch.from_numpy(rankdata(scores)).double()
    rc = r - r.mean()
    # sum_n (m_n - mean m)(r_n - mean r) = sum_n m_n (r_n - mean r): one (N,) x (N, S*S) product
    cov = (rc.float() @ masks.flat).double()
    denom = masks.norm * rc.norm()
    rho = torch.where(denom > 0, cov / denom.clamp_min(1e-300), torch.zeros_like(cov))
    return rho.numpy()
