"""``xaiface analyze soft-biometrics``: LFW View 2 errors split by soft-biometric traits.

At the model's EER threshold (its calibrated value, the one ``xaiface verify`` uses), every
LFW pair is a false match, a false non-match or correct; the rates are then split by

* whether the two faces' **estimated genders agree**;
* how many of the two faces are **gender-misclassified** against the LFW gender lists
  (neither / one / both; pairs with an unlabelled or doubly-listed image are left out);
* the labelled genders crossed with the estimates (the analysis of Gbekevi et al., WACV 2023:
  an impostor pair of a man and a woman whose estimates agree has one face misclassified);
* bins of the **estimated age gap** and of the **estimated BMI gap**.

Each rate carries its 95% Wilson interval (at an EER near 1% a category holds a handful of
errors). Outputs: ``table.csv`` / ``table.md`` / ``report.json``, ``rates.png`` (bars with
intervals), ``age_gap.png`` / ``bmi_gap.png`` (score against gap), ``pairs.csv`` (every pair's
score, decision and traits), ``errors.jsonl`` (the soft-biometric explanation of every error),
and the explanation (JSON + figure) of the highest-scoring false accept and of the
lowest-scoring false reject whose faces were both detected.

Faces, embeddings and the default pipeline are those of ``xaiface eval lfw`` (dlib HOG, the face
nearest the photo centre, the median box for photos without a detection, mirror-averaged
dlib-resnet embeddings), so the scores equal that run's.
"""
from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DatasetError
from .pair import explain_verdict
from .traits import FaceTraits

