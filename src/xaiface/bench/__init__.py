"""Benchmarks of explanation maps: Patch-LFW (Huber et al., WACV 2024) and its protocols.

* :func:`generate_patch_lfw` / :class:`PatchLFW`: the data set (LFW View 2 with planted patches),
  generated on demand (only the pairs asked for, extended later);
* :func:`run_patch_lfw`: Table 1, Decision-based Patch Replacement (DPR), deletion / insertion
  and localisation of the planted patches, stored per pair in SQLite and resumable;
* :mod:`.protocol`: the protocols' maths on plain arrays; :class:`PairScorer`: the batched
  replace-and-score stage;
* :func:`bench_status`: what a benchmark folder holds and what is missing (``xaiface bench status``).
"""
from __future__ import annotations

from .._plugins import lazy_exports

#: public names and the submodule defining each, imported on first use (the command line
#: imports this package for its sub-commands; nothing heavy is loaded until a name is used)
_EXPORTS = {
    ".patch_lfw": (
        "N_PATCHES", "PatchChunk", "PatchFold", "PatchLFW", "PatchPair", "PatchPlan", "fallback_box_for",
        "generate_patch_lfw", "pair_slots", "patch_plan", "patch_positions", "patch_size_for", "plant_patches",
        "recipe_sha256", "reference_plans", "select_pairs"
    ),
    ".protocol": (
        "DELETION_PERCENTS", "DPR_PERCENTS", "REFERENCE_FRACTIONS", "accuracy", "bound_index", "curve_auc", "dpr_masks",
        "error_rates", "label_evidence", "patch_evidence", "pixel_auroc", "pointing_game", "ranked_masks",
        "reference_fraction", "step_count"
    ),
    ".runner": (
        "DEFAULT_METHODS", "PairJob", "PairTask", "REFERENCE_RANDOM_SEED", "dataset_dir_for", "dataset_embeddings",
        "decision_threshold", "dpr_rule_for", "embeddings_path", "evaluate_task", "nested_order", "patch_lfw_for_run",
        "run_patch_lfw", "selection_tag", "table1"
    ),
    ".scoring": ("PairScorer", "ScoredPair"),
    ".status": ("BenchStatus", "STANDARD_SUBSETS", "bench_status", "subset_pairs", "view2_layout"),
    ".store": ("PairResult", "ResultStore", "StoredRun", "read_runs"),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
