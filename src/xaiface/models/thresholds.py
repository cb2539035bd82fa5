"""Decision thresholds: the calibrated ones shipped as data (``models/data/<model>.thresholds.json``),
the one check every threshold a user gives goes through (:func:`check_threshold`), and the
operating point a threshold resolves to (:class:`OperatingPoint`, :func:`operating_point`; also
``ModelSpec.operating_point`` and ``ModelSpec.threshold``)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from numbers import Real
from pathlib import Path
from typing import Any

from ..errors import ConfigError

_DATA = Path(__file__).parent / "data"

#: The range of the score every registered model is compared with (cosine similarity).
SCORE_RANGE = (-1.0, 1.0)


def thresholds_path(model: str) -> Path:
    return _DATA / f"{model}.thresholds.json"


def packaged_thresholds(model: str) -> dict[str, Any]:
    """The model's packaged calibration (empty dict when none has been shipped yet)."""
    p = thresholds_path(model)
    if not p.is_file():
        return {}
    return json.loads(p.read_text())


def check_threshold(value: Any, what: str = "threshold") -> float:
    """``value`` as a float, when it is a finite number within :data:`SCORE_RANGE`.

    Args:
        value: the threshold (a real number; bools are refused).
        what: how to name it in the message.
    Raises:
        ConfigError: NaN, infinite, outside [-1, 1], or not a number (the message names the value).
    """
    lo, hi = SCORE_RANGE
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"{what} must be a number in [{lo:g}, {hi:g}] (cosine similarity), got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ConfigError(f"{what} must be a finite number in [{lo:g}, {hi:g}] (cosine similarity), got {value!r}")
    return v


@dataclass(frozen=True)
class OperatingPoint:
    """A decision threshold and where it comes from (``score >= value`` is a match).

    Attributes:
        name: the calibrated threshold's name (``"eer"``, ``"fmr=1e-2"``, ``"fmr=1e-3"``),
            ``"user"`` for a number, or the text of a number given as text (``"0.9"``).
        value: cosine similarity in [-1, 1].
        flip: the embeddings it is for: mirror-averaged (True) or plain (False).
        calibrated: True when it is one of the model's calibrated thresholds.
    """

    name: str
    value: float
    flip: bool = False
    calibrated: bool = False

    @property
    def calibration(self) -> str:
        """``"flip"`` or ``"plain"``: the key of the model's calibration it is (or would be) read from."""
        return "flip" if self.flip else "plain"


class WithOperatingPoint:
    """Mixin of the objects that decide (pipeline, verifier): ``threshold`` and ``threshold_name``
    read from their ``operating_point``."""

    operating_point: OperatingPoint

    @property
    def threshold(self) -> float:
        return self.operating_point.value

    @property
    def threshold_name(self) -> str:
        return self.operating_point.name

    @threshold_name.setter
    def threshold_name(self, name: str) -> None:  # for callers that relabel a number; pass an OperatingPoint instead
        self.operating_point = replace(self.operating_point, name=name)


def operating_point(spec: Any, threshold: str | float | OperatingPoint = "eer", flip: bool = False) -> OperatingPoint:
    """A threshold as given by a user -> the :class:`OperatingPoint`, checked by :func:`check_threshold`.

    Args:
        spec: the model's :class:`~xaiface.models.spec.ModelSpec` (its ``name`` and ``thresholds``).
        threshold: the name of one of the model's calibrated thresholds (``"eer"``, ``"fmr=1e-2"``...),
            a number (name ``"user"``), a number as text (named by that text), or an
            :class:`OperatingPoint` (e.g. a pipeline's, for a :class:`~xaiface.explain.Verifier`).
        flip: which embeddings the threshold is for (mirror-averaged or plain).
    Raises:
        ConfigError: an unknown name, a value that is not a finite number in [-1, 1], or a
            calibrated operating point for the other kind of embeddings.
    """
    calibration = "flip" if flip else "plain"
    if isinstance(threshold, OperatingPoint):
        if threshold.calibrated and threshold.flip != bool(flip):
            raise ConfigError(f"the {threshold.name!r} threshold {threshold.value:.6g} is calibrated for "
                              f"{threshold.calibration} embeddings; these are {calibration}")
        return replace(threshold, value=check_threshold(threshold.value, f"threshold {threshold.name!r}"), flip=bool(flip))
    if isinstance(threshold, Real) and not isinstance(threshold, bool):
        return OperatingPoint("user", check_threshold(threshold), bool(flip))
    if isinstance(threshold, str):
        try:
            number = float(threshold)
        except ValueError:
            pass
        else:
            return OperatingPoint(threshold, check_threshold(number, f"threshold {threshold!r}"), bool(flip))
    cal = spec.thresholds.get(calibration, {})
    if not isinstance(threshold, str) or threshold not in cal:
        raise ConfigError(f"model {spec.name} has no calibrated {threshold!r} threshold for {calibration} embeddings "
                          f"(known: {sorted(cal) or 'none'}); pass a number, or calibrate with `xaiface eval lfw`")
    value = check_threshold(cal[threshold], f"model {spec.name}'s calibrated {threshold!r} threshold")
    return OperatingPoint(threshold, value, bool(flip), calibrated=True)


def resolve_threshold(spec: Any, threshold: str | float, calibration: str = "plain") -> tuple[str, float]:
    """``(name, value)`` of :func:`operating_point` (``calibration``: ``"plain"`` or ``"flip"``).

    Raises:
        ConfigError: as :func:`operating_point`, or another ``calibration``.
    """
    if calibration not in ("plain", "flip"):
        raise ConfigError(f"calibration must be 'plain' or 'flip', got {calibration!r}")
    op = operating_point(spec, threshold, flip=calibration == "flip")
    return op.name, op.value
