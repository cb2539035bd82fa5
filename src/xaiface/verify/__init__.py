"""Verification maths: similarity, EER, thresholds at a FMR, the LFW protocol and plots.

A pair is a match when ``score >= threshold`` (scores are similarities, labels 1 = genuine).
"""
from __future__ import annotations

from .metrics import (
    Calibration, calibrate, cosine_similarity, eer, fmr_fnmr, fmr_key, pair_similarity, tar_at_far,
    threshold_at_fmr,
)
from .plots import plot_det, plot_roc, plot_score_histograms
from .protocol import ProtocolReport, best_accuracy_threshold, lfw_protocol

__all__ = [
    "Calibration", "ProtocolReport", "best_accuracy_threshold", "calibrate",
    "cosine_similarity", "eer", "fmr_fnmr", "fmr_key", "lfw_protocol", "pair_similarity", "plot_det", "plot_roc",
    "plot_score_histograms", "tar_at_far", "threshold_at_fmr",
]
