"""The random baseline of the Patch-LFW protocol (Huber et al., WACV 2024).

One seeded random map (a uniform value per pixel, i.e. one random permutation of the pixels) is
used for every pair and both images, as the reference's baseline uses one seeded permutation.
``combined = 2u - 1`` with ``u ~ U[0, 1)``; similarity ``max(combined, 0)``, dissimilarity
``max(-combined, 0)``. Cost: the two forwards of the clean pair (for the verdict).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .base import Cost, Explainer, MapResult, Verifier, register_explainer


@register_explainer("random", "baseline", "Huber et al., WACV 2024 (DPR random baseline)",
                    "one seeded random pixel order for every pair (baseline)")
class RandomBaseline(Explainer):
    """Args: seed (default 0)."""

    def __init__(self, verifier: Verifier | Any = "dlib-resnet", seed: int = 0):
        super().__init__(verifier)
        self.seed = int(seed)
        self.params = {"seed": self.seed}
        s = self.verifier.input_size
        self._map = (2 * np.random.default_rng(self.seed).random((s, s)) - 1).astype(np.float32)

    def _explain(self, xa: torch.Tensor, xb: torch.Tensor, which: tuple[int, ...], cost: Cost) -> MapResult:
        with torch.inference_mode():
            e = self._embed(torch.cat([xa, xb]), cost)
        return MapResult((self._map.copy(), self._map.copy()), embeddings=(e[0], e[1]))
