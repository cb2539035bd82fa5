"""The verification pipeline and the batch face stage.

* :class:`FacePipeline` (:mod:`.face_pipeline`): image in -> detect -> align -> embed -> compare,
  one pair at a time, answering ``verify(a, b)`` with a :class:`~xaiface.types.PairVerdict`;
* :mod:`.batch`: the one batch face stage every data-set run uses (photos -> located faces ->
  aligned crops -> embeddings, one fallback and one failure policy, mirror-averaging);
* :mod:`.store`: its resumable per-face result store.
"""
from __future__ import annotations

from .._plugins import lazy_exports

#: public names and the submodule defining each, imported on first use (``.face_pipeline`` loads torch)
_EXPORTS = {
    "FacePipeline": ".face_pipeline",
    "FALLBACKS": ".batch",
    "FaceBatch": ".batch",
    "FaceEmbeddings": ".batch",
    "LocatedFace": ".batch",
    "align_faces": ".batch",
    "embed_crops": ".batch",
    "embed_faces": ".batch",
    "locate_faces": ".batch",
    "locate_in_image": ".batch",
    "mirror_average": ".batch",
    "model_digest": ".batch",
    "ResultStore": ".store",
    "open_store": ".store",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
