"""Decision thresholds: the calibrated ones shipped as data (``models/data/<model>.thresholds.json``)
and the one check every threshold a user gives goes through (:func:`check_threshold`)."""
from __future__ import annotations

import json
import math
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


def resolve_threshold(spec: Any, threshold: str | float, calibration: str = "plain") -> tuple[str, float]:
    """A threshold as given by a user -> ``(name, value)``, checked by :func:`check_threshold`.

    Args:
        spec: the model's :class:`~xaiface.models.base.ModelSpec` (its ``name`` and ``thresholds``).
        threshold: a number (name ``"user"``), a number as text (named by that text), or the
            name of one of the model's calibrated thresholds (``"eer"``, ``"fmr=1e-2"``...).
        calibration: ``"plain"`` or ``"flip"``: which embeddings the calibration is for.
    Raises:
        ConfigError: an unknown name, or a value that is not a finite number in [-1, 1].
    """
    if isinstance(threshold, Real) and not isinstance(threshold, bool):
        return "user", check_threshold(threshold)
    if isinstance(threshold, str):
        try:
            number = float(threshold)
        except ValueError:
            pass
        else:
            return threshold, check_threshold(number, f"threshold {threshold!r}")
    cal = spec.thresholds.get(calibration, {})
    if not isinstance(threshold, str) or threshold not in cal:
        raise ConfigError(f"model {spec.name} has no calibrated {threshold!r} threshold for {calibration} embeddings "
                          f"(known: {sorted(cal) or 'none'}); pass a number, or calibrate with `xaiface eval lfw`")
    return threshold, check_threshold(cal[threshold], f"model {spec.name}'s calibrated {threshold!r} threshold")
