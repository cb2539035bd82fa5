"""Verification maths: similarity, EER, thresholds at a FMR, the LFW protocol and plots.

A pair is a match when ``score >= threshold`` (scores are similarities, labels 1 = genuine).
Names are imported on first use, so that the verification path of the command line does not pay
for scikit-learn and matplotlib (:func:`pair_similarity` lives in the NumPy-only :mod:`.similarity`).
"""
from __future__ import annotations

from .._plugins import lazy_exports

_EXPORTS = {
    ".metrics": (
        "Calibration", "calibrate", "cosine_similarity", "eer", "fmr_fnmr", "fmr_key", "tar_at_far",
        "threshold_at_fmr"
    ),
    ".similarity": ("pair_similarity",),
    ".plots": ("plot_det", "plot_roc", "plot_score_histograms"),
    ".protocol": ("ProtocolReport", "best_accuracy_threshold", "lfw_protocol"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
