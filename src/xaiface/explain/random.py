"""The random baseline of the Patch-LFW protocol (Huber et al., WACV 2024).

One seeded random map (a uniform value per pixel, i.e. one random permutation of the pixels) is
used for every pair and both images, as the reference's baseline uses one seeded permutation.
``combined = 2u - 1`` with ``u ~ U[0, 1)``; similarity ``max(combined, 0)``, dissimilarity
``max(-combined, 0)``. Cost: the two forwards of the clean pair (for the verdict).

``reference=True`` (the benchmark's ``--reference-rules``) uses the reference code's own pixel
order instead (``evaluation/replacement.py``, ``get_random_masks``: NumPy's legacy generator
seeded with ``seed`` shuffles ``arange(N)`` over the raster-order pixels; the reference seeds
with 3), encoded as distinct decreasing values so that the map ranks the pixels in exactly that
order (:func:`permutation_map`). The benchmark then replaces a prefix of that order for matched
and non-matched pairs alike (the DPR rule ``"prefix"`` of :mod:`xaiface.bench.protocol`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .base import Cost, Explainer, MapResult, Verifier, register_explainer


def uniform_map(size: int, seed: int = 0) -> np.ndarray:
    """The default random map: ``2u - 1``, ``u ~ U[0, 1)`` from ``np.random.default_rng(seed)``; ``(size, size)`` float32."""
    return (2 * np.random.default_rng(int(seed)).random((size, size)) - 1).astype(np.float32)


def reference_order(n: int, seed: int = 3) -> np.ndarray:
    """The reference's random pixel order: ``arange(n)`` shuffled by NumPy's legacy generator
    seeded with ``seed`` (the same stream as ``np.random.seed(seed)`` then ``np.random.shuffle``,
    without touching the global state). Returns ``(n,)`` int64 flat (raster-order) pixel indices."""
    order = np.arange(int(n), dtype=np.int64)
    np.random.RandomState(int(seed)).shuffle(order)
    return order


def permutation_map(size: int, seed: int = 3) -> np.ndarray:
    """A ``(size, size)`` float32 map in (-1, 1) whose ranking (highest first) is :func:`reference_order`:
    the pixel at position ``k`` of the order gets ``1 - (2k + 1) / N`` (distinct in float32 for
    any crop size up to 2048 px)."""
    n = int(size) * int(size)
    values = np.empty(n, dtype=np.float64)
    values[reference_order(n, seed)] = 1 - (2 * np.arange(n) + 1) / n
    return values.astype(np.float32).reshape(size, size)


@register_explainer("random", "baseline", "Huber et al., WACV 2024 (DPR random baseline)",
                    "one seeded random pixel order for every pair (baseline)")
class RandomBaseline(Explainer):
    """Args: seed (default 0); reference: the reference code's pixel order (:func:`permutation_map`,
    default False: :func:`uniform_map`)."""

    def __init__(self, verifier: Verifier | Any = "dlib-resnet", seed: int = 0, reference: bool = False):
        super().__init__(verifier)
        self.seed = int(seed)
        self.params = {"seed": self.seed, **({"reference": True} if reference else {})}
        s = self.verifier.input_size
        self._map = permutation_map(s, self.seed) if reference else uniform_map(s, self.seed)

    def _explain(self, xa: torch.Tensor, xb: torch.Tensor, which: tuple[int, ...], cost: Cost) -> MapResult:
        with torch.inference_mode():
            e = self._embed(torch.cat([xa, xb]), cost)
        return MapResult((self._map.copy(), self._map.copy()), embeddings=(e[0], e[1]))
