"""Calibrated confidences of the soft-biometric estimators (issue 19).

Two maps, each fitted on a *calibration* set and checked on faces it never saw:

* gender: the estimator's raw ``P(male)`` mapped to a calibrated one by isotonic regression
  (Zadrozny & Elkan, KDD 2002; scikit-learn's ``IsotonicRegression``, clipped outside the fitted
  range, kept as its breakpoints and applied by linear interpolation, as scikit-learn does) or
  by Platt scaling (Platt 1999: a logistic regression on the logit of ``P(male)``). The quality
  measure is the top-label expected calibration error (Naeini et al., AAAI 2015; Guo et al.,
  ICML 2017): ``ECE = sum_b |B_b|/N |acc(B_b) - conf(B_b)|`` over ``bins`` equal-width bins of
  the confidence of the chosen class (in [0.5, 1] for two classes; the bins span [0, 1]);
* numeric traits (age, BMI, weight): split-conformal prediction intervals (Vovk et al. 2005;
  Lei et al., JASA 2018) with the locally weighted score of Papadopoulos et al. (2008):
  ``s_i = |y_i - yhat_i| / max(std_i, std_floor)`` where ``std_i`` is the estimator's own
  predictive standard deviation (the age model's 81-bin spread, the body-mass regressor's
  Gaussian-process std) and ``std_floor`` a small positive constant; ``q`` is the
  ``ceil((n + 1) level)``-th smallest calibration score and the interval ``yhat +- q std``.
  Under exchangeability of calibration and test faces its coverage is at least ``level``
  (and at most ``level + 1/(n+1)`` without ties). ``score="absolute"`` (``std = 1``) gives
  intervals of one width for all faces.

:class:`SoftBiometricCalibration` holds one map per trait, keyed by the estimator that produced
it and that estimator's settings (a map fitted on one model is never applied to another), is
saved and loaded as plain JSON (no pickle), and :meth:`~SoftBiometricCalibration.apply` turns
:class:`~xaiface.soft.traits.FaceTraits` into calibrated ones: gender probabilities replaced,
numeric traits given an ``interval`` and its ``interval_level``, and their confidence
``P(|true - estimate| <= tolerance)`` replaced by the share of calibration scores within the
tolerance (:meth:`ConformalInterval.within`; the raw one came from the estimator's own
predictive distribution). :class:`CalibratedEstimator`
wraps an estimator so that every result is calibrated; :func:`default_calibration` is the
calibration shipped with the package (``soft/data/calibration.json``, written by
``xaiface eval calibration``), which the soft-biometric explanation of ``xaiface explain`` and
``xaiface traits`` uses to state "age 25-34 (80% interval)".

:func:`calibrate_soft_biometrics` is the experiment: UTKFace (age, gender; a seeded random half
calibrates, the other half is held out), LFW's gender lists (held out entirely: a check across
data sets) and VIP_attribute (BMI, weight: out-of-fold predictions of the 5-fold
cross-validated regressor; a seeded half of the faces calibrates, the other half is held out).
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DatasetError
from .traits import FaceTraits, Trait, TraitEstimator

FORMAT = 1
#: the calibration shipped with the package
DEFAULT_PATH = Path(__file__).parent / "data" / "calibration.json"
#: settings that do not change an estimator's raw outputs (tolerances only change its confidences)
_IGNORED_SETTINGS = ("tolerance", "tolerances")


# ------------------------------------------------------------------------------ measures


def expected_calibration_error(p_positive: np.ndarray, y: np.ndarray, bins: int = 15) -> dict[str, Any]:
    """Top-label ECE of a two-class probability (see the module docstring).

    Args:
        p_positive: ``(N,)`` predicted probability of class 1; y: ``(N,)`` 0/1 truth.
        bins: equal-width bins of the confidence ``max(p, 1 - p)`` over [0, 1].

    Returns:
        ``ece``, ``accuracy``, ``mean_confidence``, ``n``, ``bins`` and per bin ``edges``, ``count``,
        ``accuracy``, ``confidence`` (``None`` for an empty bin) for the reliability diagram.
    """
    p = np.asarray(p_positive, np.float64)
    t = np.asarray(y)
    if p.shape != t.shape or p.ndim != 1 or p.size == 0 or np.any((p < 0) | (p > 1)) or not np.all(np.isin(t, (0, 1))):
        raise ConfigError(f"expected_calibration_error: need (N,) probabilities in [0, 1] and 0/1 labels, got {p.shape}, {t.shape}")
    if bins < 1:
        raise ConfigError(f"bins must be >= 1, got {bins}")
    pred = (p >= 0.5).astype(int)
    conf = np.where(pred == 1, p, 1 - p)
    correct = (pred == t).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    b = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    rows_acc, rows_conf, counts = [], [], []
    for k in range(bins):
        m = b == k
        counts.append(int(m.sum()))
        if m.any():
            rows_acc.append(float(correct[m].mean()))
            rows_conf.append(float(conf[m].mean()))
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
        else:
            rows_acc.append(None)
            rows_conf.append(None)
    return {"ece": float(ece), "accuracy": float(correct.mean()), "mean_confidence": float(conf.mean()), "n": int(p.size),
            "bins": bins, "edges": edges.tolist(), "count": counts, "bin_accuracy": rows_acc, "bin_confidence": rows_conf}


def interval_coverage(truth: np.ndarray, low: np.ndarray, high: np.ndarray) -> dict[str, float]:
    """Fraction of ``truth`` within ``[low, high]`` and the mean width of the intervals."""
    t, lo, hi = (np.asarray(v, np.float64) for v in (truth, low, high))
    if not (t.shape == lo.shape == hi.shape) or t.size == 0:
        raise ConfigError(f"interval_coverage: need equal non-empty shapes, got {t.shape}, {lo.shape}, {hi.shape}")
    return {"coverage": float(np.mean((t >= lo) & (t <= hi))), "mean_width": float(np.mean(hi - lo)), "n": int(t.size)}


# ------------------------------------------------------------------------------ gender


class ProbabilityCalibrator:
    """Maps a raw two-class probability ``P(class 1)`` to a calibrated one.

    Args:
        method: ``"isotonic"`` or ``"platt"`` (see the module docstring).

    Attributes (after :meth:`fit`): ``x_``/``y_`` (isotonic breakpoints) or ``a_``/``b_`` (Platt:
    ``p' = sigmoid(a logit(p) + b)``); ``n_``.
    """

    def __init__(self, method: str = "isotonic"):
        if method not in ("isotonic", "platt"):
            raise ConfigError(f"calibration method must be 'isotonic' or 'platt', got {method!r}")
        self.method = method

    def fit(self, p: np.ndarray, y: np.ndarray) -> ProbabilityCalibrator:
        p = _check_prob(p)
        y = np.asarray(y)
        if y.shape != p.shape or not np.all(np.isin(y, (0, 1))) or np.unique(y).size < 2:
            raise ConfigError(f"ProbabilityCalibrator.fit: need (N,) 0/1 labels of both classes, got {y.shape}")
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y.astype(np.float64))
            self.x_ = np.asarray(iso.X_thresholds_, np.float64)
            self.y_ = np.asarray(iso.y_thresholds_, np.float64)
        else:
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p)[:, None], y)
            self.a_, self.b_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        self.n_ = int(p.size)
        return self

    def __call__(self, p: np.ndarray) -> np.ndarray:
        p = _check_prob(p)
        if self.method == "isotonic":
            if not hasattr(self, "x_"):
                raise ConfigError("ProbabilityCalibrator: call fit() first")
            return np.interp(p, self.x_, self.y_)
        if not hasattr(self, "a_"):
            raise ConfigError("ProbabilityCalibrator: call fit() first")
        return 1.0 / (1.0 + np.exp(-(self.a_ * _logit(p) + self.b_)))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"method": self.method, "n": self.n_}
        if self.method == "isotonic":
            d.update(x=self.x_.tolist(), y=self.y_.tolist())
        else:
            d.update(a=self.a_, b=self.b_)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ProbabilityCalibrator:
        c = cls(str(d["method"]))
        c.n_ = int(d.get("n", 0))
        if c.method == "isotonic":
            c.x_, c.y_ = np.asarray(d["x"], np.float64), np.asarray(d["y"], np.float64)
            if c.x_.shape != c.y_.shape or c.x_.size < 1 or np.any(np.diff(c.x_) < 0):
                raise ConfigError("isotonic calibration: x and y must be equal-length lists, x non-decreasing")
        else:
            c.a_, c.b_ = float(d["a"]), float(d["b"])
        return c


def _check_prob(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, np.float64)
    if p.ndim != 1 or p.size == 0 or not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ConfigError(f"probabilities must be a non-empty (N,) array in [0, 1], got shape {p.shape}")
    return p


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


# ------------------------------------------------------------------------------ intervals


class ConformalInterval:
    """Split-conformal interval ``estimate +- q * std`` at coverage ``level`` (module docstring).

    Args:
        level: target coverage in (0, 1), e.g. 0.8.
        score: ``"normalized"`` (``|y - yhat| / max(std, std_floor)``) or ``"absolute"`` (``|y - yhat|``).
        std_floor: the smallest ``std`` used, in the trait's unit.

    Attributes (after :meth:`fit`): ``q_`` (the conformal quantile of the scores), ``n_``.
    """

    def __init__(self, level: float = 0.8, score: str = "normalized", std_floor: float = 0.5):
        if not 0 < level < 1:
            raise ConfigError(f"level must be in (0, 1), got {level}")
        if score not in ("normalized", "absolute"):
            raise ConfigError(f"score must be 'normalized' or 'absolute', got {score!r}")
        if not std_floor > 0:
            raise ConfigError(f"std_floor must be > 0, got {std_floor}")
        self.level = float(level)
        self.score = score
        self.std_floor = float(std_floor)

    def _scale(self, std: np.ndarray | None, n: int) -> np.ndarray:
        if self.score == "absolute":
            return np.ones(n)
        if std is None:
            raise ConfigError("a normalized conformal score needs the estimator's std")
        s = np.asarray(std, np.float64)
        if s.shape != (n,) or not np.all(np.isfinite(s)):
            raise ConfigError(f"std must be a finite ({n},) array, got {s.shape}")
        return np.maximum(s, self.std_floor)

    def fit(self, estimate: np.ndarray, truth: np.ndarray, std: np.ndarray | None = None) -> ConformalInterval:
        e, t = np.asarray(estimate, np.float64), np.asarray(truth, np.float64)
        if e.shape != t.shape or e.ndim != 1 or e.size < 2 or not (np.all(np.isfinite(e)) and np.all(np.isfinite(t))):
            raise ConfigError(f"ConformalInterval.fit: need finite (N,) estimates and truths, N >= 2, got {e.shape}, {t.shape}")
        s = np.sort(np.abs(t - e) / self._scale(std, e.size))
        n = s.size
        k = math.ceil((n + 1) * self.level)
        if k > n:
            raise ConfigError(f"{n} calibration faces are too few for a {self.level:.0%} interval (need >= {math.ceil(self.level / (1 - self.level))})")
        self.q_ = float(s[k - 1])
        self.n_ = int(n)
        self.score_quantiles_ = np.quantile(s, np.linspace(0, 1, 101))
        return self

    def within(self, tolerance: float, std: np.ndarray | None = None, n: int = 1) -> np.ndarray:
        """Calibrated ``P(|true - estimate| <= tolerance)``: the share of calibration scores at most
        ``tolerance / scale`` (read off the 101 stored score percentiles, linearly interpolated)."""
        if not hasattr(self, "score_quantiles_"):
            raise ConfigError("ConformalInterval: call fit() first")
        size = n if std is None else np.asarray(std).reshape(-1).size
        t = float(tolerance) / self._scale(None if std is None else np.asarray(std, np.float64).reshape(-1), size)
        return np.interp(t, self.score_quantiles_, np.linspace(0, 1, 101), left=0.0, right=1.0)

    def __call__(self, estimate: np.ndarray, std: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` arrays."""
        if not hasattr(self, "q_"):
            raise ConfigError("ConformalInterval: call fit() first")
        e = np.asarray(estimate, np.float64).reshape(-1)
        half = self.q_ * self._scale(None if std is None else np.asarray(std, np.float64).reshape(-1), e.size)
        return e - half, e + half

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "score": self.score, "std_floor": self.std_floor, "q": self.q_, "n": self.n_,
                "score_percentiles": [round(float(v), 6) for v in self.score_quantiles_]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ConformalInterval:
        c = cls(float(d["level"]), str(d["score"]), float(d.get("std_floor", 0.5)))
        c.q_, c.n_ = float(d["q"]), int(d.get("n", 0))
        c.score_quantiles_ = np.asarray(d.get("score_percentiles", [c.q_] * 101), np.float64)
        if c.score_quantiles_.shape != (101,) or np.any(np.diff(c.score_quantiles_) < 0):
            raise ConfigError("conformal score_percentiles must be 101 non-decreasing numbers")
        if not (math.isfinite(c.q_) and c.q_ >= 0):
            raise ConfigError(f"conformal quantile must be finite and >= 0, got {c.q_}")
        return c


# ------------------------------------------------------------------------------ the saved object


def _settings_key(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k not in _IGNORED_SETTINGS}


class SoftBiometricCalibration:
    """Per trait, the calibration map and the estimator (name and settings) it was fitted for.

    ``entries[trait] = {"estimator": name, "settings": {...}, "map": ProbabilityCalibrator | ConformalInterval,
    "fitted_on": text}``. Build with :meth:`add`, persist with :meth:`save` / :meth:`load` (JSON).
    """

    def __init__(self, meta: Mapping[str, Any] | None = None):
        self.entries: dict[str, dict[str, Any]] = {}
        self.meta = dict(meta or {})

    def add(self, trait: str, estimator: str, settings: Mapping[str, Any], mapping: ProbabilityCalibrator | ConformalInterval,
            fitted_on: str = "") -> SoftBiometricCalibration:
        if trait == "gender" and not isinstance(mapping, ProbabilityCalibrator):
            raise ConfigError("the gender calibration must be a ProbabilityCalibrator")
        if trait != "gender" and not isinstance(mapping, ConformalInterval):
            raise ConfigError(f"the {trait} calibration must be a ConformalInterval")
        self.entries[trait] = {"estimator": estimator, "settings": _settings_key(settings), "map": mapping, "fitted_on": fitted_on}
        return self

    def covers(self, trait: Trait, settings: Mapping[str, Any] | None = None) -> bool:
        """Whether a map exists for this trait from this estimator (and, when given, these settings)."""
        e = self.entries.get(trait.name)
        if e is None or e["estimator"] != trait.estimator:
            return False
        return settings is None or json.dumps(_settings_key(settings), sort_keys=True, default=str) == json.dumps(
            e["settings"], sort_keys=True, default=str)

    def apply_trait(self, trait: Trait) -> Trait:
        """The calibrated trait (unchanged when no map is for its estimator)."""
        e = self.entries.get(trait.name)
        if e is None or e["estimator"] != trait.estimator:
            return trait
        m = e["map"]
        if isinstance(m, ProbabilityCalibrator):
            if not trait.probabilities or set(trait.probabilities) != {"female", "male"}:
                return trait
            pm = float(m(np.array([trait.probabilities["male"]]))[0])
            probs = {"female": 1.0 - pm, "male": pm}
            value = "male" if pm >= 0.5 else "female"
            return replace(trait, value=value, confidence=probs[value], probabilities=probs)
        if trait.categorical:
            return trait
        std = None if trait.std is None and m.score == "absolute" else np.array([float(trait.std or 0.0)])
        lo, hi = m(np.array([float(trait.value)]), std)
        low = max(0.0, float(lo[0]))
        conf = trait.confidence if trait.tolerance is None else float(m.within(trait.tolerance, std)[0])
        return replace(trait, interval=(low, float(hi[0])), interval_level=m.level, confidence=conf)

    def apply(self, traits: FaceTraits) -> FaceTraits:
        return FaceTraits({k: self.apply_trait(t) for k, t in traits.traits.items()}, traits.face, traits.source)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": "xaiface soft-biometric calibration", "meta": self.meta,
                "traits": {k: {"estimator": e["estimator"], "settings": e["settings"], "fitted_on": e["fitted_on"],
                               "map": e["map"].to_dict()} for k, e in self.entries.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SoftBiometricCalibration:
        if d.get("format") != FORMAT or "traits" not in d:
            raise ConfigError(f"not a soft-biometric calibration of format {FORMAT} (format {d.get('format')!r})")
        c = cls(d.get("meta"))
        for k, e in d["traits"].items():
            m = ProbabilityCalibrator.from_dict(e["map"]) if k == "gender" else ConformalInterval.from_dict(e["map"])
            c.add(k, str(e["estimator"]), e.get("settings") or {}, m, str(e.get("fitted_on", "")))
        return c

    def save(self, path: str | os.PathLike) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=1, default=str) + "\n")
        return p

    @classmethod
    def load(cls, path: str | os.PathLike) -> SoftBiometricCalibration:
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{p}: no such calibration file") from None
        except ValueError as e:
            raise ConfigError(f"{p}: not JSON ({e})") from None
        try:
            return cls.from_dict(d)
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"{p}: malformed calibration ({type(e).__name__}: {e})") from None


