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
    ".face_pipeline": ("FacePipeline",),
    ".batch": (
        "FALLBACKS", "FaceBatch", "FaceEmbeddings", "LocatedFace", "align_faces", "embed_crops", "embed_faces",
        "locate_faces", "locate_in_image", "mirror_average", "model_digest"
    ),
    ".store": ("ResultStore", "open_store"),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
