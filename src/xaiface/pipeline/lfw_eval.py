"""``xaiface eval lfw``: the LFW View 2 protocol for a whole pipeline.

Steps: detect every face of the 12,000 pair images (cached on disk), pick one face per photo,
align, embed, score the 6,000 pairs by cosine similarity, run the 10-fold protocol, and write
JSON, plots and (optionally) the model's calibrated thresholds.

Choices measured in the same run, because each is worth something on LFW's deep-funneled
copy (reported in ``report.json`` under ``variants``):

* face selection: ``center`` (the face nearest the photo centre: LFW photos are centred on the
  labelled person) or ``largest`` (the library default for arbitrary photos);
* ``flip``: each embedding is the normalised sum of the crop's and its mirror image's.

Faces are located and embedded by the batch face stage (:mod:`xaiface.pipeline.batch`). Photos
with no detected face are not dropped: they use its documented fallback, the median box of the
faces selected in the other photos of the run, with landmarks from the shape predictors inside
it (their number is reported).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import LFW
from ..errors import ConfigError
from ..detect.base import get_detector
from ..detect.cache import DetectionCache
from ..models.registry import get_model
from ..models.thresholds import thresholds_path
from .batch import FaceEmbeddings, embed_faces, locate_faces
from ..verify.metrics import calibrate
from ..verify.similarity import pair_similarity
from ..verify.protocol import lfw_protocol


def run_lfw_eval(out_dir: str | os.PathLike, *, model: str = "dlib-resnet", weights: Any = None,
                 detector: str = "dlib-hog", detector_kwargs: dict[str, Any] | None = None,
                 select: str = "center", flip: bool = True, data: str | os.PathLike | None = None,
                 cache: str | os.PathLike | None | bool = True, workers: int | None = None,
                 folds: list[int] | None = None, pairs_per_fold: int | None = None, write_thresholds: bool = False,
                 progress: bool = True, executor: Any = None, scheduler: str | None = None) -> dict[str, Any]:
    """Run the protocol; returns the report dict (also written to ``out_dir/report.json``).

    Args:
        folds: 0-based folds to keep (default all ten).
        pairs_per_fold: keep only the first ``k/2`` genuine and ``k/2`` impostor pairs of each
            fold (quick runs and tests); default all 600.
        write_thresholds: store the calibration as the model's packaged thresholds.
        workers, executor, scheduler: where detection runs (:func:`xaiface.pipeline.batch.locate_faces`).
    """
    from ..verify.plots import plot_det, plot_roc, plot_score_histograms

    t0 = time.perf_counter()
    lfw = LFW(data)
    pairs = lfw.pairs(folds=folds, per_fold=pairs_per_fold)
    if len({p.fold for p in pairs}) < 2:  # checked before any detection
        raise ConfigError(f"the LFW protocol calibrates each fold's threshold on the other folds: it needs at least "
                          f"2 folds (e.g. --folds 1,2), got folds {sorted({p.fold + 1 for p in pairs})}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted({str(p.path_a) for p in pairs} | {str(p.path_b) for p in pairs})
    fr = get_model(model, weights=weights)
    det_kwargs = detector_kwargs or {}
    det_cache = None if cache is False else DetectionCache(None if cache is True or cache is None else cache)

    t_det = time.perf_counter()
    # one face per photo for each strategy; photos without a face share the median-box fallback of `select`
    located = locate_faces(paths, detector=detector, detector_kwargs=det_kwargs, select=select, fallback="median",
                           cache=det_cache, workers=workers, executor=executor, scheduler=scheduler,
                           progress=progress).require_all("LFW images")
    t_det = time.perf_counter() - t_det
    chosen = {s: located if s == select else located.reselect(s) for s in ("center", "largest")}
    no_face = sorted(located.no_face)
    fallback_box = located.fallback_box

    # embeddings: "largest" differs from "center" only where a photo has several faces
    t_emb = time.perf_counter()
    center = embed_faces(fr, {p: chosen["center"].faces[p] for p in paths}, store=False, batch_size=64,
                         progress=progress, desc="embed (center)").require_all("LFW images")
    differ = [p for p in paths if not np.array_equal(chosen["largest"].faces[p].box, chosen["center"].faces[p].box)]
    largest = FaceEmbeddings(dict(center.plain), dict(center.mirrored))
    largest.update(embed_faces(fr, {p: chosen["largest"].faces[p] for p in differ}, store=False, batch_size=64,
                               progress=progress, desc="embed (largest, differing)").require_all("LFW images"))
    emb = {"center": center, "largest": largest}
    t_emb = time.perf_counter() - t_emb

    labels = np.array([p.same for p in pairs], dtype=int)
    fold_ids = np.array([p.fold for p in pairs])
    variants: dict[str, Any] = {}
    scores_by: dict[str, np.ndarray] = {}
    for strategy in ("center", "largest"):
        for use_flip in (False, True):
            a = emb[strategy].vectors([str(p.path_a) for p in pairs], use_flip)
            b = emb[strategy].vectors([str(p.path_b) for p in pairs], use_flip)
            s = pair_similarity(a, b)
            name = f"select={strategy},flip={'on' if use_flip else 'off'}"
            scores_by[name] = s
            rep = lfw_protocol(s, labels, fold_ids)
            variants[name] = rep.to_dict()
    main = f"select={select},flip={'on' if flip else 'off'}"
    main_rep = lfw_protocol(scores_by[main], labels, fold_ids)

    np.savez_compressed(out / "scores.npz", labels=labels, folds=fold_ids, **{k.replace("=", "_").replace(",", "__"): v for k, v in scores_by.items()})
    plot_roc({k: (v, labels) for k, v in scores_by.items()}, out / "roc.png")
    plot_det({k: (v, labels) for k, v in scores_by.items()}, out / "det.png")
    plot_score_histograms(scores_by[main], labels, out / "scores.png", thresholds=main_rep.calibration.thresholds)

    report = {
        "model": fr.spec.name,
        "detector": detector,
        "detector_settings": get_detector(detector, **det_kwargs).settings(),
        "main_variant": main,
        "result": main_rep.to_dict(),
        "summary": main_rep.summary(),
        "variants": variants,
        "images": len(paths),
        "pairs": len(pairs),
        "images_without_detected_face": len(no_face),
        "no_face_images": [os.path.relpath(p, lfw.root) for p in no_face],
        "fallback": None if fallback_box is None else {
            "rule": "median box of the selected faces of the other photos; landmarks from the shape predictors inside it",
            "box": [float(v) for v in fallback_box],
        },
        "photos_with_several_faces": located.several_faces,
        "timing_s": {"detection": round(t_det, 1), "detections_computed": located.detections_computed,
                     "detections_from_cache": located.detections_cached, "embedding": round(t_emb, 1),
                     "total": round(time.perf_counter() - t0, 1)},
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    if write_thresholds:
        cal = {
            "plain": calibrate(scores_by[f"select={select},flip=off"], labels).thresholds,
            "flip": calibrate(scores_by[f"select={select},flip=on"], labels).thresholds,
            "eer_rate": {"plain": variants[f"select={select},flip=off"]["eer"], "flip": variants[f"select={select},flip=on"]["eer"]},
            "calibrated_on": f"LFW View 2 ({len(pairs)} pairs), detector {detector}, select={select}",
        }
        p = thresholds_path(fr.spec.name)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(cal, indent=2) + "\n")
        report["thresholds_written"] = str(p)
    return report

