"""Verification metrics on similarity scores: cosine similarity, EER, thresholds at a FMR.

Conventions used everywhere in xaiface:

* a *score* is a similarity (cosine for face embeddings): higher means more alike;
* a *label* is 1 (or True) for a genuine pair (same identity) and 0 for an impostor pair;
* a pair is declared a **match when** ``score >= threshold``; so a score equal to the
  threshold is a match;
* FMR (false match rate, = FAR, = ROC's FPR) is ``#{impostors with score >= t} / #impostors``;
  FNMR (= FRR, = 1 - TAR) is ``#{genuines with score < t} / #genuines``.

Curves come from :func:`sklearn.metrics.roc_curve`, whose ``thresholds`` are the distinct
scores in decreasing order with ``fpr[i]``/``tpr[i]`` the rates at ``score >= thresholds[i]``,
preceded by ``thresholds[0] = inf`` (nothing matches). Thresholds returned here are always
finite: where "nothing matches" is meant, the threshold is the next floating-point value above
the highest relevant score (see :func:`threshold_at_fmr`).
"""
from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_curve

from ..errors import ConfigError
from .similarity import pair_similarity  # noqa: F401  (re-exported)

__all__ = [
    "Calibration",
    "calibrate",
    "cosine_similarity",
    "eer",
    "fmr_fnmr",
    "fmr_key",
    "tar_at_far",
    "threshold_at_fmr",
]


# --------------------------------------------------------------------------- inputs


def _to_numpy(x: Any) -> np.ndarray:
    """An array-like (list, numpy array, torch tensor on any device) as a numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_scores_labels(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate a set of scored pairs.

    Args:
        scores: ``(N,)`` similarity scores, finite.
        labels: ``(N,)`` 1/True = genuine, 0/False = impostor; both classes present.

    Returns:
        ``scores`` as given (float dtype kept, other dtypes as float64) and ``labels`` as bool.

    Raises:
        ConfigError: shapes or lengths differ, a label is not 0/1, a class is missing, a score
            is NaN or infinite.
    """
    s = _to_numpy(scores)
    y = _to_numpy(labels)
    if s.ndim != 1 or y.ndim != 1:
        raise ConfigError(
            f"scores and labels must be 1-D arrays, got shapes {s.shape} and {y.shape}"
        )
    if s.shape[0] != y.shape[0]:
        raise ConfigError(
            f"scores and labels differ in length: {s.shape[0]} scores, {y.shape[0]} labels"
        )
    if not np.issubdtype(s.dtype, np.number) or np.issubdtype(s.dtype, np.complexfloating):
        raise ConfigError(f"scores must be real numbers, got dtype {s.dtype}")
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    bad = ~np.isfinite(s)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(
            f"scores must be finite: {int(bad.sum())} of {s.size} are NaN or infinite "
            f"(first at index {i}: {s[i]})"
        )
    if y.dtype != bool:
        if not (np.issubdtype(y.dtype, np.number) and np.isin(y, (0, 1)).all()):
            found = np.unique(y)[:5].tolist() if y.dtype != object else "objects"
            raise ConfigError(
                f"labels must be binary (1 = genuine, 0 = impostor), found values {found}"
            )
        y = y.astype(bool)
    n_gen = int(y.sum())
    if n_gen == 0 or n_gen == y.size:
        missing = "genuine (label 1)" if n_gen == 0 else "impostor (label 0)"
        raise ConfigError(
            f"scores must include both genuine and impostor pairs; no {missing} pair among {y.size}"
        )
    return s, y


