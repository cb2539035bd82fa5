"""Calibrated thresholds shipped as data (``models/data/<model>.thresholds.json``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_DATA = Path(__file__).parent / "data"


def thresholds_path(model: str) -> Path:
    return _DATA / f"{model}.thresholds.json"


def packaged_thresholds(model: str) -> dict[str, Any]:
    """The model's packaged calibration (empty dict when none has been shipped yet)."""
    p = thresholds_path(model)
    if not p.is_file():
        return {}
    return json.loads(p.read_text())
