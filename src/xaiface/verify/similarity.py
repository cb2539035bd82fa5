"""The project's one scoring path for a pair's decision (NumPy only, cheap to import)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ConfigError


def pair_similarity(a: Any, b: Any) -> Any:
    """Similarity of pairs of L2-normalised embeddings, the same whatever computed it.

    The dot product of each row, exactly rounded: float32 inputs multiply exactly in float64
    and :func:`math.fsum` rounds their sum once, so a pair's score does not depend on the batch
    it was computed in, the order of the sum or the CPU's vector units. Every decision that must
    agree with another (a clean score against the threshold calibrated on it, the last step of a
    protocol that restores the clean image) is scored with this function.

    Args:
        a, b: ``(D,)`` or ``(B, D)`` array-likes (tensors are converted), already normalised;
            a ``(D,)`` input is broadcast against a ``(B, D)`` one.
    Returns:
        a Python float for two ``(D,)`` inputs, else a ``(B,)`` float64 array.
    Raises:
        ConfigError: ranks other than 1 or 2 or different embedding sizes.
    """
    x, y = (np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, dtype=np.float64) for v in (a, b))
    if x.ndim not in (1, 2) or y.ndim not in (1, 2) or x.shape[-1] != y.shape[-1]:
        raise ConfigError(f"pair_similarity: embeddings (D,) or (B, D) of one size, got {x.shape} and {y.shape}")
    prod = x * y
    if prod.ndim == 1:
        return math.fsum(prod)
    return np.fromiter((math.fsum(r) for r in prod), dtype=np.float64, count=len(prod))
