"""Many photos at once: every estimator's traits of one face per photo, cached by content.

Faces are located and embedded by the one batch face stage (:mod:`xaiface.pipeline.batch`:
:func:`~xaiface.pipeline.batch.locate_faces`, :func:`~xaiface.pipeline.batch.embed_faces`,
re-exported here); :func:`estimate_traits` adds every estimator's traits of those faces. Results
are kept in the stage's :class:`~xaiface.pipeline.store.ResultStore` keyed by pixel content, face
and producer settings, written as they go (an interrupted run resumes where it stopped), with
progress bars. A photo that fails is recorded with its message; the run goes on.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..errors import XaifaceError
from ..io import array_sha256, load_image
from ..pipeline.batch import FaceBatch, FaceEmbeddings, embed_faces, locate_faces, model_digest
from ..pipeline.store import ResultStore, open_store, result_key
from ..types import DetectedFace
from .traits import FaceTraits, Trait, TraitEstimator

__all__ = ["FaceBatch", "FaceEmbeddings", "embed_faces", "estimate_traits", "locate_faces", "model_digest"]


# ---------------------------------------------------------------------------------- traits


def estimate_traits(estimators: Sequence[TraitEstimator], faces: Mapping[str, DetectedFace], *, store: Any = True,
                    progress: bool = True, desc: str = "traits") -> tuple[dict[str, FaceTraits], dict[str, str]]:
    """Every estimator's traits of one face per photo, through the store.

    Returns:
        ``(traits, errors)``: photo -> merged :class:`FaceTraits`, photo -> message for failures.
    """
    from tqdm import tqdm

    st: ResultStore = open_store(store)
    out: dict[str, FaceTraits] = {}
    errors: dict[str, str] = {}
    settings = [est.settings() for est in estimators]
    for p, face in tqdm(list(faces.items()), desc=desc, unit="img", disable=not progress):
        try:
            img = load_image(p)
            sha = array_sha256(img)
            merged: FaceTraits | None = None
            for est, s in zip(estimators, settings):
                k = result_key(sha, face, {"kind": "traits", **s})
                doc = st.get_json(k)
                if doc is None:
                    ft = est.estimate(img, [face], source=p)[0]
                    st.put_json(k, {k2: t.to_dict(with_distribution=True, exact=True) for k2, t in ft.traits.items()})
                else:
                    ft = FaceTraits({k2: Trait.from_dict(k2, v) for k2, v in doc.items()}, face, p)
                merged = ft if merged is None else merged.merged(ft)
            if merged is not None:
                out[p] = FaceTraits(merged.traits, face, p)
        except XaifaceError as e:
            errors[p] = str(e)
    return out, errors
