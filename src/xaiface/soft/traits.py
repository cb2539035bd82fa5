"""The soft-biometric contract: ``estimator.estimate(photo, faces) -> [FaceTraits]``.

Every estimator (gender, age, body mass, a user's external model) answers for the faces of one
photo with, per face, a :class:`FaceTraits`: a mapping from trait name to a :class:`Trait`,
each carrying its value *and* a confidence with one meaning across the family:

* categorical traits (``gender``): ``confidence`` is the model's probability of the value;
  ``probabilities`` holds every class;
* numeric traits (``age`` in years, ``bmi`` in kg/m^2, ``weight`` in kg): ``confidence`` is the
  probability that the true value lies within ``tolerance`` of ``value`` under the estimator's
  own predictive distribution (the age model's 81-bin softmax, the body-mass regressor's
  Gaussian); ``std`` is that distribution's standard deviation and ``distribution`` (when the
  estimator has a discrete one) its support and probabilities.

Estimators register by name (:func:`register_estimator`, :func:`get_estimator`,
:func:`list_estimators`), like the models and detectors.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, ModelNotFoundError
from ..registry import Registry
from ..types import DetectedFace

#: trait name -> unit (empty for categorical traits)
TRAIT_UNITS = {"gender": "", "age": "years", "bmi": "kg/m^2", "weight": "kg", "height": "m"}

#: default tolerances of the numeric traits: a numeric ``confidence`` is P(|true - value| <= tolerance),
#: and two faces "share" a numeric trait when their estimates differ by at most this much
DEFAULT_TOLERANCES = {"age": 5.0, "bmi": 3.0, "weight": 10.0, "height": 0.08}


@dataclass(frozen=True)
class Trait:
    """One estimated soft-biometric trait of one face.

    Attributes:
        name: ``"gender"``, ``"age"``, ``"bmi"``, ``"weight"`` (or an external model's trait).
        value: the class label (categorical) or the estimate in ``unit`` (numeric).
        confidence: in [0, 1]; see the module docstring for its meaning (NaN: unknown, written as null).
        estimator: the registered name of the estimator that produced it.
        unit: ``TRAIT_UNITS[name]`` (empty for categorical traits).
        std: standard deviation of the predictive distribution (numeric traits), in ``unit``.
        tolerance: the half-width used for ``confidence`` (numeric traits), in ``unit``.
        probabilities: class -> probability (categorical traits).
        distribution: ``(support, probabilities)`` of a discrete predictive distribution
            (e.g. the 81 age bins), when the estimator has one.
        interval: ``(low, high)`` in ``unit``, a calibrated prediction interval (numeric traits,
            set by :mod:`xaiface.soft.calibration`); interval_level: its stated coverage (e.g. 0.8).
    """

    name: str
    value: str | float
    confidence: float
    estimator: str
    unit: str = ""
    std: float | None = None
    tolerance: float | None = None
    probabilities: Mapping[str, float] | None = None
    distribution: tuple[tuple[float, ...], tuple[float, ...]] | None = field(default=None, repr=False)
    interval: tuple[float, float] | None = None
    interval_level: float | None = None

    @property
    def categorical(self) -> bool:
        return isinstance(self.value, str)

    def interval_text(self, short: bool = False) -> str | None:
        """``"25-37 years (80% interval)"`` (``short``: ``"25-37 (80%)"``), or ``None`` without an interval."""
        if self.interval is None:
            return None
        fmt = "{:.0f}" if self.name == "age" else "{:.1f}"
        lo, hi = fmt.format(self.interval[0]), fmt.format(self.interval[1])
        level = f"{100 * self.interval_level:.0f}%" if self.interval_level is not None else "?"
        if short:
            return f"{lo}-{hi} ({level})"
        return f"{lo}-{hi}{' ' + self.unit if self.unit else ''} ({level} interval)"

    def to_dict(self, with_distribution: bool = False, exact: bool = False) -> dict[str, Any]:
        """Plain JSON dict; numbers rounded for reading unless ``exact``."""
        r = (lambda v, n: float(v)) if exact else (lambda v, n: round(float(v), n))
        d: dict[str, Any] = {"value": self.value if self.categorical else r(self.value, 3),
                             "confidence": None if math.isnan(self.confidence) else r(self.confidence, 4),
                             "estimator": self.estimator}
        if self.unit:
            d["unit"] = self.unit
        if self.std is not None:
            d["std"] = r(self.std, 3)
        if self.tolerance is not None:
            d["tolerance"] = float(self.tolerance)
        if self.probabilities is not None:
            d["probabilities"] = {k: r(v, 4) for k, v in self.probabilities.items()}
        if self.interval is not None:
            d["interval"] = [r(self.interval[0], 3), r(self.interval[1], 3)]
            d["interval_level"] = self.interval_level
        if with_distribution and self.distribution is not None:
            d["distribution"] = {"support": [float(v) for v in self.distribution[0]],
                                 "probabilities": [float(v) for v in self.distribution[1]]}
        return d

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> Trait:
        dist = d.get("distribution")
        return cls(
            name=name, value=d["value"] if isinstance(d["value"], str) else float(d["value"]),
            confidence=math.nan if d.get("confidence") is None else float(d["confidence"]), estimator=str(d.get("estimator", "")), unit=str(d.get("unit", "")),
            std=None if d.get("std") is None else float(d["std"]),
            tolerance=None if d.get("tolerance") is None else float(d["tolerance"]),
            probabilities=None if d.get("probabilities") is None else {k: float(v) for k, v in d["probabilities"].items()},
            distribution=None if dist is None else (tuple(float(v) for v in dist["support"]),
                                                    tuple(float(v) for v in dist["probabilities"])),
            interval=None if d.get("interval") is None else (float(d["interval"][0]), float(d["interval"][1])),
            interval_level=None if d.get("interval_level") is None else float(d["interval_level"]),
        )


@dataclass(frozen=True)
class FaceTraits:
    """The traits of one face: ``traits[name] -> Trait``, with the face they were estimated from."""

    traits: Mapping[str, Trait]
    face: DetectedFace | None = None
    source: str | None = None

    def __getitem__(self, name: str) -> Trait:
        try:
            return self.traits[name]
        except KeyError:
            raise ModelNotFoundError(
                f"trait {name!r} was not estimated for {self.source or 'this face'} (have: {sorted(self.traits)})"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.traits

    def get(self, name: str) -> Trait | None:
        return self.traits.get(name)

    def merged(self, other: FaceTraits) -> FaceTraits:
        """These traits plus ``other``'s (``other`` wins on a name both have)."""
        return FaceTraits({**self.traits, **other.traits}, self.face or other.face, self.source or other.source)

    def to_dict(self, with_distribution: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"source": self.source,
                             "traits": {k: t.to_dict(with_distribution) for k, t in self.traits.items()}}
        if self.face is not None:
            d["face"] = self.face.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FaceTraits:
        return cls({k: Trait.from_dict(k, v) for k, v in d["traits"].items()},
                   None if d.get("face") is None else DetectedFace.from_dict(d["face"]), d.get("source"))


class TraitEstimator(ABC):
    """Estimates soft-biometric traits of the faces of a photo.

    Subclasses set ``name`` (the registered name) and ``traits`` (the names they produce) and
    implement :meth:`estimate`. :meth:`settings` must change whenever the outputs could change
    (model file digest, preprocessing, tolerances): it keys the on-disk trait cache.
    """

    name: str = ""
    traits: tuple[str, ...] = ()
    reference: str = ""
    license: str = ""

    @abstractmethod
    def estimate(self, photo: np.ndarray, faces: Sequence[DetectedFace], source: str | None = None) -> list[FaceTraits]:
        """Traits of each face of ``photo``.

        Args:
            photo: ``(H, W, 3)`` uint8 RGB (see :func:`xaiface.io.load_image`).
            faces: detections in ``photo`` (with ``landmarks_dlib5`` where the estimator needs them).
            source: the photo's path or label, kept in the result and used in messages.

        Returns:
            One :class:`FaceTraits` per face, in order.
        """

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, traits={self.traits})"


