"""Interpretable verification: face patches -> BYOL patch embeddings (LIBF) -> an EBM (XAIface D5.2).

Stages, one module each:

* :mod:`.patches`: eleven heuristic face patches from five landmarks, with visibility flags;
* :mod:`.byol`: the self-supervised patch encoder (16-d) and its resumable training;
* :mod:`.features`: LIBF vectors (187-d per face) and the 374-d pair encodings;
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
    "BYOL": ".byol",
    "BYOLConfig": ".byol",
    "PatchEncoder": ".byol",
    "load_checkpoint": ".byol",
    "train_byol": ".byol",
    "LIBFVerifier": ".ebm",
    "LIBFEBMExplainer": ".explainer",
    "LIBFEncoder": ".features",
    "LIBF_DIM": ".features",
    "PAIR_ENCODINGS": ".features",
    "libf_feature_names": ".features",
    "libf_from_embeddings": ".features",
    "pair_feature_names": ".features",
    "pair_features": ".features",
    "LIBFModel": ".model",
    "default_artefacts": ".model",
    "FacePatches": ".patches",
    "N_PATCHES": ".patches",
    "PATCH_NAMES": ".patches",
    "PatchLayout": ".patches",
    "draw_patches": ".patches",
    "extract_patches": ".patches",
    "patch_label_map": ".patches",
    "patch_layout": ".patches",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
