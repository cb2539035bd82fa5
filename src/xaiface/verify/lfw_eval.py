"""``xaiface eval lfw``: the LFW View 2 protocol for a whole pipeline.

Steps: detect every face of the 12,000 pair images (cached on disk), pick one face per photo,
align, embed, score the 6,000 pairs by cosine similarity, run the 10-fold protocol, and write
JSON, plots and (optionally) the model's calibrated thresholds.

Choices measured in the same run, because each is worth something on LFW's deep-funneled
copy (reported in ``report.json`` under ``variants``):

* face selection: ``center`` (the face nearest the photo centre: LFW photos are centred on the
  labelled person) or ``largest`` (the library default for arbitrary photos);
* ``flip``: each embedding is the normalised sum of the crop's and its mirror image's.

Photos with no detected face are not dropped: they use a documented fallback, the median box of
the faces selected in the other photos of the run, with landmarks from the shape predictors
inside it (their number is reported).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..align import align_face
from ..datasets import LFW, first_pairs_per_fold
from ..detect.base import get_detector, select_faces
from ..detect.batch import detect_many
from ..detect.cache import DetectionCache
from ..detect.fallback import box_landmarker, fallback_face, median_box
from ..errors import DatasetError
from ..io import load_image
from ..models.registry import get_model
from ..models.thresholds import thresholds_path
from .similarity import pair_similarity
from ..types import DetectedFace
from .metrics import calibrate
from .protocol import lfw_protocol


def _embed_paths(model, paths: list[str], faces: dict[str, DetectedFace], batch: int = 64,
                 progress: bool = True, desc: str = "embed") -> tuple[np.ndarray, np.ndarray]:
    """(plain, flipped) L2-normalised embeddings of the chosen face of each path."""
    from tqdm import tqdm

    geometry = model.spec.preprocessing.geometry
    plain, mirrored = [], []
    for i in tqdm(range(0, len(paths), batch), desc=desc, disable=not progress, unit="batch"):
        crops = np.stack([align_face(load_image(p), faces[p], geometry).image for p in paths[i : i + batch]])
        plain.append(model.embed(crops, batch_size=batch))
        mirrored.append(model.embed(np.ascontiguousarray(crops[:, :, ::-1]), batch_size=batch))
    d = model.spec.embedding_size
    return (np.concatenate(plain) if plain else np.zeros((0, d), np.float32),
            np.concatenate(mirrored) if mirrored else np.zeros((0, d), np.float32))


def _flip_combine(plain: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    e = plain + mirrored
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def run_lfw_eval(out_dir: str | os.PathLike, *, model: str = "dlib-resnet", weights: Any = None,
                 detector: str = "dlib-hog", detector_kwargs: dict[str, Any] | None = None,
                 select: str = "center", flip: bool = True, data: str | os.PathLike | None = None,
                 cache: str | os.PathLike | None | bool = True, workers: int | None = None,
                 folds: list[int] | None = None, pairs_per_fold: int | None = None, write_thresholds: bool = False,
                 progress: bool = True) -> dict[str, Any]:
    """Run the protocol; returns the report dict (also written to ``out_dir/report.json``).

    Args:
        folds: 0-based folds to keep (default all ten).
        pairs_per_fold: keep only the first ``k/2`` genuine and ``k/2`` impostor pairs of each
            fold (quick runs and tests); default all 600.
        write_thresholds: store the calibration as the model's packaged thresholds.
    """
    from .plots import plot_det, plot_roc, plot_score_histograms

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lfw = LFW(data)
    pairs = lfw.pairs()
    if folds:
        pairs = [p for p in pairs if p.fold in set(folds)]
    if pairs_per_fold:  # a quick run: the first k genuine and k impostor pairs of each fold
        pairs = first_pairs_per_fold(pairs, max(1, pairs_per_fold // 2))
    if not pairs:
        raise DatasetError(f"no LFW pairs in folds {folds}")
    paths = sorted({str(p.path_a) for p in pairs} | {str(p.path_b) for p in pairs})
    fr = get_model(model, weights=weights)
    det_kwargs = detector_kwargs or {}
    det_cache = None if cache is False else DetectionCache(None if cache is True or cache is None else cache)

    t_det = time.perf_counter()
    found = detect_many(paths, detector, det_kwargs, cache=det_cache, workers=workers, progress=progress)
    t_det = time.perf_counter() - t_det
    if found.errors:
        raise DatasetError("unreadable LFW images: " + "; ".join(f"{k}: {v}" for k, v in list(found.errors.items())[:5]))

    # face selection per strategy, with the median-box fallback for photos without a face
    detected = {p: f for p, f in found.faces.items() if f}
    no_face = sorted(p for p in paths if not found.faces.get(p))
    chosen: dict[str, dict[str, DetectedFace]] = {}
    fallback_box = None
    for strategy in ("center", "largest"):
        sel = {p: select_faces(f, load_shape(p), strategy)[0] for p, f in detected.items()}
        chosen[strategy] = sel
    if no_face:
        fallback_box = median_box(chosen[select].values())
        det = box_landmarker(detector, det_kwargs)
        for p in no_face:
            fb = fallback_face(load_image(p), fallback_box, det)
            for strategy in chosen:
                chosen[strategy][p] = fb

    # embeddings: "largest" differs from "center" only where a photo has several faces
    t_emb = time.perf_counter()
    e_plain, e_mirror = {}, {}
    ep, em = _embed_paths(fr, paths, chosen["center"], progress=progress, desc="embed (center)")
    e_plain["center"] = dict(zip(paths, ep))
    e_mirror["center"] = dict(zip(paths, em))
    differ = [p for p in paths if not np.array_equal(chosen["largest"][p].box, chosen["center"][p].box)]
    ep2, em2 = _embed_paths(fr, differ, chosen["largest"], progress=progress, desc="embed (largest, differing)")
    e_plain["largest"] = {**e_plain["center"], **dict(zip(differ, ep2))}
    e_mirror["largest"] = {**e_mirror["center"], **dict(zip(differ, em2))}
    t_emb = time.perf_counter() - t_emb

    labels = np.array([p.same for p in pairs], dtype=int)
    fold_ids = np.array([p.fold for p in pairs])
    variants: dict[str, Any] = {}
    scores_by: dict[str, np.ndarray] = {}
    for strategy in ("center", "largest"):
        for use_flip in (False, True):
            a = np.stack([e_plain[strategy][str(p.path_a)] for p in pairs])
            b = np.stack([e_plain[strategy][str(p.path_b)] for p in pairs])
            if use_flip:
                a = _flip_combine(a, np.stack([e_mirror[strategy][str(p.path_a)] for p in pairs]))
                b = _flip_combine(b, np.stack([e_mirror[strategy][str(p.path_b)] for p in pairs]))
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
        "photos_with_several_faces": sum(1 for f in detected.values() if len(f) > 1),
        "timing_s": {"detection": round(t_det, 1), "detections_computed": found.computed,
                     "detections_from_cache": found.cached, "embedding": round(t_emb, 1),
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


def load_shape(path: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.height, im.width
