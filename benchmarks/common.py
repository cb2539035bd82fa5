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
    import dlib

    from xaiface.datasets import LFW
    from xaiface.io import load_image
    from xaiface.models.dlib_resnet import dlib_model_path

    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))
    chips = []
    for p in LFW(data).pairs():
        img = load_image(p.path_a)
        r = det(img, 1)
        if len(r):
            chips.append(dlib.get_face_chip(img, sp(img, r[0]), size=150, padding=0.25))
        if len(chips) == n:
            break
    return np.stack(chips)
