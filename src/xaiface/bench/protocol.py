"""The maths of the Patch-LFW protocols, on plain arrays: which pixels each step changes, rates, AUCs.

Decision-based Patch Replacement (DPR; Huber et al., WACV 2024, Sec. 4.3; reference code
``evaluation/replacement.py``): from the combined map of the patched image (positive = similar
to the partner, negative = dissimilar), if the patched pair is a match at the clean EER
threshold the most similar pixels are replaced first, otherwise the least similar; a replaced
pixel takes the original (un-patched) pixel. Three rules pick the pixels of a step ``X`` percent:

* ``"bound"`` (default): with the map's values sorted ascending ``v``, a match replaces the
  pixels strictly above ``v[floor(N (100 - X) / 100)]`` and a non-match the pixels strictly below
  ``v[floor(N X / 100)]``; ties at the bound stay, and a match replaces one pixel fewer than
  ``X%`` when there are no ties. This is the reference's strict value bound, with an exact
  integer index: the reference computes the index ``int(N * (1 - X))`` / ``int(N * X)`` from a
  float ``X`` out of ``np.arange(0.05, 1., 0.05)`` (see ``reference_steps`` below), so the
  project's index is its intended value, without the float's rounding. ``X = 0`` replaces
  nothing; ``X = 100`` (which the reference never evaluates: its steps are 0, 5, ..., 95)
  replaces every pixel, i.e. gives back the clean pair;
* ``"rank"``: exactly ``floor(N X / 100)`` pixels in map order, ties broken in raster order;
* ``"prefix"`` (the reference's random baseline): the ``floor(N X / 100)`` highest-ranked pixels
  of the map (ties in raster order) for matched and non-matched pairs alike, i.e. a prefix of
  the map's pixel order whatever the decision.

``reference_steps=True`` (``xaiface bench patch-lfw --reference-rules``) takes the step's index
and count as the reference code computes them: with ``X`` the float the reference uses for the
step (:func:`reference_fraction`), the bound index ``int(N * (1 - X))`` (match) or
``int(N * X)`` (non-match) and the prefix count ``int(N * X)``. ``0.05 + k * 0.05`` is not
exact in binary, so ``N * (1 - X)`` can fall just below an integer: on 150x150 crops the match
index is one lower than the exact one at 11 of the 19 steps (30, 35, 55, ..., 95%), i.e. one
more pixel replaced; on 112x112 at one step (75%); the non-match index and the prefix count are
the exact ones on both.

Deletion and insertion (Lu, Xu, Ebrahimi, WACV 2024; FAME, Zhang & Guenther, CVPRW 2026): the
probe's pixels are ranked by the map's evidence for the pair's true label (similarity for a
genuine pair, ``+combined``; dissimilarity for an impostor pair, ``-combined``); at ``P`` percent
the top-``P%`` pixels are zeroed (deletion) or only they are kept on a black image (insertion);
the verification accuracy at the clean EER threshold is recorded. A faithful map makes deletion
accuracy fall fast (low AUC) and insertion accuracy rise fast (high AUC).

Localisation of the planted patches (beyond the published protocols): the patches are
dissimilarity evidence in a genuine pair (another person's pixels) and similarity evidence in an
impostor pair (the partner's own pixels), so the patch score is ``-combined`` for a genuine pair
and ``+combined`` for an impostor pair; we report its per-pixel AUROC against the ground-truth
mask (0.5 = chance) and the pointing game (is the map's maximum inside the mask; chance = the
mask's coverage).

AUC units: every AUC here is the trapezoid rule over the x axis in percent (0..100) of a rate
or accuracy in 0..1, so it lies in 0..100 ("percentage-step units", as the paper's Table 2; the
FAME convention "trapezoid over P/100, x 100" is the same number).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..errors import ConfigError, NumericalError

DPR_PERCENTS: tuple[int, ...] = tuple(range(0, 101, 5))
"""DPR steps in percent of the pixels: 0, 5, ..., 100 (the reference: 0, 5, ..., 95)."""
DELETION_PERCENTS: tuple[int, ...] = tuple(range(0, 101, 10))
"""Deletion / insertion steps in percent: 0, 10, ..., 100 (Lu et al.; FAME)."""
DPR_RULES = ("bound", "rank", "prefix")
REFERENCE_FRACTIONS: np.ndarray = np.arange(0.05, 1.0, 0.05)
"""The reference's DPR steps as fractions (``replace_percentages`` of ``evaluation/replacement.py``):
19 floats 0.05, 0.1, 0.15000000000000002, ..., 0.9500000000000001."""


def check_percents(percents: Sequence[int]) -> tuple[int, ...]:
    """Integer percents in 0..100, strictly increasing."""
    p = tuple(int(x) for x in percents)
    if not p or any(x < 0 or x > 100 for x in p) or any(b <= a for a, b in zip(p, p[1:])) or any(int(x) != x for x in percents):
        raise ConfigError(f"steps must be strictly increasing integer percents within 0..100, got {list(percents)}")
    return p


def _flat_map(m: np.ndarray) -> np.ndarray:
    a = np.asarray(m)
    if a.ndim != 2:
        raise ConfigError(f"a map must be (H, W), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise NumericalError("the map holds NaN or infinite values")
    return a.ravel()


def ranked_masks(score_map: np.ndarray, percents: Sequence[int], reference_steps: bool = False) -> np.ndarray:
    """Masks of the top ``floor(N P / 100)`` pixels by ``score_map`` (highest first; ties in raster order).

    ``reference_steps``: take the reference's ``int(N * X)`` pixels instead (:func:`step_count`;
    default False). Returns ``(T, H, W)`` bool, nested (each step contains the previous one).
    """
    flat = _flat_map(score_map)
    n = flat.size
    order = np.argsort(-flat.astype(np.float64), kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    ks = np.array([step_count(n, p, reference_steps) for p in check_percents(percents)])
    return (rank[None, :] < ks[:, None]).reshape(len(ks), *np.shape(score_map))


def reference_fraction(percent: int) -> float:
    """The float fraction the reference uses for a DPR step of ``percent`` percent.

    The reference's own steps 5, 10, ..., 95 give their :data:`REFERENCE_FRACTIONS` value (e.g.
    ``0.15000000000000002`` for 15); any other percent (the reference has none) gives the
    nearest float to ``percent / 100``.
    """
    k, r = divmod(int(percent), 5)
    if r == 0 and 1 <= k <= len(REFERENCE_FRACTIONS):
        return float(REFERENCE_FRACTIONS[k - 1])
    return int(percent) / 100


def step_count(n: int, percent: int, reference_steps: bool = False) -> int:
    """Pixels of ``n`` a ``percent`` step takes: ``floor(n percent / 100)`` exactly, or with
    ``reference_steps`` the reference's ``int(n * X)`` (:func:`reference_fraction`); also the
    non-match bound index of the ``"bound"`` rule."""
    return int(n * reference_fraction(percent)) if reference_steps else n * int(percent) // 100


def bound_index(n: int, percent: int, match: bool, reference_steps: bool = False) -> int:
    """Index into the ascending sorted map of the ``"bound"`` rule's bound for a step.

    A match: ``floor(n (100 - percent) / 100)`` exactly, or the reference's ``int(n * (1 - X))``
    with ``reference_steps`` (one lower at some steps, see the module docstring); a non-match:
    :func:`step_count`.
    """
    if not match:
        return step_count(n, percent, reference_steps)
    return int(n * (1 - reference_fraction(percent))) if reference_steps else n * (100 - int(percent)) // 100


def dpr_masks(combined_map: np.ndarray, match: bool, percents: Sequence[int] = DPR_PERCENTS, rule: str = "bound",
              reference_steps: bool = False) -> np.ndarray:
    """Pixels DPR replaces at each step (see the module docstring for the rules).

    Args:
        combined_map: ``(S, S)`` signed map of the patched image (positive = similar).
        match: whether the patched pair is a match at the threshold (most similar first) or
            not (least similar first); ignored by the ``"prefix"`` rule.
        percents: steps (default :data:`DPR_PERCENTS`).
        rule: ``"bound"`` (default, the reference's strict bound), ``"rank"`` or ``"prefix"``
            (the reference's random baseline).
        reference_steps: compute each step's index / count from the reference's float fraction
            (default False: the exact integer; see the module docstring).
    Returns:
        ``(T, S, S)`` bool.
    """
    if rule not in DPR_RULES:
        raise ConfigError(f"DPR rule must be one of {DPR_RULES}, got {rule!r}")
    flat = _flat_map(combined_map)
    pcts = check_percents(percents)
    if rule != "bound":  # "prefix" ranks by the map whatever the decision
        ranking = combined_map if match or rule == "prefix" else -np.asarray(combined_map)
        return ranked_masks(ranking, pcts, reference_steps)
    n = flat.size
    v = np.sort(flat)
    out = np.zeros((len(pcts), n), dtype=bool)
    for t, p in enumerate(pcts):
        if p == 100:
            out[t] = True
        elif p > 0 and match:
            out[t] = flat > v[bound_index(n, p, True, reference_steps)]
        elif p > 0:
            out[t] = flat < v[bound_index(n, p, False, reference_steps)]
    return out.reshape(len(pcts), *np.shape(combined_map))


def label_evidence(combined_map: np.ndarray, same: bool) -> np.ndarray:
    """The map's evidence for the true label: ``+combined`` (genuine) or ``-combined`` (impostor)."""
    m = np.asarray(combined_map)
    return m if same else -m


def patch_evidence(combined_map: np.ndarray, same: bool) -> np.ndarray:
    """The map's score for "this pixel is planted": ``-combined`` (genuine) or ``+combined`` (impostor)."""
    return -label_evidence(combined_map, same)


def compose(base: torch.Tensor, fill: torch.Tensor | float, masks: torch.Tensor) -> torch.Tensor:
    """Images ``where(mask, fill, base)`` for each mask.

    Args:
        base: ``(3, S, S)`` pixels. fill: ``(3, S, S)`` pixels or a constant.
        masks: ``(T, S, S)`` bool.
    Returns:
        ``(T, 3, S, S)``.
    """
    m = masks[:, None]
    f = fill[None] if isinstance(fill, torch.Tensor) else torch.tensor(float(fill), dtype=base.dtype)
    return torch.where(m, f, base[None])


def error_rates(scores: np.ndarray, same: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """FMR and FNMR per step.

    Args:
        scores: ``(P, T)`` similarities of P pairs at T steps. same: ``(P,)`` bool (genuine).
        threshold: ``score >= threshold`` is a match.
    Returns:
        ``(fmr, fnmr)``, each ``(T,)``; NaN where there is no impostor (genuine) pair.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    match = s >= threshold
    with np.errstate(invalid="ignore"):
        fmr = match[~y].mean(axis=0) if (~y).any() else np.full(s.shape[1], np.nan)
        fnmr = (~match[y]).mean(axis=0) if y.any() else np.full(s.shape[1], np.nan)
    return fmr, fnmr


def accuracy(scores: np.ndarray, same: np.ndarray, threshold: float) -> np.ndarray:
    """Fraction of pairs decided correctly per step: ``(P, T)`` scores -> ``(T,)``."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    if s.shape[0] == 0:
        return np.full(s.shape[1], np.nan)
    return ((s >= threshold) == y[:, None]).mean(axis=0)


def curve_auc(percents: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoid area under ``values`` (0..1) over ``percents`` (0..100): 0..100 units."""
    x = np.asarray(percents, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ConfigError(f"percents and values must be equal-length vectors, got {x.shape} and {y.shape}")
    return float(np.trapezoid(y, x))


def pixel_auroc(score_map: np.ndarray, mask: np.ndarray) -> float:
    """Per-pixel ROC AUC of ``score_map`` for the ground-truth ``mask`` (ties count half); NaN if one class is empty."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(mask, dtype=bool).ravel()
    s = _flat_map(score_map)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, s))


def pointing_game(score_map: np.ndarray, mask: np.ndarray) -> float:
    """1 if the map's maximum lies inside the mask, else 0; with tied maxima, the fraction inside (expected hit)."""
    s = _flat_map(score_map)
    top = s == s.max()
    return float(np.asarray(mask, dtype=bool).ravel()[top].mean())
