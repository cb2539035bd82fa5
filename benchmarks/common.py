"""Helpers shared by the benchmarks: timing and real LFW chips."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np


def time_it(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> list[float]:
    """Wall times (s) of ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def lfw_dlib_chips(n: int, data: str | None = None) -> np.ndarray:
    """``(n, 150, 150, 3)`` dlib chips (dlib's own detector, 5-point shape and get_face_chip) of LFW photos."""
    from xaiface.datasets import LFW
    from xaiface.models.dlib_resnet import dlib_reference_chips

    return dlib_reference_chips((p.path_a for p in LFW(data).pairs()), n)
