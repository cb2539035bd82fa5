"""Explanation maps for a face pair, under one contract (see :mod:`.base`)."""
from __future__ import annotations

from .base import (  # noqa: F401
    Cost, Explainer, ExplainerInfo, FacePair, GradientExplainer, MapResult, PairExplanation, PerturbationExplainer,
    Verifier, as_aligned, as_pair, explainer_info, gaussian_blur2d, get_explainer, list_explainers,
    register_explainer, split_signed,
)
from .run import ExplainRun, explain_photos  # noqa: F401