# ---------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class EstimatorInfo:
    name: str
    factory: Callable[..., TraitEstimator]
    traits: tuple[str, ...]
    description: str
    needs_user_file: bool = False


#: the estimators' :class:`EstimatorInfo` by name; the built-ins are this package's modules
ESTIMATORS: Registry[EstimatorInfo] = Registry(
    "soft-biometric estimator",
    builtins=tuple(f"{__package__}.{m}" for m in ("body_mass", "dlib_age_gender", "external", "faceres_heads", "levi_hassner")))


def register_estimator(name: str, traits: Iterable[str], description: str,
                       needs_user_file: bool = False) -> Callable[[Callable[..., TraitEstimator]], Callable[..., TraitEstimator]]:
    """Decorator registering an estimator factory under ``name`` (a duplicate name: ConfigError)."""

    def deco(factory: Callable[..., TraitEstimator]) -> Callable[..., TraitEstimator]:
        ESTIMATORS.register(name, EstimatorInfo(name, factory, tuple(traits), description, needs_user_file))
        return factory

    return deco


def list_estimators(pattern: str = "*") -> list[str]:
    """Registered estimator names matching a shell-style ``pattern``."""
    return ESTIMATORS.list(pattern)


def estimator_info(name: str) -> EstimatorInfo:
    """An estimator's :class:`EstimatorInfo` (ModelNotFoundError naming the registered ones when unknown)."""
    return ESTIMATORS.get(name)


def get_estimator(name: str, **kwargs: Any) -> TraitEstimator:
    """Build the registered estimator ``name`` (keyword arguments go to its factory)."""
    return estimator_info(name).factory(**kwargs)


# ------------------------------------------------------------------------------------- helpers


def discrete_age_trait(value: float, support: Sequence[float], probabilities: Sequence[float], tolerance: float,
                       estimator: str) -> Trait:
    """The ``age`` trait of an estimate ``value`` under a discrete predictive distribution.

    ``std`` is the spread of the distribution around ``value`` and ``confidence`` the mass of the
    support points within ``tolerance`` of it (capped at 1), per the module's contract.
    """
    b = np.asarray(support, np.float64)
    p = np.asarray(probabilities, np.float64)
    v = float(value)
    std = float(np.sqrt(np.sum(p * (b - v) ** 2)))
    conf = min(1.0, float(p[np.abs(b - v) <= tolerance].sum()))
    return Trait("age", v, conf, estimator, unit="years", std=std, tolerance=tolerance,
                 distribution=(tuple(float(x) for x in b), tuple(float(x) for x in p)))


def gaussian_within(std: float, tolerance: float) -> float:
    """P(|X| <= tolerance) for X ~ N(0, std^2) (1.0 when ``std`` is 0)."""
    if std <= 0:
        return 1.0
    return float(math.erf(tolerance / (std * math.sqrt(2.0))))


def check_tolerances(tolerances: Mapping[str, float] | None) -> dict[str, float]:
    """``DEFAULT_TOLERANCES`` updated with ``tolerances`` (each must be > 0)."""
    out = dict(DEFAULT_TOLERANCES)
    for k, v in (tolerances or {}).items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ConfigError(f"tolerance for {k!r} must be a positive number, got {v!r}")
        out[k] = float(v)
    return out
