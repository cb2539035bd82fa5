"""``libf-ebm``: an interpretable-by-construction verifier, explained on eleven face patches.

A plug-in of the explainer registry (:func:`xaiface.explain.register_explainer`): the registry
imports this module by name on first look-up, so ``explain`` itself never imports ``libf``.

Not a post-hoc explanation of the deep model: the pair is decided by the LIBF-EBM verifier
(this package: heuristic patches -> BYOL patch embeddings -> 187-d LIBF per face -> an
Explainable Boosting Machine), whose logit is exactly the sum of per-term contributions plus an
intercept. Each term is given to the patches of its features (an interaction spanning two
patches gives half to each), and every patch region of **both** faces is painted with its
patch's contribution (logit units; one value per patch region, zero outside the patches) — the
visualisation D5.2 (section 3.4.2) plans: semi-transparent coloured regions, green for a
contribution towards a match, pink-red against it.

The maps are at the aligned crop's resolution: patches are cut from the crops the explainer is
given, with the landmarks in crop coordinates:

* an :class:`~xaiface.types.AlignedFace` from the pipeline carries its detection: the photo's
  five landmarks are mapped through ``AlignedFace.matrix`` (exact);
* a raw ``(S, S, 3)`` crop (no detection): dlib's HOG detector and 68-point predictor run on the
  crop itself (the face nearest its centre); when HOG finds nothing the predictor runs in a box
  covering the crop's central 80%. ``extra["landmarks_from"]`` says which was used.

The verdict reported is the EBM's: ``score`` is the match probability, ``threshold`` 0.5
(``threshold_name`` ``"p=0.5"``), a match when the logit is >= 0;
``extra`` holds the logit, intercept, per-patch and per-term contributions (each set sums with
the intercept to the logit), the visibility flags and the patch layout of each face.
The trained artefacts are those of ``xaiface train libf`` (``artefacts=``, else ``$XAIFACE_LIBF``,
else ``<cache>/libf``); the model of ``fold`` (default: the training report's ``default_fold``)
never saw that LFW fold's people.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..align import apply_affine
from ..errors import NoFaceError
from ..explain.base import Cost, Explainer, FacePair, MapResult, Verifier, register_explainer
from ..types import AlignedFace, PairVerdict

__all__ = ["LIBFEBMExplainer", "crop_landmarks", "patch_map"]


def crop_landmarks(face: AlignedFace) -> tuple[np.ndarray, str]:
    """Five landmarks of an aligned face in its crop's pixels, and where they came from."""
    det = face.face
    if det is not None and det.landmarks is not None and np.all(np.isfinite(det.landmarks)):
        return apply_affine(face.matrix, det.landmarks), "photo landmarks mapped through AlignedFace.matrix"
    from ..detect import get_detector
    from ..detect.base import select_faces

    hog = get_detector("dlib-hog")
    img = np.ascontiguousarray(face.image)
    try:
        f = select_faces(hog.detect(img), img.shape, "center")[0]
        return np.asarray(f.landmarks, dtype=np.float64), "dlib HOG + 68-point predictor on the crop"
    except NoFaceError:
        s = img.shape[0]
        f = hog.face_in_box(img, np.array([0.1 * s, 0.1 * s, 0.9 * s, 0.9 * s]))  # type: ignore[attr-defined]
        return np.asarray(f.landmarks, dtype=np.float64), "dlib 68-point predictor in the crop's central 80% (no detection)"


def patch_map(values: np.ndarray, layout: Any, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` float32 map holding ``values[j]`` on patch ``j``'s region and 0 elsewhere."""
    from .patches import patch_label_map

    lab = patch_label_map(layout, shape)
    v = np.append(np.asarray(values, dtype=np.float32), np.float32(0.0))  # index -1 -> 0
    return v[lab]


@register_explainer("libf-ebm", "interpretable",
                    "XAIface D5.2 sections 3.1.1-3.4.2 (heuristic patches, BYOL, LIBF, InterpretML EBM)",
                    "per-patch contributions of the interpretable LIBF-EBM verifier on 11 face patches")
class LIBFEBMExplainer(Explainer):
    """Args: artefacts (training folder), fold (1..10), encoding (``"patch-cosine"``, ``"symmetric"`` or
    ``"concat"``; default: the first of them the folder holds), model (an already loaded
    :class:`~xaiface.libf.LIBFModel`, instead of the three others)."""

    def __init__(self, verifier: Verifier | Any = "dlib-resnet", artefacts: Any = None, fold: int | None = None,
                 encoding: str | None = None, model: Any = None):
        from .model import LIBFModel

        super().__init__(verifier)
        self.model = model if model is not None else LIBFModel.load(artefacts, fold, encoding)
        self.params = {"artefacts": str(self.model.root) if self.model.root else None, "fold": self.model.fold,
                       "encoding": self.model.encoding, "patch_size": self.model.patch_size,
                       "trained_on_geometry": self.model.geometry}

    def _explain_faces(self, pair: FacePair, which: tuple[int, ...], cost: Cost) -> MapResult:
        from .patches import PATCH_NAMES

        faces = (pair.a, pair.b)
        lms = [crop_landmarks(f) for f in faces]
        local, patches = self.model.explain(pair.a.image, lms[0][0], pair.b.image, lms[1][0])
        c = np.array([local["patches"][n] for n in PATCH_NAMES])
        comb = tuple(patch_map(c, patches[i].layout, faces[i].image.shape[:2]) if i in which else None for i in (0, 1))
        top = dict(list(local["terms"].items())[:10])
        extra = {
            "verifier": "LIBF-EBM (score = match probability, threshold 0.5)",
            "logit": local["logit"], "probability": local["probability"], "intercept": local["intercept"],
            "patch_contributions": local["patches"], "top_terms": top, "terms": local["terms"],
            "visible": [[bool(v) for v in p.visible] for p in patches],
            "layout": [p.layout.to_dict() for p in patches],
            "landmarks_from": [how for _, how in lms],
            "geometry": [f.geometry for f in faces],
            "n_forward_note": "n_forward counts patches through the BYOL encoder",
        }
        if self.model.geometry and any(f.geometry != self.model.geometry for f in faces):
            extra["geometry_note"] = (f"model trained on patches of {self.model.geometry} crops; patch geometry is "
                                      "landmark-relative, but parts of a patch outside a tighter crop count as not visible")
        cost.n_forward += 22  # 11 patches of each face through the BYOL encoder
        verdict = PairVerdict(
            similarity=float(local["probability"]), threshold=0.5, match=bool(local["logit"] >= 0),
            model=f"libf-ebm-{self.model.encoding}-fold{self.model.fold}", threshold_name="p=0.5",
            faces=(pair.a.face, pair.b.face), sources=(pair.a.source, pair.b.source),
        )
        return MapResult(comb, verdict=verdict, extra=extra)  # type: ignore[arg-type]
