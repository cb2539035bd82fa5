"""A planted-evidence check: does a map find a block of another identity pasted into a face?

Genuine LFW pairs; in the first image's aligned crop a square block (over nose and mouth by
default) is replaced by the same block of another person's crop. A dissimilarity map that
localises the planted evidence has a higher mean inside the block than outside.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..types import AlignedFace


@dataclass(frozen=True)
class PlantedPair:
    probe: np.ndarray  # (S, S, 3) uint8: the first image with the planted block
    reference: np.ndarray  # (S, S, 3) uint8: the second image, untouched
    mask: np.ndarray  # (S, S) bool: the planted block
    names: tuple[str, str, str]  # (person, second image's person, donor person)


def block_mask(size: int, block: int, centre: tuple[float, float]) -> np.ndarray:
    """``(S, S)`` bool mask of a ``block x block`` square centred at ``centre = (x, y)``."""
    m = np.zeros((size, size), bool)
    x0 = int(round(centre[0] - block / 2))
    y0 = int(round(centre[1] - block / 2))
    m[max(0, y0) : y0 + block, max(0, x0) : x0 + block] = True
    return m


def planted_pairs(pipeline: Any, n: int = 10, block_fraction: float = 0.3, centre_fraction: tuple[float, float] = (0.5, 0.62),
                  data: Any = None, seed: int = 0) -> list[PlantedPair]:
    """``n`` genuine LFW pairs with a donor block planted in the first crop.

    Args:
        pipeline: a :class:`~xaiface.pipeline.FacePipeline` (its model's geometry is used).
        block_fraction: block side as a fraction of the crop (0.3 -> 45 px at 150 px).
        centre_fraction: block centre ``(x, y)`` as fractions of the crop (nose and mouth).
        seed: chooses the pairs and the donors (a different identity, always).
    """
    from ..datasets import LFW

    lfw = LFW(data)
    pairs = lfw.pairs()
    genuine = [p for p in pairs if p.same]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(genuine), size=n, replace=False)
    donors_pool = [p for p in pairs if not p.same]
    out = []
    for k in chosen:
        g = genuine[int(k)]
        while True:
            d = donors_pool[int(rng.integers(len(donors_pool)))]
            if d.name_a != g.name_a:
                break
        a: AlignedFace = pipeline.align(g.path_a, select="center")
        b: AlignedFace = pipeline.align(g.path_b, select="center")
        donor: AlignedFace = pipeline.align(d.path_a, select="center")
        s = a.image.shape[0]
        mask = block_mask(s, int(round(block_fraction * s)), (centre_fraction[0] * (s - 1), centre_fraction[1] * (s - 1)))
        probe = a.image.copy()
        probe[mask] = donor.image[mask]
        out.append(PlantedPair(probe, b.image, mask, (g.name_a, g.name_b, d.name_a)))
    return out


def inside_higher(map_: np.ndarray, mask: np.ndarray) -> bool:
    """True when the map's mean inside the mask exceeds its mean outside."""
    return float(map_[mask].mean()) > float(map_[~mask].mean())


def localisation_rate(explainer: Any, planted: Sequence[PlantedPair], kind: str = "dissimilarity") -> tuple[int, int]:
    """How many planted blocks the explainer's ``kind`` map of the probe finds: (hits, pairs)."""
    hits = 0
    for p in planted:
        r = explainer.explain((p.probe, p.reference), images=(0,))
        hits += inside_higher(r.maps(kind)[0], p.mask)
    return hits, len(planted)