def _check_rate(value: float, name: str) -> float:
    """A rate in [0, 1] as a float, or ConfigError."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= v <= 1.0:  # also rejects NaN
        raise ConfigError(f"{name} must be in [0, 1], got {value!r}")
    return v


def _step_above(value: float, dtype: np.dtype) -> float:
    """The next value above ``value`` representable in ``dtype`` (float32 scores keep
    ``score >= threshold`` false for ``value`` even after a cast to float32)."""
    t = dtype.type
    return float(np.nextafter(t(value), t(np.inf)))


class _Roc:
    """sklearn's full ROC of validated pairs (every distinct score a threshold, none dropped),
    computed once and read by the EER and the thresholds at a FMR."""

    def __init__(self, s: np.ndarray, y: np.ndarray) -> None:
        self.fpr, self.tpr, self.thresholds = roc_curve(y, s, drop_intermediate=False)
        self.dtype = s.dtype

    def eer(self) -> tuple[float, float]:
        i = int(np.argmin(np.abs(1.0 - self.tpr - self.fpr)))
        value = float((self.fpr[i] + (1.0 - self.tpr[i])) / 2.0)
        if i == 0:  # thresholds[0] = inf: nothing matches
            return value, _step_above(self.thresholds[1], self.dtype)
        return value, float(self.thresholds[i])

    def threshold_at_fmr(self, fmr: float) -> float:
        # fpr rises with the index; thresholds[last_ok] is the lowest observed score with
        # FMR <= fmr (thresholds[0] = inf has fpr 0, so last_ok >= 0) and
        # thresholds[last_ok + 1] is s*, the highest score whose FMR exceeds fmr.
        last_ok = int(np.searchsorted(self.fpr, fmr, side="right")) - 1
        if last_ok == self.fpr.size - 1:
            return float(self.thresholds[-1])
        return _step_above(self.thresholds[last_ok + 1], self.dtype)


def fmr_key(fmr: float) -> str:
    """The name of the threshold at a FMR, as in model cards: ``1e-3 -> "fmr=1e-3"``,
    ``0 -> "fmr=0"``."""
    if float(fmr) == 0.0:
        return "fmr=0"
    return "fmr=" + np.format_float_scientific(float(fmr), trim="-", exp_digits=1)


# --------------------------------------------------------------------------- similarity


def cosine_similarity(a: Any, b: Any, eps: float = 1e-12) -> Any:
    """Cosine similarity of two embeddings, or of two batches row by row.

    ``a . b / (max(|a|, eps) * max(|b|, eps))``.

    Args:
        a, b: ``(D,)`` or ``(B, D)`` numpy arrays (or array-likes), or both torch tensors.
            A ``(D,)`` input is broadcast against a ``(B, D)`` one.
        eps: lower bound on each norm (zero vectors give similarity 0, not NaN).

    Returns:
        numpy: a float64 scalar for two ``(D,)`` inputs, else a ``(B,)`` float64 array.
        torch: a tensor of shape ``()`` or ``(B,)`` in the inputs' dtype, differentiable
        (computed by :func:`torch.nn.functional.cosine_similarity`).

    Raises:
        ConfigError: one input is a tensor and the other not, ranks other than 1 or 2,
            different embedding sizes or batch sizes.

    Example:
        >>> cosine_similarity(np.array([1.0, 0.0]), np.array([[1.0, 1.0], [0.0, 2.0]]))
        array([0.70710678, 0.        ])
    """
    torch = sys.modules.get("torch")  # a tensor implies torch is already imported
    is_tensor = [torch is not None and isinstance(x, torch.Tensor) for x in (a, b)]
    if is_tensor[0] != is_tensor[1]:
        raise ConfigError("cosine_similarity: give two torch tensors or two arrays, not one of each")
    if not is_tensor[0]:
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
    _check_embedding_shapes(tuple(a.shape), tuple(b.shape))
    if is_tensor[0]:
        return torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=eps)
    na = np.maximum(np.linalg.norm(a, axis=-1), eps)
    nb = np.maximum(np.linalg.norm(b, axis=-1), eps)
    return np.sum(a * b, axis=-1) / (na * nb)


def _check_embedding_shapes(sa: tuple[int, ...], sb: tuple[int, ...]) -> None:
    if len(sa) not in (1, 2) or len(sb) not in (1, 2):
        raise ConfigError(f"embeddings must be (D,) or (B, D), got shapes {sa} and {sb}")
    if sa[-1] != sb[-1]:
        raise ConfigError(f"embedding sizes differ: {sa[-1]} and {sb[-1]} (shapes {sa}, {sb})")
    if len(sa) == len(sb) == 2 and sa[0] != sb[0]:
        raise ConfigError(f"batch sizes differ: {sa[0]} and {sb[0]} (shapes {sa}, {sb})")


# --------------------------------------------------------------------------- rates and thresholds


def fmr_fnmr(scores: ArrayLike, labels: ArrayLike, threshold: float) -> tuple[float, float]:
    """False match and false non-match rates at a threshold (``score >= threshold`` matches).

    Args:
        scores: ``(N,)`` similarities. labels: ``(N,)`` 1 = genuine, 0 = impostor.
        threshold: the decision threshold, in score units.

    Returns:
        ``(FMR, FNMR)``, each in [0, 1].
    """
    s, y = _check_scores_labels(scores, labels)
    match = s >= threshold
    return float(match[~y].mean()), float((~match[y]).mean())


def eer(scores: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
    """Equal error rate and its threshold, the way the xSSAB reference finds it.

    From :func:`sklearn.metrics.roc_curve` (all distinct scores as thresholds,
    ``drop_intermediate=False``, so the point nearest the crossing is never dropped) the
    index ``i = argmin |1 - TPR - FPR|`` (the first, i.e. highest threshold, on ties).

    Args:
        scores: ``(N,)`` similarities. labels: ``(N,)`` 1 = genuine, 0 = impostor.

    Returns:
        ``(eer_value, threshold)``: ``eer_value = (FPR[i] + FNR[i]) / 2`` with ``FNR = 1 - TPR``
        (the two rates are equal only when the curve crosses exactly at a score), and
        ``threshold = thresholds[i]``, an observed score; where ``i = 0`` (sklearn's ``inf``:
        nothing matches) the next value above the highest score instead.

    Raises:
        ConfigError: see the module's input rules.
    """
    s, y = _check_scores_labels(scores, labels)
    return _Roc(s, y).eer()


def threshold_at_fmr(scores: ArrayLike, labels: ArrayLike, fmr: float) -> float:
    """The lowest threshold whose false match rate is at most ``fmr``.

    The FMR at ``t`` is ``#{impostors with score >= t} / #impostors``; it only drops just
    above an impostor score. Let ``s*`` be the highest score at which the FMR (with
    ``score >= s*``) still exceeds ``fmr``: every ``t > s*`` qualifies and ``s*`` does not, so
    the threshold is the next floating-point value above ``s*`` (in the scores' dtype, so the
    strict ``>`` survives a cast to float32). Ties are counted together: impostors sharing
    ``s*`` all fall below the threshold, and so do genuines sharing it.

    In particular, when ``fmr < 1 / #impostors`` (or ``fmr = 0``) no false match is allowed
    and the threshold is just above the highest impostor score. When every threshold
    qualifies (``fmr = 1``), it is the lowest score: every pair matches.

    Args:
        scores: ``(N,)`` similarities. labels: ``(N,)`` 1 = genuine, 0 = impostor.
        fmr: the largest acceptable false match rate, in [0, 1].

    Returns:
        The threshold, in score units.

    Raises:
        ConfigError: bad scores/labels or ``fmr`` outside [0, 1].
    """
    s, y = _check_scores_labels(scores, labels)
    return _Roc(s, y).threshold_at_fmr(_check_rate(fmr, "fmr"))


def tar_at_far(scores: ArrayLike, labels: ArrayLike, far: float) -> float:
    """True accept rate at :func:`threshold_at_fmr` ``(scores, labels, far)``.

    This is the highest TAR reachable on these pairs with a FAR (= FMR) of at most ``far``.

    Returns:
        ``#{genuines with score >= threshold} / #genuines``, in [0, 1].
    """
    s, y = _check_scores_labels(scores, labels)
    t = _Roc(s, y).threshold_at_fmr(_check_rate(far, "far"))
    return float((s[y] >= t).mean())


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibration:
    """Operating thresholds of a model, measured on a set of scored pairs.

    Attributes:
        eer: equal error rate (see :func:`eer`), in [0, 1].
        eer_threshold: its threshold, in score units.
        thresholds: name -> threshold: ``"eer"`` and one ``fmr_key(fmr)`` (``"fmr=1e-3"``)
            per requested FMR, as a model card stores them.
        n_genuine: number of genuine pairs it was measured on.
        n_impostor: number of impostor pairs.
    """

    eer: float
    eer_threshold: float
    thresholds: dict[str, float] = field(hash=False)
    n_genuine: int
    n_impostor: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (floats, ints, a dict of floats)."""
        return {
            "eer": float(self.eer),
            "eer_threshold": float(self.eer_threshold),
            "thresholds": {k: float(v) for k, v in self.thresholds.items()},
            "n_genuine": int(self.n_genuine),
            "n_impostor": int(self.n_impostor),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`. Raises ConfigError when a key is missing."""
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in d]
        if missing:
            raise ConfigError(f"calibration dict lacks {missing}; it has {sorted(d)}")
        return cls(
            eer=float(d["eer"]),
            eer_threshold=float(d["eer_threshold"]),
            thresholds={str(k): float(v) for k, v in d["thresholds"].items()},
            n_genuine=int(d["n_genuine"]),
            n_impostor=int(d["n_impostor"]),
        )


def calibrate(
    scores: ArrayLike, labels: ArrayLike, fmrs: Iterable[float] = (1e-2, 1e-3)
) -> Calibration:
    """EER and the thresholds at each FMR (see :func:`eer`, :func:`threshold_at_fmr`).

    Args:
        scores: ``(N,)`` similarities. labels: ``(N,)`` 1 = genuine, 0 = impostor.
        fmrs: false match rates in [0, 1] to compute thresholds at.

    Returns:
        A :class:`Calibration`; ``thresholds`` holds ``"eer"`` then ``fmr_key(f)`` for each ``f``.
    """
    s, y = _check_scores_labels(scores, labels)
    roc = _Roc(s, y)
    eer_value, eer_thr = roc.eer()
    thresholds = {"eer": eer_thr}
    for f in fmrs:
        thresholds[fmr_key(f)] = roc.threshold_at_fmr(_check_rate(f, "fmr"))
    return Calibration(
        eer=eer_value,
        eer_threshold=eer_thr,
        thresholds=thresholds,
        n_genuine=int(y.sum()),
        n_impostor=int((~y).sum()),
    )
