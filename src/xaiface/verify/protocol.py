"""The LFW View 2 protocol (10-fold cross-validated verification accuracy) on precomputed scores.

For each fold, the threshold that maximises accuracy on the other folds is chosen and accuracy
is measured on the held-out fold with ``score >= threshold`` meaning match. Alongside, the
whole set of pairs gives the EER, the TAR at each FAR and a full :class:`Calibration`.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ConfigError
from .metrics import Calibration, _check_scores_labels, _step_above, calibrate, fmr_key

__all__ = ["ProtocolReport", "best_accuracy_threshold", "lfw_protocol"]


@dataclass(frozen=True)
class ProtocolReport:
    """The outcome of :func:`lfw_protocol`.

    Attributes:
        fold_ids: the fold labels, in increasing order, one per fold.
        fold_accuracies: accuracy on each held-out fold, in [0, 1].
        fold_thresholds: the threshold chosen on the other folds, per fold, in score units.
        mean_accuracy: mean of ``fold_accuracies``.
        std_accuracy: their **population** standard deviation (``ddof=0``, ``np.std``), as most
            LFW tables (e.g. insightface's ``verification.py``) report "mean +- std".
        standard_error: the LFW README's standard error of the mean, ``sample std (ddof=1) /
            sqrt(number of folds)``.
        eer: equal error rate on all pairs. eer_threshold: its threshold.
        tar_at_far: ``fmr_key(far)`` (``"fmr=1e-3"``) -> TAR at the threshold at that FAR, on
            all pairs.
        calibration: the :class:`Calibration` on all pairs.
        n_pairs: number of pairs.
    """

    fold_ids: tuple[int, ...]
    fold_accuracies: tuple[float, ...]
    fold_thresholds: tuple[float, ...]
    mean_accuracy: float
    std_accuracy: float
    standard_error: float
    eer: float
    eer_threshold: float
    tar_at_far: dict[str, float] = field(hash=False)
    calibration: Calibration = field(hash=False)
    n_pairs: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return {
            "protocol": "lfw-view2",
            "n_pairs": int(self.n_pairs),
            "fold_ids": [int(f) for f in self.fold_ids],
            "fold_accuracies": [float(a) for a in self.fold_accuracies],
            "fold_thresholds": [float(t) for t in self.fold_thresholds],
            "mean_accuracy": float(self.mean_accuracy),
            "std_accuracy": float(self.std_accuracy),
            "std_kind": "population (ddof=0)",
            "standard_error": float(self.standard_error),
            "eer": float(self.eer),
            "eer_threshold": float(self.eer_threshold),
            "tar_at_far": {k: float(v) for k, v in self.tar_at_far.items()},
            "calibration": self.calibration.to_dict(),
        }

    def summary(self) -> str:
        """A few lines for a terminal or a log."""
        c = self.calibration
        lines = [
            f"LFW protocol: {self.n_pairs} pairs ({c.n_genuine} genuine, {c.n_impostor} impostor), "
            f"{len(self.fold_ids)} folds",
            f"  accuracy  {100 * self.mean_accuracy:.2f}% +- {100 * self.std_accuracy:.2f}% "
            f"(population std; standard error {100 * self.standard_error:.2f}%)",
            f"  threshold {np.mean(self.fold_thresholds):.4f} mean over folds "
            f"(range {min(self.fold_thresholds):.4f} .. {max(self.fold_thresholds):.4f})",
            f"  EER       {100 * self.eer:.2f}% at threshold {self.eer_threshold:.4f}",
        ]
        for key, tar in self.tar_at_far.items():
            far = key.split("=", 1)[1]
            lines.append(f"  TAR {100 * tar:.2f}% at FAR {far} (threshold {c.thresholds[key]:.4f})")
        return "\n".join(lines)


def best_accuracy_threshold(scores: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
    """The threshold with the highest accuracy on a set of pairs (``score >= threshold`` matches).

    Candidates: the lowest score (every pair matches), the midpoints between consecutive
    distinct scores, and the next value above the highest score (no pair matches), so every
    split of the sorted scores is tried once. Ties in accuracy go to the **lowest** candidate
    (the first maximum of an ascending scan, as ``np.argmax`` does). One sort plus cumulative
    sums: ``O(N log N)``.

    Args:
        scores: ``(N,)`` similarities. labels: ``(N,)`` 1 = genuine, 0 = impostor.

    Returns:
        ``(threshold, accuracy)``: the threshold in score units, its accuracy in [0, 1].
    """
    s, y = _check_scores_labels(scores, labels)
    return _best_accuracy_threshold(s, y)


def _best_accuracy_threshold(s: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    order = np.argsort(s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    unique, start = np.unique(s_sorted, return_index=True)
    # pairs / genuines / impostors strictly below unique[k], for k = 0 .. K (K: all of them)
    below = np.append(start, s.size)
    gen_below = np.concatenate([[0], np.cumsum(y_sorted)])[below]
    imp_below = below - gen_below
    # candidate k splits at unique[k]: pairs >= unique[k] match; correct = genuines above +
    # impostors below
    correct = (gen_below[-1] - gen_below) + imp_below
    k = int(np.argmax(correct))
    if k == 0:
        threshold = float(unique[0])
    elif k == unique.size:
        threshold = _step_above(unique[-1], s.dtype)
    else:
        lo, hi = unique[k - 1], unique[k]
        mid = lo + (hi - lo) / 2
        threshold = float(mid if mid > lo else hi)  # adjacent floats: the midpoint rounds to lo
    return threshold, float(correct[k] / s.size)


def _fold_index(folds: ArrayLike | int, n: int) -> np.ndarray:
    """``(N,)`` fold label per pair; an int ``k`` splits the pairs, in order, into ``k`` equal
    contiguous blocks (LFW's ``pairs.txt``: 10 blocks of 300 genuine + 300 impostor)."""
    if isinstance(folds, (int, np.integer)):
        k = int(folds)
        if k < 2 or n % k:
            raise ConfigError(f"cannot split {n} pairs into {k} equal folds (need k >= 2 dividing {n})")
        return np.repeat(np.arange(k), n // k)
    f = np.asarray(folds)
    if f.shape != (n,):
        raise ConfigError(f"folds must give one fold per pair: shape {f.shape}, expected ({n},)")
    if not np.issubdtype(f.dtype, np.integer):
        raise ConfigError(f"fold labels must be integers, got dtype {f.dtype}")
    if np.unique(f).size < 2:
        raise ConfigError("the protocol needs at least 2 folds; all pairs are in one")
    return f


def lfw_protocol(
    scores: ArrayLike,
    labels: ArrayLike,
    folds: ArrayLike | int = 10,
    fmrs: Iterable[float] = (1e-2, 1e-3),
) -> ProtocolReport:
    """LFW View 2: 10-fold cross-validated verification accuracy, plus EER and TAR@FAR.

    For each fold, :func:`best_accuracy_threshold` on the pairs of all other folds picks the
    threshold, and the held-out fold's accuracy at it is recorded.

    Args:
        scores: ``(N,)`` similarities (e.g. 6,000 LFW pairs).
        labels: ``(N,)`` 1 = genuine, 0 = impostor.
        folds: ``(N,)`` integer fold label per pair, or an int ``k``: ``k`` equal contiguous
            blocks in pair order (LFW's ``pairs.txt`` order with ``k = 10``).
        fmrs: FARs (= FMRs) for the TAR and the calibrated thresholds.

    Returns:
        A :class:`ProtocolReport`.

    Raises:
        ConfigError: bad scores/labels/folds, or a training split holding a single class.
    """
    s, y = _check_scores_labels(scores, labels)
    f = _fold_index(folds, s.size)
    fold_ids = np.unique(f)
    accuracies, thresholds = [], []
    for fold in fold_ids:
        test = f == fold
        train_y = y[~test]
        if train_y.all() or not train_y.any():
            raise ConfigError(f"the folds other than {fold} hold only one class of pairs")
        t, _ = _best_accuracy_threshold(s[~test], train_y)
        thresholds.append(t)
        accuracies.append(float(((s[test] >= t) == y[test]).mean()))
    acc = np.asarray(accuracies)
    fmrs = tuple(fmrs)
    cal = calibrate(s, y, fmrs)
    tar = {fmr_key(v): float((s[y] >= cal.thresholds[fmr_key(v)]).mean()) for v in fmrs}
    return ProtocolReport(
        fold_ids=tuple(int(v) for v in fold_ids),
        fold_accuracies=tuple(accuracies),
        fold_thresholds=tuple(thresholds),
        mean_accuracy=float(acc.mean()),
        std_accuracy=float(acc.std(ddof=0)),
        standard_error=float(acc.std(ddof=1) / np.sqrt(acc.size)),
        eer=cal.eer,
        eer_threshold=cal.eer_threshold,
        tar_at_far=tar,
        calibration=cal,
        n_pairs=int(s.size),
    )