def default_calibration() -> SoftBiometricCalibration | None:
    """The calibration shipped with the package, or ``None`` when it is not there."""
    return SoftBiometricCalibration.load(DEFAULT_PATH) if DEFAULT_PATH.is_file() else None


class CalibratedEstimator(TraitEstimator):
    """An estimator whose every result goes through a :class:`SoftBiometricCalibration`.

    Only the maps fitted for this estimator *with these settings* are applied (the others are
    dropped when wrapping), so a calibration never lands on a model it was not fitted for.
    """

    def __init__(self, estimator: TraitEstimator, calibration: SoftBiometricCalibration):
        self.estimator = estimator
        self.name = estimator.name
        self.traits = estimator.traits
        self.reference = estimator.reference
        self.license = estimator.license
        own = estimator.settings()
        self.calibration = SoftBiometricCalibration(calibration.meta)
        for k, e in calibration.entries.items():
            if e["estimator"] == estimator.name and _settings_key(own) == e["settings"]:
                self.calibration.entries[k] = e

    @property
    def calibrated_traits(self) -> tuple[str, ...]:
        return tuple(self.calibration.entries)

    def settings(self) -> dict[str, Any]:
        return {**self.estimator.settings(), "calibration": self.calibration.to_dict()["traits"]}

    def estimate(self, photo: np.ndarray, faces: Sequence[Any], source: str | None = None) -> list[FaceTraits]:
        return [self.calibration.apply(ft) for ft in self.estimator.estimate(photo, faces, source=source)]


