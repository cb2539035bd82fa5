"""Verification maths: similarity, EER, thresholds at a FMR, the LFW protocol and plots.

A pair is a match when ``score >= threshold`` (scores are similarities, labels 1 = genuine).
Names are imported on first use, so that the verification path of the command line does not pay
for scikit-learn and matplotlib (:func:`pair_similarity` lives in the NumPy-only :mod:`.similarity`).
"""
from __future__ import annotations

from .._plugins import lazy_exports

_EXPORTS = {
    "Calibration": ".metrics", "calibrate": ".metrics", "cosine_similarity": ".metrics", "eer": ".metrics",
    "fmr_fnmr": ".metrics", "fmr_key": ".metrics", "tar_at_far": ".metrics", "threshold_at_fmr": ".metrics",
    "pair_similarity": ".similarity",
    "plot_det": ".plots", "plot_roc": ".plots", "plot_score_histograms": ".plots",
    "ProtocolReport": ".protocol", "best_accuracy_threshold": ".protocol", "lfw_protocol": ".protocol",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
