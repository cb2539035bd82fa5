"""Interpretable verification: face patches -> BYOL patch embeddings (LIBF) -> an EBM (XAIface D5.2).

Stages, one module each:

* :mod:`.patches`: eleven heuristic face patches from five landmarks, with visibility flags;
* :mod:`.byol`: the self-supervised patch encoder (16-d) and its resumable training;
* :mod:`.distill`: the same encoder trained to predict the deep model's identity code from every patch;
* :mod:`.features`: LIBF vectors (187-d per face) and the pair encodings (374-d, or 11 per-patch cosines);
* :mod:`.ebm`: :class:`LIBFVerifier`, the Explainable Boosting Machine, with global and local
  explanations as data;
* :mod:`.data`, :mod:`.train`: LFW patches and the fold-wise training (``xaiface train libf``);
* :mod:`.model`: :class:`LIBFModel`, a trained model loaded for verification and explanation
  (the ``libf-ebm`` explainer of :mod:`.explainer`, a plug-in of the explainer registry, uses it);
* :mod:`.figures`, :mod:`.evaluate`: figures (``xaiface eval libf``).
"""
from __future__ import annotations

from .._plugins import lazy_exports

#: public names and the submodule defining each, imported on first use (the command line
#: imports this package for its sub-commands; nothing heavy is loaded until a name is used)
_EXPORTS = {
    ".byol": ("BYOL", "BYOLConfig", "PatchEncoder", "load_checkpoint", "train_byol"),
    ".distill": ("DistillConfig", "train_distilled"),
    ".ebm": ("LIBFVerifier",),
    ".explainer": ("LIBFEBMExplainer",),
    ".features": (
        "LIBFEncoder", "LIBF_DIM", "PAIR_ENCODINGS", "libf_feature_names", "libf_from_embeddings",
        "pair_feature_names", "pair_features"
    ),
    ".model": ("LIBFModel", "default_artefacts"),
    ".patches": (
        "FacePatches", "N_PATCHES", "PATCH_NAMES", "PatchLayout", "draw_patches", "extract_patches",
        "patch_label_map", "patch_layout"
    ),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
