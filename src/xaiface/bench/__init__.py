"""Benchmarks of explanation maps: Patch-LFW (Huber et al., WACV 2024) and its protocols.

* :func:`generate_patch_lfw` / :class:`PatchLFW`: the data set (LFW View 2 with planted patches);
* :func:`run_patch_lfw`: Table 1, Decision-based Patch Replacement (DPR), deletion / insertion
  and localisation of the planted patches, stored per pair in SQLite and resumable;
* :mod:`.protocol`: the protocols' maths on plain arrays; :class:`PairScorer`: the batched
  replace-and-score stage.
"""
from __future__ import annotations

from .._plugins import lazy_exports

#: public names and the submodule defining each, imported on first use (the command line
#: imports this package for its sub-commands; nothing heavy is loaded until a name is used)
_EXPORTS = {
    "N_PATCHES": ".patch_lfw",
    "PatchFold": ".patch_lfw",
    "PatchLFW": ".patch_lfw",
    "PatchPair": ".patch_lfw",
    "generate_patch_lfw": ".patch_lfw",
    "pair_slots": ".patch_lfw",
    "patch_plan": ".patch_lfw",
    "patch_positions": ".patch_lfw",
    "patch_size_for": ".patch_lfw",
    "plant_patches": ".patch_lfw",
    "select_pairs": ".patch_lfw",
    "DELETION_PERCENTS": ".protocol",
    "DPR_PERCENTS": ".protocol",
    "accuracy": ".protocol",
    "curve_auc": ".protocol",
    "dpr_masks": ".protocol",
    "error_rates": ".protocol",
    "label_evidence": ".protocol",
    "patch_evidence": ".protocol",
    "pixel_auroc": ".protocol",
    "pointing_game": ".protocol",
    "ranked_masks": ".protocol",
    "DEFAULT_METHODS": ".runner",
    "dataset_embeddings": ".runner",
    "run_patch_lfw": ".runner",
    "selection_tag": ".runner",
    "table1": ".runner",
    "PairScorer": ".scoring",
    "ScoredPair": ".scoring",
    "PairResult": ".store",
    "ResultStore": ".store",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