def calibrate_estimators(estimators: Sequence[TraitEstimator],
                         calibration: SoftBiometricCalibration | None | bool = True) -> list[TraitEstimator]:
    """Wrap each estimator that ``calibration`` (``True``: :func:`default_calibration`) has a map for."""
    if calibration is False or calibration is None:
        return list(estimators)
    cal = default_calibration() if calibration is True else calibration
    if cal is None:
        return list(estimators)
    out: list[TraitEstimator] = []
    for est in estimators:
        wrapped = CalibratedEstimator(est, cal)
        out.append(wrapped if wrapped.calibrated_traits else est)
    return out


# ------------------------------------------------------------------------------ the experiment


def _half_split(n: int, fraction: float, seed: int, strata: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cal = np.zeros(n, bool)
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    for g in groups:
        g = rng.permutation(g)
        cal[g[: int(round(fraction * g.size))]] = True
    return np.flatnonzero(cal), np.flatnonzero(~cal)


def _choose_gender_method(p: np.ndarray, y: np.ndarray, bins: int, seed: int) -> tuple[str, dict[str, float]]:
    """The method with the lower 5-fold cross-validated ECE *within the calibration set*."""
    from sklearn.model_selection import StratifiedKFold

    scores = {}
    for method in ("isotonic", "platt"):
        q = np.zeros_like(p)
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed).split(p, y):
            q[te] = ProbabilityCalibrator(method).fit(p[tr], y[tr])(p[te])
        scores[method] = expected_calibration_error(q, y, bins)["ece"]
    return min(scores, key=scores.get), scores  # type: ignore[arg-type]


