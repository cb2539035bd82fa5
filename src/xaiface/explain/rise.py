"""RISE for a verification pair (Petsiuk, Das, Saenko, BMVC 2018, with the similarity as the score).

RISE's mask sampling, as in the authors' ``generate_masks`` (github.com/eclique/RISE):

* ``N`` binary ``s x s`` grids, each cell kept with probability ``p1``;
* each grid is upsampled bilinearly to ``(s + 1) * ceil(S / s)`` px
  (``skimage.transform.resize(grid, up, order=1, mode='reflect', anti_aliasing=False)``, which is
  ``scipy.ndimage.zoom(grid, up / s, order=1, mode='mirror', grid_mode=True)``) and cropped to
  ``S x S`` at a random offset in ``[0, ceil(S / s))`` in each axis.

Adapted to verification: the score of mask ``n`` for image ``i`` is ``s_n = cos(f(x_i * M_n),
f(x_j))`` with the partner ``x_j`` clean, and the saliency

    ``sal = 1 / (N p1) * sum_n (s_n - mean(s)) M_n``

Deviation from RISE: RISE weighs the masks by the raw score (``sum_n s_n M_n / (N p1)``), a map
that is everywhere positive for a similarity score and so cannot argue against a match.
Subtracting the mean score (``centre=True``, the default) turns it into a signed map -- the
covariance between keeping a pixel and the similarity, scaled by ``1 / p1`` -- positive where
keeping the pixel raises the similarity, negative where it lowers it; the centring shifts the
raw map by ``mean(s) * sum_n M_n / (N p1)``, which is nearly flat, and leaves the ranking of
most pixels unchanged. ``centre=False`` gives RISE's raw map. ``similarity = max(sal, 0)``,
``dissimilarity = max(-sal, 0)``, ``combined = sal``.

Defaults N = 5000, s = 12, p1 = 0.9 (the project's setting for faces; RISE's ImageNet examples
use other values). One mask set per explainer (seeded; RISE too draws its masks once and reuses
them), shared by both images and every pair. The ``N x S x S`` masks (450 MB at 150 px) are
never held: the grids and offsets are kept, and each batch of masks is made on demand as one
product ``A_rows @ grid @ A_cols^T`` with ``A`` the 1-D interpolation matrix.

Cost per pair: 2 clean forwards + ``N`` per explained image (10,002 for both images at N = 5000).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from ..errors import ConfigError
from .base import Cost, MapResult, PerturbationExplainer, Verifier, register_explainer


def upsampling_matrix(grid_size: int, out_size: int) -> torch.Tensor:
    """``(out_size, grid_size)`` matrix ``A`` with ``A @ g @ A.T`` = skimage's bilinear resize of ``g``.

    Column ``k`` is the 1-D ``ndimage.zoom`` (order 1, ``mirror`` borders, pixel-area grid) of the
    ``k``-th unit vector; linear interpolation being separable, the 2-D resize is ``A g A^T``.
    """
    eye = np.eye(grid_size)
    return torch.from_numpy(np.stack([ndimage.zoom(eye[k], out_size / grid_size, order=1, mode="mirror",
                                                   grid_mode=True) for k in range(grid_size)], 1)).float()


class RiseMasks:
    """A seeded RISE mask set for crop size ``size``, made batch by batch.

    Attributes:
        grids: ``(N, s, s)`` float 0/1. shifts: ``(N, 2)`` row and column offsets.
        upsample: ``(up, s)`` interpolation matrix, ``up = (s + 1) * ceil(size / s)``.
    """

    def __init__(self, size: int, n_masks: int, grid_size: int, p_keep: float, seed: int):
        rng = np.random.default_rng(seed)
        cell = math.ceil(size / grid_size)
        self.size, self.n, self.cell = size, n_masks, cell
        self.grids = torch.from_numpy(rng.random((n_masks, grid_size, grid_size)) < p_keep).float()
        self.shifts = torch.from_numpy(rng.integers(0, cell, (n_masks, 2)))
        self.upsample = upsampling_matrix(grid_size, (grid_size + 1) * cell)

    def __call__(self, i: int, j: int) -> torch.Tensor:
        """Masks ``i..j-1``: ``(j - i, 1, S, S)`` in [0, 1]."""
        ar = torch.arange(self.size)
        rows = self.upsample[self.shifts[i:j, 0, None] + ar]  # (B, S, s)
        cols = self.upsample[self.shifts[i:j, 1, None] + ar]
        return (rows @ self.grids[i:j] @ cols.transpose(1, 2))[:, None]


@register_explainer(
    "rise", "perturbation", "Petsiuk, Das, Saenko: RISE: Randomized Input Sampling for Explanation of Black-box "
    "Models, BMVC 2018 (adapted to the pair's similarity)",
    "similarity-weighted random smooth masks, centred on the mean similarity (2 + 5,000 forwards per image)",
)
class RISE(PerturbationExplainer):
    """RISE maps for both images of a pair.

    Args:
        verifier: model and threshold (the threshold only gives the verdict).
        n_masks: number of masks N (default 5000).
        grid_size: side s of the low-resolution grid (default 12).
        p_keep: probability p1 that a grid cell is kept (default 0.9).
        seed: seed of the one mask set (default 0).
        centre: subtract the mean similarity from the weights (default True; False: RISE's raw map).
        batch_size: images per forward batch (default 64). progress: show a progress bar.
    """

    def __init__(self, verifier: Verifier | Any = "dlib-resnet", n_masks: int = 5000, grid_size: int = 12,
                 p_keep: float = 0.9, seed: int = 0, centre: bool = True, batch_size: int = 64,
                 progress: bool = False):
        super().__init__(verifier, batch_size=batch_size, progress=progress)
        s = self.verifier.input_size
        if n_masks < 1 or grid_size < 1 or grid_size > s or not 0 < p_keep <= 1:
            raise ConfigError(f"need n_masks >= 1, 1 <= grid_size <= {s} and 0 < p_keep <= 1, got {n_masks}, "
                              f"{grid_size}, {p_keep}")
        self.n_masks, self.grid_size, self.p_keep = int(n_masks), int(grid_size), float(p_keep)
        self.seed, self.centre = int(seed), bool(centre)
        cell = math.ceil(s / self.grid_size)
        self._mask_sets: dict[int, RiseMasks] = {}
        self.params = {
            "n_masks": self.n_masks, "grid_size": self.grid_size, "p_keep": self.p_keep, "seed": self.seed,
            "centre": self.centre, "crop_size": s, "cell_px": cell, "upsampled_px": (self.grid_size + 1) * cell,
            "batch_size": self.batch_size,
        }

    def mask_set(self, size: int) -> RiseMasks:
        """The explainer's one mask set at crop size ``size`` (grids drawn once, masks made per batch)."""
        if size not in self._mask_sets:
            self._mask_sets[size] = RiseMasks(size, self.n_masks, self.grid_size, self.p_keep, self.seed)
        return self._mask_sets[size]

    def _explain(self, xa: torch.Tensor, xb: torch.Tensor, which: tuple[int, ...], cost: Cost) -> MapResult:
        ea, eb = self._clean(xa, xb, cost)
        size = xa.shape[-1]
        masks = self.mask_set(size)
        maps: list[np.ndarray | None] = [None, None]
        means = {}
        for i, x, partner in ((0, xa, eb), (1, xb, ea)):
            if i not in which:
                continue
            s = self._embed_perturbed(x, masks, self.n_masks, cost) @ partner[0]
            means[i] = float(s.double().mean())
            w = (s - means[i]) if self.centre else s
            maps[i] = weighted_mask_sum(masks, w / (self.n_masks * self.p_keep), self.batch_size).numpy()
        return MapResult((maps[0], maps[1]), embeddings=(ea[0], eb[0]),
                         extra={"n_masks": self.n_masks, "mean_masked_similarity": means})


@torch.inference_mode()
def weighted_mask_sum(masks: RiseMasks, weights: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """``sum_n weights_n M_n`` ``(S, S)``, remaking the masks batch by batch."""
    out = torch.zeros(masks.size * masks.size, dtype=torch.float64)
    for i in range(0, masks.n, batch_size):
        j = min(masks.n, i + batch_size)
        out += (weights[i:j].float() @ masks(i, j).reshape(j - i, -1)).double()
    return out.reshape(masks.size, masks.size).float()