AGE_GAP_BINS = (0.0, 5.0, 10.0, 20.0, math.inf)
BMI_GAP_BINS = (0.0, 1.0, 2.0, 4.0, math.inf)
GROUPS = ("estimated gender", "gender misclassified (vs LFW labels)", "LFW gender x estimates",
          "estimated age gap (years)", "estimated BMI gap (kg/m^2)")


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion ``k / n`` (``None`` when ``n = 0``)."""
    if n == 0:
        return None
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def error_table(scores: np.ndarray, labels: np.ndarray, threshold: float,
                groups: Mapping[str, Sequence[str | None]], order: Mapping[str, Sequence[str]] | None = None) -> list[dict[str, Any]]:
    """FMR and FNMR per category of each grouping of the pairs.

    Args:
        scores: ``(N,)`` similarities; labels: ``(N,)`` 1 genuine / 0 impostor; ``score >= threshold`` matches.
        groups: grouping name -> ``(N,)`` category of each pair (``None``: left out of that grouping).
        order: grouping name -> categories in display order (default: sorted).

    Returns:
        One row per (grouping, category), plus an ``"all pairs"`` row first: counts, rates and
        their Wilson intervals (``None`` where a category holds no pair of that kind).
    """
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels).astype(bool)
    if s.shape != y.shape:
        raise ConfigError(f"scores {s.shape} and labels {y.shape} differ in shape")
    match = s >= threshold

    def row(group: str, cat: str, m: np.ndarray) -> dict[str, Any]:
        g, i = m & y, m & ~y
        ng, ni = int(g.sum()), int(i.sum())
        fnm, fm = int((g & ~match).sum()), int((i & match).sum())
        return {"group": group, "category": cat, "genuine_pairs": ng, "impostor_pairs": ni,
                "false_non_matches": fnm, "false_matches": fm,
                "fnmr": fnm / ng if ng else None, "fmr": fm / ni if ni else None,
                "fnmr_ci": wilson_interval(fnm, ng), "fmr_ci": wilson_interval(fm, ni)}

    rows = [row("all pairs", "all", np.ones_like(y))]
    for name, cats in groups.items():
        arr = np.array([c if c is not None else "" for c in cats], dtype=object)
        if arr.shape != y.shape:
            raise ConfigError(f"grouping {name!r}: {arr.shape[0]} categories for {y.shape[0]} pairs")
        present = sorted({c for c in arr if c})
        for cat in (order or {}).get(name, present):
            if cat in present:
                rows.append(row(name, cat, arr == cat))
    return rows


def _bin_label(edges: Sequence[float], v: float) -> str:
    for lo, hi in zip(edges[:-1], edges[1:]):
        if lo <= v < hi:
            return f"{lo:g}-{hi:g}" if math.isfinite(hi) else f">={lo:g}"
    return f">={edges[-2]:g}"


def _bin_order(edges: Sequence[float]) -> list[str]:
    return [_bin_label(edges, lo) for lo in edges[:-1]]


def pair_groups(traits_a: Sequence[FaceTraits], traits_b: Sequence[FaceTraits], labels_a: Sequence[str | None],
                labels_b: Sequence[str | None], age_bins: Sequence[float] = AGE_GAP_BINS,
                bmi_bins: Sequence[float] = BMI_GAP_BINS) -> tuple[dict[str, list[str | None]], dict[str, list[str]]]:
    """The categories of each pair for :func:`error_table` (and their display order).

    ``labels_a/b``: the LFW gender of each face (``"male"``/``"female"``; anything else leaves
    the pair out of the label-based groupings).
    """
    g: dict[str, list[str | None]] = {k: [] for k in GROUPS}
    for ta, tb, la, lb in zip(traits_a, traits_b, labels_a, labels_b):
        ga, gb = ta.get("gender"), tb.get("gender")
        agree = None if ga is None or gb is None else ga.value == gb.value
        g[GROUPS[0]].append(None if agree is None else ("agree" if agree else "disagree"))
        labelled = la in ("male", "female") and lb in ("male", "female") and agree is not None
        if labelled:
            wrong = int(ga.value != la) + int(gb.value != lb)  # type: ignore[union-attr]
            g[GROUPS[1]].append(("neither", "one", "both")[wrong])
            same = "same gender" if la == lb else "different gender"
            g[GROUPS[2]].append(f"{same}, estimates {'agree' if agree else 'disagree'}")
        else:
            g[GROUPS[1]].append(None)
            g[GROUPS[2]].append(None)
        aa, ab = ta.get("age"), tb.get("age")
        g[GROUPS[3]].append(None if aa is None or ab is None else _bin_label(age_bins, abs(float(aa.value) - float(ab.value))))
        ba, bb = ta.get("bmi"), tb.get("bmi")
        g[GROUPS[4]].append(None if ba is None or bb is None else _bin_label(bmi_bins, abs(float(ba.value) - float(bb.value))))
    order = {GROUPS[0]: ["agree", "disagree"], GROUPS[1]: ["neither", "one", "both"],
             GROUPS[2]: ["same gender, estimates agree", "same gender, estimates disagree",
                         "different gender, estimates agree", "different gender, estimates disagree"],
             GROUPS[3]: _bin_order(age_bins), GROUPS[4]: _bin_order(bmi_bins)}
    return g, order


def table_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The error table as Markdown (rates in %, 95% Wilson intervals in brackets)."""
    def pct(v: float | None, ci: Sequence[float] | None) -> str:
        if v is None:
            return "-"
        return f"{100 * v:.2f}% [{100 * ci[0]:.2f}, {100 * ci[1]:.2f}]" if ci else f"{100 * v:.2f}%"

    out = ["| grouping | category | genuine | impostor | FNM | FM | FNMR [95% CI] | FMR [95% CI] |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['group']} | {r['category']} | {r['genuine_pairs']} | {r['impostor_pairs']} | "
                   f"{r['false_non_matches']} | {r['false_matches']} | {pct(r['fnmr'], r['fnmr_ci'])} | {pct(r['fmr'], r['fmr_ci'])} |")
    return "\n".join(out) + "\n"


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def resolve_threshold(model: Any, threshold: str | float, flip: bool) -> tuple[str, float]:
    """A calibrated threshold name of the model (``"eer"``...) or a number -> ``(name, value)``.

    The model's operating point (:meth:`~xaiface.models.spec.ModelSpec.operating_point`; NaN, inf
    or outside [-1, 1]: ConfigError), as a pair.
    """
    op = model.spec.operating_point(threshold, flip=flip)
    return op.name, op.value