def _choose_score(e: np.ndarray, t: np.ndarray, s: np.ndarray, level: float, std_floor: float, seed: int) -> tuple[str, dict[str, float]]:
    """The conformal score with the narrower mean interval, 5-fold cross-validated within the calibration set."""
    from sklearn.model_selection import KFold

    widths = {}
    for score in ("normalized", "absolute"):
        w = []
        for tr, te in KFold(5, shuffle=True, random_state=seed).split(e):
            ci = ConformalInterval(level, score, std_floor).fit(e[tr], t[tr], s[tr])
            lo, hi = ci(e[te], s[te])
            w.append(float(np.mean(hi - lo)))
        widths[score] = float(np.mean(w))
    return min(widths, key=widths.get), widths  # type: ignore[arg-type]


def calibrate_soft_biometrics(out_dir: str | os.PathLike, *, data: str | os.PathLike | None = None, level: float = 0.8,
                              bins: int = 15, calibration_fraction: float = 0.5, folds: int = 5, seed: int = 0,
                              limit: int | None = None, lfw: bool = True, vip: bool = True, cache: Any = True,
                              progress: bool = True, save: str | os.PathLike | None = None) -> dict[str, Any]:
    """Fit and check the calibration (see the module docstring); write ``calibration.json``, ``report.json``,
    ``table.md``, ``reliability.png``, ``coverage.png``; return the report.

    Args:
        level: the stated coverage of the numeric intervals. bins: ECE / reliability bins.
        calibration_fraction: share of UTKFace / VIP_attribute faces that calibrate (the rest is held out).
        folds: VIP_attribute cross-validation folds (the out-of-fold predictions are calibrated and tested).
        limit: at most this many UTKFace images (random, ``seed``) for quick runs.
        lfw: also check the gender calibration on LFW's pair images (held out entirely).
        save: also write the calibration there (e.g. the package's :data:`DEFAULT_PATH`).
    """
    import warnings

    from ..datasets import UTKFace
    from ..pipeline.batch import locate_faces
    from .batch import estimate_traits
    from .dlib_age_gender import DlibAgeEstimator, DlibGenderEstimator
    from .evaluate import _limit
    from .store import open_store

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = open_store(cache if cache is not True else None)
    g_est, a_est = DlibGenderEstimator(), DlibAgeEstimator()
    cal = SoftBiometricCalibration({"level": level, "bins": bins, "seed": seed, "calibration_fraction": calibration_fraction})
    report: dict[str, Any] = {"level": level, "ece_bins": bins, "seed": seed}
    md = ["| data set (held-out faces) | measure | before | after |", "|---|---|---|---|"]

    # ---- UTKFace: gender and age
    utk = UTKFace(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        items = _limit(utk.items(), limit, seed)
    paths = [str(it.path) for it in items]
    loc = locate_faces(paths, select="center", fallback="image", cache=cache is not False, progress=progress)
    tr, errors = estimate_traits([g_est, a_est], loc.faces, store=store, progress=progress, desc="gender, age (UTKFace)")
    ok = [i for i, p in enumerate(paths) if p in tr]
    if len(ok) < 20:
        raise DatasetError(f"UTKFace: only {len(ok)} faces with traits; calibration needs more")
    pm = np.array([tr[paths[i]]["gender"].probabilities["male"] for i in ok])  # type: ignore[index]
    ym = np.array([items[i].gender == "male" for i in ok], int)
    age_est = np.array([float(tr[paths[i]]["age"].value) for i in ok])
    age_std = np.array([float(tr[paths[i]]["age"].std or 0.0) for i in ok])
    age_true = np.array([items[i].age for i in ok], np.float64)
    ci_, te_ = _half_split(len(ok), calibration_fraction, seed, ym)
    method, cv_ece = _choose_gender_method(pm[ci_], ym[ci_], bins, seed)
    gcal = ProbabilityCalibrator(method).fit(pm[ci_], ym[ci_])
    cal.add("gender", g_est.name, g_est.settings(), gcal, f"UTKFace, {ci_.size} faces (seed {seed})")
    both = {"isotonic": ProbabilityCalibrator("isotonic").fit(pm[ci_], ym[ci_]),
            "platt": ProbabilityCalibrator("platt").fit(pm[ci_], ym[ci_])}
    before = expected_calibration_error(pm[te_], ym[te_], bins)
    after = expected_calibration_error(gcal(pm[te_]), ym[te_], bins)
    report["utkface"] = {"images": len(paths), "faces": len(ok), "errors": errors, "calibration_faces": int(ci_.size),
                         "held_out_faces": int(te_.size), "split": f"seeded random {calibration_fraction:.0%}, stratified by gender",
                         "gender": {"method": method, "cross_validated_ece_on_calibration_set": cv_ece,
                                    "before": before, "after": after,
                                    "after_by_method": {k: expected_calibration_error(c(pm[te_]), ym[te_], bins)["ece"]
                                                        for k, c in both.items()}}}
    md += [f"| UTKFace ({te_.size}) | gender ECE ({bins} bins), {method} | {100 * before['ece']:.2f}% | {100 * after['ece']:.2f}% |",
           f"| UTKFace ({te_.size}) | gender accuracy | {100 * before['accuracy']:.2f}% | {100 * after['accuracy']:.2f}% |"]

    score, cv_width = _choose_score(age_est[ci_], age_true[ci_], age_std[ci_], level, 0.5, seed)
    acal = ConformalInterval(level, score, 0.5).fit(age_est[ci_], age_true[ci_], age_std[ci_])
    cal.add("age", a_est.name, a_est.settings(), acal, f"UTKFace, {ci_.size} faces (seed {seed})")
    lo, hi = acal(age_est[te_], age_std[te_])
    lo = np.maximum(lo, 0.0)
    cov = interval_coverage(age_true[te_], lo, hi)
    # before: the estimator's own +-tolerance band and its stated confidence
    tol = a_est.tolerance
    own = interval_coverage(age_true[te_], age_est[te_] - tol, age_est[te_] + tol)
    conf_before = float(np.mean([tr[paths[ok[i]]]["age"].confidence for i in te_]))
    bands = {}
    for a, b in ((0, 13), (13, 20), (20, 40), (40, 60), (60, 81), (81, 200)):
        m = (age_true[te_] >= a) & (age_true[te_] < b)
        if m.any():
            bands[f"{a}-{b - 1}"] = interval_coverage(age_true[te_][m], lo[m], hi[m])
    conf_after = float(np.mean(acal.within(tol, age_std[te_] if score == "normalized" else None, te_.size)))
    report["utkface"]["age"] = {"score": score, "cross_validated_mean_width_on_calibration_set": cv_width, "q": acal.q_,
                                "held_out": cov, "by_true_age": bands,
                                "before": {"tolerance": tol, "mean_stated_confidence": conf_before, "fraction_within": own["coverage"]},
                                "after": {"tolerance": tol, "mean_stated_confidence": conf_after, "fraction_within": own["coverage"]}}
    md += [f"| UTKFace ({te_.size}) | age: stated confidence vs fraction within +-{tol:g} y (before) / "
           f"coverage of the {level:.0%} conformal interval (after, {score} score) | {conf_before:.3f} vs {own['coverage']:.3f} | "
           f"{100 * cov['coverage']:.1f}% (mean width {cov['mean_width']:.1f} y) |",
           f"| UTKFace ({te_.size}) | age: stated confidence P(error <= {tol:g} y) vs fraction within | {conf_before:.3f} vs "
           f"{own['coverage']:.3f} | {conf_after:.3f} vs {own['coverage']:.3f} |"]

    # ---- LFW gender (held out entirely)
    if lfw:
        from ..datasets import LFW

        d = LFW(data)
        genders = d.genders()
        lpaths = list(dict.fromkeys(str(p) for pr in d.pairs() for p in (pr.path_a, pr.path_b)))
        if limit:
            lpaths = _limit(lpaths, limit, seed)
        lloc = locate_faces(lpaths, select="center", fallback="median", cache=cache is not False, progress=progress)
        ltr, lerr = estimate_traits([g_est], lloc.faces, store=store, progress=progress, desc="gender (LFW)")
        lab = [(p, genders.get(Path(p).name)) for p in lpaths if p in ltr]
        lab = [(p, g) for p, g in lab if g in ("male", "female")]
        lp = np.array([ltr[p]["gender"].probabilities["male"] for p, _ in lab])  # type: ignore[index]
        ly = np.array([g == "male" for _, g in lab], int)
        lb, la = expected_calibration_error(lp, ly, bins), expected_calibration_error(gcal(lp), ly, bins)
        report["lfw"] = {"images": len(lab), "errors": lerr, "gender": {"before": lb, "after": la}}
        md.append(f"| LFW pair images ({len(lab)}) | gender ECE ({bins} bins), calibrated on UTKFace | "
                  f"{100 * lb['ece']:.2f}% | {100 * la['ece']:.2f}% |")

    # ---- VIP_attribute: BMI and weight
    if vip:
        from .body_mass import BodyMassEstimator, cross_validate_body_mass, default_body_mass_regressor, vip_embeddings

        dv = vip_embeddings(data, cache=cache, progress=progress, seed=seed)
        cv = cross_validate_body_mass(dv["X"], {"bmi": dv["bmi"], "weight": dv["weight"]}, strata=dv["male"], folds=folds, seed=seed)
        vc, vt = _half_split(len(dv["X"]), calibration_fraction, seed + 1, dv["male"].astype(int))
        bm = BodyMassEstimator(default_body_mass_regressor(data=data, progress=progress))
        report["vip"] = {"faces": int(len(dv["X"])), "calibration_faces": int(vc.size), "held_out_faces": int(vt.size),
                         "predictions": f"out-of-fold, {folds}-fold cross-validation stratified by gender (seed {seed})",
                         "deployed_regressor": "trained on all VIP_attribute faces (its intervals use the same q)"}
        for t, unit in (("bmi", "kg/m^2"), ("weight", "kg")):
            e, s, y = (np.asarray(cv[t][k], np.float64) for k in ("predictions", "std", "truth"))
            floor = 0.1 if t == "bmi" else 0.5
            sc, w = _choose_score(e[vc], y[vc], s[vc], level, floor, seed)
            ivl = ConformalInterval(level, sc, floor).fit(e[vc], y[vc], s[vc])
            cal.add(t, bm.name, bm.settings(), ivl, f"VIP_attribute out-of-fold predictions, {vc.size} faces (seed {seed})")
            lo, hi = ivl(e[vt], s[vt])
            cv_t = interval_coverage(y[vt], np.maximum(lo, 0), hi)
            tl = cv[t]["tolerance"]
            conf_t = np.asarray(ivl.within(tl, s[vt] if sc == "normalized" else None, vt.size))
            raw_t = np.asarray(cv[t].get("confidence", [np.nan] * len(e)), np.float64)[vt]
            frac_t = float(np.mean(np.abs(e[vt] - y[vt]) <= tl))
            # before: the regressor's stated confidence P(|error| <= tolerance) vs the fraction within it
            report["vip"][t] = {"score": sc, "cross_validated_mean_width_on_calibration_set": w, "q": ivl.q_, "held_out": cv_t,
                                "before": {"tolerance": tl, "mean_stated_confidence_all_faces": cv[t]["mean_confidence"],
                                           "fraction_within_all_faces": cv[t]["fraction_within_tolerance"],
                                           "mean_stated_confidence_held_out": float(np.nanmean(raw_t)) if np.isfinite(raw_t).any() else None,
                                           "fraction_within_held_out": frac_t},
                                "after": {"tolerance": tl, "mean_stated_confidence_held_out": float(conf_t.mean()),
                                          "fraction_within_held_out": frac_t}}
            md.append(f"| VIP_attribute ({vt.size}) | {t}: stated confidence vs fraction within +-{tl:g} {unit} (before, all "
                      f"{len(e)} faces) / coverage of the {level:.0%} conformal interval (after, {sc} score) | "
                      f"{cv[t]['mean_confidence']:.3f} vs {cv[t]['fraction_within_tolerance']:.3f} | "
                      f"{100 * cv_t['coverage']:.1f}% (mean width {cv_t['mean_width']:.2f} {unit}) |")
            if np.isfinite(raw_t).any():
                md.append(f"| VIP_attribute ({vt.size}) | {t}: stated confidence P(error <= {tl:g} {unit}) vs fraction within | "
                          f"{np.nanmean(raw_t):.3f} vs {frac_t:.3f} | {conf_t.mean():.3f} vs {frac_t:.3f} |")

    cal.save(out / "calibration.json")
    if save is not None:
        cal.save(save)
    _plots(report, out, pm[te_], gcal(pm[te_]), ym[te_], bins, level)
    report["table"] = "\n".join(md) + "\n"
    report["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "table.md").write_text(report["table"])
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def _plots(report: Mapping[str, Any], out: Path, p_before: np.ndarray, p_after: np.ndarray, y: np.ndarray, bins: int,
           level: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = [("UTKFace held out", report["utkface"]["gender"])]
    if "lfw" in report:
        sets.append(("LFW pair images", report["lfw"]["gender"]))
    fig, axes = plt.subplots(1, len(sets), figsize=(5.2 * len(sets), 4.6), squeeze=False)
    for ax, (name, g) in zip(axes[0], sets):
        for key, colour in (("before", "#b4235a"), ("after", "#1a7f37")):
            r = g[key]
            xs = [c for c in r["bin_confidence"] if c is not None]
            ys = [a for a in r["bin_accuracy"] if a is not None]
            ax.plot(xs, ys, "o-", color=colour, label=f"{key}: ECE {100 * r['ece']:.2f}%")
        ax.plot([0.5, 1], [0.5, 1], "k--", lw=1, label="perfect calibration")
        ax.set_xlim(0.5, 1.0)
        ax.set_ylim(0.3, 1.0)
        ax.set_xlabel("confidence of the chosen gender (bin mean)")
        ax.set_ylabel("accuracy in the bin")
        ax.set_title(f"{name}: gender reliability ({bins} bins)")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=110)
    plt.close(fig)

    rows = [(f"age {k}", v["coverage"]) for k, v in report["utkface"]["age"]["by_true_age"].items()]
    rows.insert(0, ("age, all", report["utkface"]["age"]["held_out"]["coverage"]))
    for t in ("bmi", "weight"):
        if t in report.get("vip", {}):
            rows.append((t, report["vip"][t]["held_out"]["coverage"]))
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    ax.bar(range(len(rows)), [100 * v for _, v in rows], color="#4a6fa5")
    ax.axhline(100 * level, color="k", ls="--", lw=1, label=f"stated {level:.0%}")
    ax.axhspan(100 * level - 5, 100 * level + 5, color="#1a7f37", alpha=0.12, label="goal: within 5 points")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r for r, _ in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("held-out coverage (%)")
    ax.set_ylim(0, 100)
    ax.set_title("coverage of the conformal intervals on held-out faces")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "coverage.png", dpi=110)
    plt.close(fig)
