"""Interpretable verification: face patches -> BYOL patch embeddings (LIBF) -> an EBM (XAIface D5.2).

Stages, one module each:

* :mod:`.patches`: eleven heuristic face patches from five landmarks, with visibility flags;
* :mod:`.byol`: the self-supervised patch encoder (16-d) and its resumable training;
* :mod:`.features`: LIBF vectors (187-d per face) and the 374-d pair encodings;
* :mod:`.ebm`: :class:`LIBFVerifier`, the Explainable Boosting Machine, with global and local
  explanations as data;
* :mod:`.data`, :mod:`.train`: LFW patches and the fold-wise training (``xaiface train libf``);
* :mod:`.model`: :class:`LIBFModel`, a trained model loaded for verification and explanation
  (the ``libf-ebm`` explainer of :mod:`xaiface.explain.libf_ebm` uses it);
* :mod:`.figures`, :mod:`.evaluate`: figures (``xaiface eval libf``).
"""
from __future__ import annotations

from .byol import BYOL, BYOLConfig, PatchEncoder, load_checkpoint, train_byol  # noqa: F401
from .ebm import LIBFVerifier  # noqa: F401
from .features import (  # noqa: F401
    LIBF_DIM, PAIR_ENCODINGS, LIBFEncoder, libf_feature_names, libf_from_embeddings, pair_feature_names, pair_features,
)
from .model import LIBFModel, default_artefacts  # noqa: F401
from .patches import (  # noqa: F401
    N_PATCHES, PATCH_NAMES, FacePatches, PatchLayout, draw_patches, extract_patches, patch_label_map, patch_layout,
)
