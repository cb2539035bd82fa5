"""Benchmarks of explanation maps: Patch-LFW (Huber et al., WACV 2024) and its protocols.

* :func:`generate_patch_lfw` / :class:`PatchLFW`: the data set (LFW View 2 with planted patches);
* :func:`run_patch_lfw`: Table 1, Decision-based Patch Replacement (DPR), deletion / insertion
  and localisation of the planted patches, stored per pair in SQLite and resumable;
* :mod:`.protocol`: the protocols' maths on plain arrays; :class:`PairScorer`: the batched
  replace-and-score stage.
"""
from __future__ import annotations

from .patch_lfw import (  # noqa: F401
    N_PATCHES, PatchFold, PatchLFW, PatchPair, generate_patch_lfw, pair_slots, patch_plan, patch_positions, patch_size_for,
    plant_patches,
    select_pairs,
)
from .protocol import (  # noqa: F401
    DELETION_PERCENTS, DPR_PERCENTS, accuracy, curve_auc, dpr_masks, error_rates, label_evidence, patch_evidence,
    pixel_auroc, pointing_game, ranked_masks,
)
from .runner import DEFAULT_METHODS, dataset_embeddings, run_patch_lfw, selection_tag, table1  # noqa: F401
from .scoring import PairScorer, ScoredPair  # noqa: F401
from .store import PairResult, ResultStore  # noqa: F401