def analyze_lfw(out_dir: str | os.PathLike, *, model: str = "dlib-resnet", detector: str = "dlib-hog",
                threshold: str | float = "eer", flip: bool = True, data: str | os.PathLike | None = None,
                folds: Sequence[int] | None = None, pairs_per_fold: int | None = None,
                body_mass: Any = True, cache: Any = True, examples: int = 1, progress: bool = True) -> dict[str, Any]:
    """Run the analysis and write its outputs (see the module docstring).

    Args:
        threshold: a calibrated threshold name of the model (default ``"eer"``) or a number.
        folds: 0-based LFW folds to keep (default all ten); pairs_per_fold: a quick run.
        body_mass: ``True`` (the VIP-trained regressor, trained now if not cached), a
            :class:`~xaiface.soft.body_mass.BodyMassEstimator`, a saved regressor's path, or
            ``False`` (no BMI grouping).
        cache: the detection cache and the result store (``True``, ``False``).
        examples: how many false accepts and false rejects get an explanation figure.

    Returns:
        The report (also ``out_dir/report.json``).
    """
    from ..datasets import LFW
    from ..models import get_model
    from ..pipeline.batch import embed_faces, locate_faces
    from .batch import estimate_traits
    from .body_mass import BodyMassEstimator
    from .dlib_age_gender import DlibAgeEstimator, DlibGenderEstimator
    from .plots import gap_scatter, rate_bars
    from .store import open_store

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lfw = LFW(data)
    pairs = lfw.pairs(folds=folds, per_fold=pairs_per_fold)
    paths = list(dict.fromkeys(str(p) for pr in pairs for p in (pr.path_a, pr.path_b)))
    fr = get_model(model)
    op = fr.spec.operating_point(threshold, flip=flip)
    thr_name, thr = op.name, op.value
    store = open_store(cache if cache is not True else None)

    located = locate_faces(paths, detector=detector, select="center", fallback="median",
                           cache=True if cache is not False else False, progress=progress).require_all("LFW images")
    emb = embed_faces(fr, located.faces, store=store, progress=progress, desc="embed LFW").require_all("LFW images")
    # without mirror-averaging this analysis has always re-normalised the plain embeddings in numpy
    E = dict(zip(paths, emb.vectors(paths, flip) if flip else _unit_rows(emb.vectors(paths, False))))
    traits, errors = estimate_traits([DlibGenderEstimator(), DlibAgeEstimator()], located.faces, store=store,
                                     progress=progress, desc="gender, age")
    if errors:
        raise DatasetError("LFW images without traits: " + "; ".join(f"{k}: {v}" for k, v in list(errors.items())[:5]))
    bm = None
    if body_mass is not False and body_mass is not None:
        bm = body_mass if isinstance(body_mass, BodyMassEstimator) else BodyMassEstimator(
            None if body_mass is True else body_mass, model=fr, data=data, progress=progress)
        bmt = bm.traits_from_embeddings(np.stack([E[p] for p in paths]))
        traits = {p: traits[p].merged(t) for p, t in zip(paths, bmt)}

    scores = np.array([float(E[str(p.path_a)] @ E[str(p.path_b)]) for p in pairs])
    labels = np.array([p.same for p in pairs], dtype=int)
    genders = lfw.genders()
    ta = [traits[str(p.path_a)] for p in pairs]
    tb = [traits[str(p.path_b)] for p in pairs]
    la = [genders.get(p.path_a.name) for p in pairs]
    lb = [genders.get(p.path_b.name) for p in pairs]
    groups, order = pair_groups(ta, tb, la, lb)
    if bm is None:
        groups.pop(GROUPS[4])
    rows = error_table(scores, labels, thr, groups, order)

    # gender accuracy of the estimates on these images, against the LFW lists
    lab = {p: genders.get(Path(p).name) for p in paths}
    scored = [p for p in paths if lab[p] in ("male", "female")]
    acc = {g: float(np.mean([traits[p]["gender"].value == g for p in scored if lab[p] == g]))
           if any(lab[p] == g for p in scored) else None for g in ("male", "female")}

    # per-pair CSV and every error explained
    model_name = fr.spec.name
    match = scores >= thr
    with open(out / "pairs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["fold", "index", "image_a", "image_b", "genuine", "score", "match", "gender_a", "p_male_a", "gender_b",
                    "p_male_b", "label_a", "label_b", "age_a", "age_b", "bmi_a", "bmi_b", "fallback_a", "fallback_b"])
        for i, p in enumerate(pairs):
            a, b = ta[i], tb[i]
            w.writerow([p.fold + 1, p.index, os.path.relpath(p.path_a, lfw.root), os.path.relpath(p.path_b, lfw.root),
                        int(p.same), f"{scores[i]:.6f}", int(match[i]), a["gender"].value,
                        f"{a['gender'].probabilities['male']:.4f}", b["gender"].value, f"{b['gender'].probabilities['male']:.4f}",
                        la[i] or "", lb[i] or "", f"{float(a['age'].value):.2f}", f"{float(b['age'].value):.2f}",
                        f"{float(a['bmi'].value):.2f}" if "bmi" in a else "", f"{float(b['bmi'].value):.2f}" if "bmi" in b else "",
                        int(str(p.path_a) in located.fallback), int(str(p.path_b) in located.fallback)])
    err_idx = [i for i in range(len(pairs)) if bool(match[i]) != bool(labels[i])]
    explained = {}
    with open(out / "errors.jsonl", "w") as f:
        for i in err_idx:
            e = explain_verdict(ta[i], tb[i], scores[i], thr, genuine=bool(labels[i]), model=model_name)
            explained[i] = e
            f.write(json.dumps({"pair_index": pairs[i].index, "fold": pairs[i].fold + 1, **e.data()}) + "\n")
    examples_out = []
    clean = lambda i: str(pairs[i].path_a) not in located.fallback and str(pairs[i].path_b) not in located.fallback  # noqa: E731
    fa = sorted((i for i in err_idx if not labels[i]), key=lambda i: -scores[i])[:examples]
    frj = sorted((i for i in err_idx if labels[i] and clean(i)), key=lambda i: scores[i])[:examples]
    for kind, idx in (("false_accept", fa), ("false_reject", frj)):
        for k, i in enumerate(idx, 1):
            stem = out / f"{kind}_{k}"
            (stem.with_suffix(".json")).write_text(json.dumps(explained[i].data(), indent=2))
            explained[i].visualize(stem.with_suffix(".png"))
            examples_out.append({"kind": kind, "pair_index": pairs[i].index, "json": str(stem.with_suffix(".json")),
                                 "figure": str(stem.with_suffix(".png")), "summary": explained[i].summary()})

    # table and plots
    with open(out / "table.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["grouping", "category", "genuine_pairs", "impostor_pairs", "false_non_matches", "false_matches",
                    "fnmr", "fnmr_ci_low", "fnmr_ci_high", "fmr", "fmr_ci_low", "fmr_ci_high"])
        for r in rows:
            ci = lambda c: ("", "") if c is None else (f"{c[0]:.6f}", f"{c[1]:.6f}")  # noqa: E731
            w.writerow([r["group"], r["category"], r["genuine_pairs"], r["impostor_pairs"], r["false_non_matches"],
                        r["false_matches"], "" if r["fnmr"] is None else f"{r['fnmr']:.6f}", *ci(r["fnmr_ci"]),
                        "" if r["fmr"] is None else f"{r['fmr']:.6f}", *ci(r["fmr_ci"])])
    (out / "table.md").write_text(table_markdown(rows))
    rate_bars(rows, [g for g in GROUPS if g in groups], out / "rates.png",
              title=f"LFW View 2, {model_name}, threshold {thr_name} = {thr:.4f}")
    age_gap = np.array([abs(float(a["age"].value) - float(b["age"].value)) for a, b in zip(ta, tb)])
    gap_scatter(age_gap, scores, labels, thr, "age", "years", out / "age_gap.png")
    if bm is not None:
        bmi_gap = np.array([abs(float(a["bmi"].value) - float(b["bmi"].value)) for a, b in zip(ta, tb)])
        gap_scatter(bmi_gap, scores, labels, thr, "BMI", "kg/m^2", out / "bmi_gap.png")

    from ..verify import eer as eer_of

    eer_val, eer_thr = eer_of(scores, labels) if 0 < labels.sum() < len(labels) else (float("nan"), float("nan"))
    report = {
        "model": model_name, "detector": detector, "flip": flip, "select": "center",
        "threshold": {"name": thr_name, "value": thr, "eer_on_these_pairs": eer_val, "eer_threshold_on_these_pairs": eer_thr},
        "pairs": len(pairs), "images": len(paths), "faces": located.summary(),
        "fallback_images": sorted(os.path.relpath(p, lfw.root) for p in located.fallback),
        "false_matches": int(sum(1 for i in err_idx if not labels[i])),
        "false_non_matches": int(sum(1 for i in err_idx if labels[i])),
        "estimators": {"gender": DlibGenderEstimator().settings(), "age": DlibAgeEstimator().settings(),
                       "body_mass": None if bm is None else {"name": bm.name, "n_train": bm.regressor.n_train_}},
        "gender_accuracy_on_these_images": {"images_with_label": len(scored), "male": acc["male"], "female": acc["female"],
                                            "overall": float(np.mean([traits[p]["gender"].value == lab[p] for p in scored]))
                                            if scored else None,
                                            "balanced": float(np.mean([v for v in acc.values() if v is not None]))
                                            if any(v is not None for v in acc.values()) else None},
        "bins": {"age_gap": [str(v) for v in AGE_GAP_BINS], "bmi_gap": [str(v) for v in BMI_GAP_BINS]},
        "table": rows, "examples": examples_out,
        "files": {"table": str(out / "table.md"), "csv": str(out / "table.csv"), "rates": str(out / "rates.png"),
                  "pairs": str(out / "pairs.csv"), "errors": str(out / "errors.jsonl")},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report
