"""Soft biometrics as an explanation of a verdict (D5.2 section 3.4.1).

For a pair and its verdict, :func:`explain_verdict` compares the traits of the two faces. For
an accept (above all a *false* accept: two people taken for one) the reasons are the traits the
two faces **share**; for a reject (above all a *false* reject: one person taken for two) the
reasons are the traits that **differ**. Each comparison carries the probability that the faces
share the trait under both estimators' predictive distributions:

* categorical (gender): ``p_shared = sum_c p_a(c) p_b(c)``;
* numeric (age, BMI, weight): ``p_shared = P(|A - B| <= tolerance)``, exactly from two
  discrete distributions (the age model's 81 bins) or from Gaussians (``value``, ``std``);
  the faces share the trait when their estimates differ by at most ``tolerance``
  (:data:`PAIR_TOLERANCES`: 10 years, 3 kg/m^2, 10 kg).

The explanation is data first (:meth:`SoftBiometricExplanation.data`, plain JSON) and a picture
second (:meth:`SoftBiometricExplanation.visualize`: both faces and a trait table, shared traits
green and differing traits pink, the project's colours for similar and dissimilar).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from .traits import FaceTraits, Trait

#: numeric traits closer than this are "shared" by two faces
PAIR_TOLERANCES = {"age": 10.0, "bmi": 3.0, "weight": 10.0, "height": 0.08}
SHARED_COLOUR = "#1a7f37"
DIFFER_COLOUR = "#b4235a"


@dataclass(frozen=True)
class TraitComparison:
    """One trait of the two faces of a pair.

    Attributes:
        shared: same class, or estimates within ``tolerance``.
        p_shared: probability that the faces share the trait (see the module docstring).
        gap: ``|a - b|`` for numeric traits, in ``unit``.
    """

    trait: str
    a: Trait
    b: Trait
    shared: bool
    p_shared: float
    gap: float | None = None
    tolerance: float | None = None

    @property
    def unit(self) -> str:
        return self.a.unit

    @property
    def p_differ(self) -> float:
        return 1.0 - self.p_shared

    def describe(self) -> str:
        """One phrase, e.g. ``gender (both male, p=0.97)`` or ``age (31 vs 58 years, gap 27 > 10, p=0.99)``."""
        if self.a.categorical:
            if self.shared:
                return f"{self.trait} (both {self.a.value}, p={self.p_shared:.2f})"
            return f"{self.trait} ({self.a.value} vs {self.b.value}, p={self.p_differ:.2f})"
        u = f" {self.unit}" if self.unit else ""
        fmt = "{:.0f}" if self.trait == "age" else "{:.1f}"
        va, vb, gap = fmt.format(float(self.a.value)), fmt.format(float(self.b.value)), fmt.format(self.gap or 0.0)
        tol = fmt.format(self.tolerance or 0.0)
        if self.a.interval is not None and self.b.interval is not None:  # calibrated: the intervals are what is stated
            ia, ib = ("-".join(fmt.format(v) for v in t.interval) for t in (self.a, self.b))  # type: ignore[union-attr]
            level = {t.interval_level for t in (self.a, self.b)}
            lv = f"{100 * level.pop():.0f}%" if len(level) == 1 and None not in level else "stated"
            rel = "<=" if self.shared else ">"
            p = self.p_shared if self.shared else self.p_differ
            return (f"{self.trait} ({ia} {'and' if self.shared else 'vs'} {ib}{u}, {lv} intervals; estimates {va} and {vb}, "
                    f"gap {gap} {rel} {tol}, p={p:.2f})")
        if self.shared:
            return f"{self.trait} ({va} and {vb}{u}, gap {gap} <= {tol}, p={self.p_shared:.2f})"
        return f"{self.trait} ({va} vs {vb}{u}, gap {gap} > {tol}, p={self.p_differ:.2f})"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "trait": self.trait, "a": self.a.to_dict(), "b": self.b.to_dict(), "shared": bool(self.shared),
            "p_shared": round(float(self.p_shared), 4),
        }
        if self.gap is not None:
            d.update(gap=round(float(self.gap), 3), tolerance=self.tolerance, unit=self.unit)
        return d


def _p_same_class(a: Trait, b: Trait) -> float:
    if a.probabilities and b.probabilities:
        return float(sum(a.probabilities.get(c, 0.0) * b.probabilities.get(c, 0.0)
                         for c in set(a.probabilities) | set(b.probabilities)))
    # two-class fallback from the confidences alone
    ca, cb = float(a.confidence), float(b.confidence)
    return ca * cb + (1 - ca) * (1 - cb) if a.value == b.value else ca * (1 - cb) + (1 - ca) * cb


def _p_within(a: Trait, b: Trait, tol: float) -> float:
    if a.distribution is not None and b.distribution is not None:
        sa, pa = (np.asarray(v, np.float64) for v in a.distribution)
        sb, pb = (np.asarray(v, np.float64) for v in b.distribution)
        close = np.abs(sa[:, None] - sb[None, :]) <= tol + 1e-9
        return float(np.clip(pa @ close @ pb, 0.0, 1.0))
    from scipy.stats import norm

    mu = float(a.value) - float(b.value)
    sd = math.sqrt((a.std or 0.0) ** 2 + (b.std or 0.0) ** 2)
    if sd == 0:
        return float(abs(mu) <= tol)
    return float(norm.cdf((tol - mu) / sd) - norm.cdf((-tol - mu) / sd))


def compare_traits(a: FaceTraits, b: FaceTraits, tolerances: Mapping[str, float] | None = None) -> dict[str, TraitComparison]:
    """Every trait both faces have, compared (see the module docstring)."""
    tol = {**PAIR_TOLERANCES, **(tolerances or {})}
    out: dict[str, TraitComparison] = {}
    for name in a.traits:
        if name not in b.traits:
            continue
        ta, tb = a.traits[name], b.traits[name]
        if ta.categorical != tb.categorical:
            raise ConfigError(f"trait {name!r}: one face has a class ({ta.value!r}), the other a number ({tb.value!r})")
        if ta.categorical:
            out[name] = TraitComparison(name, ta, tb, ta.value == tb.value, _p_same_class(ta, tb))
        else:
            t = float(tol.get(name, 0.0))
            gap = abs(float(ta.value) - float(tb.value))
            out[name] = TraitComparison(name, ta, tb, gap <= t, _p_within(ta, tb, t), gap, t)
    return out


def outcome_of(match: bool, genuine: bool | None) -> str:
    """``"false accept"``, ``"false reject"``, ``"true accept"``, ``"true reject"``, or ``"match"``/``"no match"``."""
    if genuine is None:
        return "match" if match else "no match"
    return {(True, False): "false accept", (False, True): "false reject",
            (True, True): "true accept", (False, False): "true reject"}[(bool(match), bool(genuine))]


@dataclass(frozen=True)
class SoftBiometricExplanation:
    """The soft-biometric explanation of one verdict.

    Attributes:
        outcome: see :func:`outcome_of`.
        reasons: the shared traits (accepts) or the differing ones (rejects), most probable first.
    """

    score: float
    threshold: float
    match: bool
    genuine: bool | None
    traits_a: FaceTraits
    traits_b: FaceTraits
    comparisons: Mapping[str, TraitComparison]
    reasons: tuple[TraitComparison, ...] = field(default=())
    model: str = ""

    @property
    def outcome(self) -> str:
        return outcome_of(self.match, self.genuine)

    def summary(self) -> str:
        """One sentence an operator reads."""
        rel = ">=" if self.match else "<"
        head = f"{self.outcome.capitalize()} (score {self.score:.4f} {rel} threshold {self.threshold:.4f})"
        who = {"false accept": "the two different people", "true accept": "the two photos",
               "false reject": "the two photos of one person", "true reject": "the two people"}.get(self.outcome, "the two faces")
        if self.match:
            if not self.reasons:
                return f"{head}: {who} share none of the estimated traits; soft biometrics do not explain the accept."
            return f"{head}: {who} share " + _join([c.describe() for c in self.reasons]) + "."
        if not self.reasons:
            return f"{head}: {who} differ in none of the estimated traits; soft biometrics do not explain the reject."
        return f"{head}: {who} differ in " + _join([c.describe() for c in self.reasons]) + "."

    def data(self) -> dict[str, Any]:
        """Plain, JSON-serialisable content."""
        return {
            "kind": "soft-biometric explanation",
            "outcome": self.outcome, "score": round(float(self.score), 6), "threshold": round(float(self.threshold), 6),
            "match": bool(self.match), "genuine": self.genuine, "model": self.model,
            "images": [self.traits_a.source, self.traits_b.source],
            "reason_kind": "shared traits" if self.match else "differing traits",
            "reasons": [c.trait for c in self.reasons],
            "summary": self.summary(),
            "comparisons": {k: c.to_dict() for k, c in self.comparisons.items()},
            "faces": [self.traits_a.to_dict(), self.traits_b.to_dict()],
        }

    def visualize(self, path: str | os.PathLike, photos: Sequence[np.ndarray] | None = None, dpi: int = 120) -> Path:
        """Both faces over a table of their traits (PNG). ``photos``: the two RGB photos (default: read the sources)."""
        from .plots import explanation_figure

        return explanation_figure(self, path, photos=photos, dpi=dpi)


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def explain_verdict(traits_a: FaceTraits, traits_b: FaceTraits, score: float, threshold: float,
                    genuine: bool | None = None, tolerances: Mapping[str, float] | None = None,
                    model: str = "") -> SoftBiometricExplanation:
    """Explain a verdict (``match = score >= threshold``) by the two faces' traits.

    Args:
        genuine: whether the pair is truly one person (``None``: unknown; the outcome is then
            ``"match"`` / ``"no match"`` and the reasons are the same as for an accept / reject).
        tolerances: numeric trait -> the gap below which two faces share it (default :data:`PAIR_TOLERANCES`).
    """
    if not (math.isfinite(score) and math.isfinite(threshold)):
        raise ConfigError(f"score and threshold must be finite, got {score}, {threshold}")
    comps = compare_traits(traits_a, traits_b, tolerances)
    match = bool(score >= threshold)
    if match:
        reasons = sorted((c for c in comps.values() if c.shared), key=lambda c: -c.p_shared)
    else:
        reasons = sorted((c for c in comps.values() if not c.shared), key=lambda c: -c.p_differ)
    return SoftBiometricExplanation(float(score), float(threshold), match, genuine, traits_a, traits_b, comps,
                                    tuple(reasons), model)
