"""``xaiface eval soft-biometrics``: how good the estimators are, on data with labels.

* LFW (all 13,233 images, faces as ``xaiface eval lfw`` picks them): gender accuracy against
  the LFW gender lists (images in both lists or in neither are left out), per class, balanced,
  and at confidence >= 0.9 with its coverage;
* UTKFace (the 7,899 well-formed names; the 4 malformed ones are reported and skipped): gender
  accuracy against the name's label (all faces, and faces aged 18 or more) and age MAE (overall, for true ages 0-80, the model's
  range, and per age band); photos without a detection use the whole (already cropped) photo;
* VIP_attribute: BMI and weight MAE, RMSE and Pearson r of the body-mass regressor, k-fold
  cross-validated (folds stratified by gender), with the constant and per-gender-mean baselines;
  gender accuracy against the file names.

The estimators are registered names (``estimators=``, CLI ``--estimator``; default
``dlib-gender`` and ``dlib-age``): every gender estimator is measured on LFW and UTKFace, every
age estimator on UTKFace, each through the trait store (one estimator at a time, so that two
gender estimators do not overwrite each other), on the same faces.

Writes ``report.json``, ``table.md`` and scatter plots; returns the report.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError

AGE_BANDS = ((0, 13), (13, 20), (20, 40), (40, 60), (60, 81), (81, 200))
SETS = ("lfw", "utkface", "vip")
#: the estimators measured when none are named
DEFAULT_ESTIMATORS = ("dlib-gender", "dlib-age")


def gender_accuracy(predicted: Sequence[str], truth: Sequence[str], confidence: Sequence[float] | None = None) -> dict[str, Any]:
    """Accuracy of ``"male"``/``"female"`` estimates: overall, per class, balanced, and at confidence >= 0.9."""
    p, t = np.asarray(predicted), np.asarray(truth)
    keep = np.isin(t, ("male", "female"))
    p, t = p[keep], t[keep]
    if t.size == 0:
        raise ConfigError("gender_accuracy: no labelled faces")
    per = {g: float(np.mean(p[t == g] == g)) if np.any(t == g) else None for g in ("male", "female")}
    out: dict[str, Any] = {"n": int(t.size), "accuracy": float(np.mean(p == t)), "male": per["male"], "female": per["female"],
                           "balanced_accuracy": float(np.mean([v for v in per.values() if v is not None])),
                           "n_male": int(np.sum(t == "male")), "n_female": int(np.sum(t == "female"))}
    if confidence is not None:
        c = np.asarray(confidence, np.float64)[keep]
        hi = c >= 0.9
        out["confident_0.9"] = {"coverage": float(hi.mean()), "accuracy": float(np.mean(p[hi] == t[hi])) if hi.any() else None}
    return out


def age_errors(predicted: Sequence[float], truth: Sequence[float], bands: Sequence[tuple[int, int]] = AGE_BANDS) -> dict[str, Any]:
    """Age MAE overall, for true ages 0-80, and per band ``[lo, hi)`` of the true age."""
    p, t = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    e = np.abs(p - t)
    in_range = t <= 80
    return {"n": int(t.size), "mae": float(e.mean()), "mae_age_0_80": float(e[in_range].mean()) if in_range.any() else None,
            "n_age_0_80": int(in_range.sum()), "mean_signed_error": float(np.mean(p - t)),
            "bands": {f"{lo}-{hi - 1}": {"n": int(((t >= lo) & (t < hi)).sum()),
                                         "mae": float(e[(t >= lo) & (t < hi)].mean()) if ((t >= lo) & (t < hi)).any() else None}
                      for lo, hi in bands}}


def _limit(items: list, limit: int | None, seed: int = 0) -> list:
    if limit is None or limit >= len(items):
        return items
    idx = np.sort(np.random.default_rng(seed).choice(len(items), size=limit, replace=False))
    return [items[i] for i in idx]


def evaluate_estimators(out_dir: str | os.PathLike, *, sets: Sequence[str] = SETS, data: str | os.PathLike | None = None,
                        limit: int | None = None, folds: int = 5, cache: Any = True, progress: bool = True,
                        seed: int = 0, workers: int | None = None, executor: Any = None,
                        scheduler: str | None = None, estimators: Sequence[str] | None = None) -> dict[str, Any]:
    """Evaluate the gender, age and body-mass estimators (see the module docstring).

    Args:
        sets: any of ``"lfw"``, ``"utkface"``, ``"vip"``.
        limit: at most this many images per set, drawn at random with ``seed`` (quick runs).
        folds: cross-validation folds for VIP_attribute.
        workers, executor, scheduler: where detection runs (:func:`xaiface.pipeline.batch.locate_faces`).
        estimators: registered estimator names (default :data:`DEFAULT_ESTIMATORS`); those with a
            ``gender`` trait are measured on every set's gender labels, those with ``age`` on
            UTKFace's ages (VIP_attribute's gender: the first gender estimator). The report keeps
            the first gender / age estimator's figures under ``gender`` / ``age`` and every
            estimator's under ``estimators``.
    """
    from ..pipeline.batch import locate_faces
    from .batch import estimate_traits
    from .body_mass import cross_validate_body_mass, vip_embeddings
    from .traits import estimator_info, get_estimator
    from .plots import prediction_scatter
    from .store import open_store

    names = list(dict.fromkeys(estimators or DEFAULT_ESTIMATORS))
    gender_names = [n for n in names if "gender" in estimator_info(n).traits]
    age_names = [n for n in names if "age" in estimator_info(n).traits]
    useless = [n for n in names if n not in gender_names + age_names]
    if useless:
        raise ConfigError(f"estimator(s) {useless} estimate neither gender nor age; the evaluation measures those two")
    if not gender_names and ({"lfw", "vip"} & set(sets)):
        raise ConfigError(f"sets {sorted({'lfw', 'vip'} & set(sets))} measure gender; name a gender estimator too (got {names})")
    unknown = sorted(set(sets) - set(SETS))
    if unknown:
        raise ConfigError(f"unknown evaluation set(s) {unknown}; choose from {list(SETS)}")
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = open_store(cache if cache is not True else None)
    det_cache = cache is not False
    run_on = {"workers": workers, "executor": executor, "scheduler": scheduler}
    report: dict[str, Any] = {"sets": list(sets), "limit": limit, "estimators": names}
    md = ["| data set | measure | value |", "|---|---|---|"]

    if "lfw" in sets:
        from ..datasets import LFW

        lfw = LFW(data)
        genders = lfw.genders()
        paths = _limit([str(p) for n in lfw.identities() for p in lfw.images_of(n)], limit, seed)
        loc = locate_faces(paths, select="center", fallback="median", cache=det_cache, progress=progress, **run_on)
        report["lfw"] = {"images": len(paths), "faces": loc.summary(), "errors": {}, "estimators": {}}
        for name in gender_names:
            tr, errors = estimate_traits([get_estimator(name)], loc.faces, store=store, progress=progress, desc=f"{name} (LFW)")
            ok = [p for p in paths if p in tr]
            labels = [genders.get(Path(p).name, "unlabelled") for p in ok]
            acc = gender_accuracy([tr[p]["gender"].value for p in ok], labels, [tr[p]["gender"].confidence for p in ok])
            report["lfw"]["estimators"][name] = {"errors": errors, "gender": acc}
            if name == gender_names[0]:  # the first gender estimator's figures also where they always were
                report["lfw"].update(errors=errors, gender=acc,
                                     left_out={"ambiguous": labels.count("ambiguous"), "unlabelled": labels.count("unlabelled")})
            md += [f"| LFW ({acc['n']} labelled images) | {name}: gender accuracy | {100 * acc['accuracy']:.2f}% |",
                   f"| LFW | {name}: gender balanced accuracy (male {100 * acc['male']:.2f}%, female {100 * acc['female']:.2f}%) | "
                   f"{100 * acc['balanced_accuracy']:.2f}% |"]

    if "utkface" in sets:
        from ..datasets import UTKFace

        utk = UTKFace(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            items = _limit(utk.items(), limit, seed)
        paths = [str(it.path) for it in items]
        loc = locate_faces(paths, select="center", fallback="image", cache=det_cache, progress=progress, **run_on)
        report["utkface"] = {"images": len(paths), "faces": loc.summary(), "errors": {},
                             "malformed_names": [{"file": m.path.name, "reason": m.reason} for m in utk.malformed()],
                             "estimators": {}}
        for name in gender_names:
            tr, errors = estimate_traits([get_estimator(name)], loc.faces, store=store, progress=progress,
                                         desc=f"{name} (UTKFace)")
            ok = [(p, it) for p, it in zip(paths, items) if p in tr]
            acc = gender_accuracy([tr[p]["gender"].value for p, _ in ok], [it.gender for _, it in ok],
                                  [tr[p]["gender"].confidence for p, _ in ok])
            adult = [(p, it) for p, it in ok if it.age >= 18]
            acc_adult = gender_accuracy([tr[p]["gender"].value for p, _ in adult], [it.gender for _, it in adult]) if adult else None
            report["utkface"]["estimators"][name] = {"errors": errors, "gender": acc, "gender_age_18_plus": acc_adult}
            if name == gender_names[0]:
                report["utkface"].update(gender=acc, gender_age_18_plus=acc_adult)
                report["utkface"]["errors"].update(errors)
            md += [f"| UTKFace ({acc['n']} images) | {name}: gender accuracy | {100 * acc['accuracy']:.2f}% |",
                   f"| UTKFace | {name}: gender balanced accuracy (male {100 * acc['male']:.2f}%, female {100 * acc['female']:.2f}%) | "
                   f"{100 * acc['balanced_accuracy']:.2f}% |",
                   *([f"| UTKFace ({acc_adult['n']} images) | {name}: gender accuracy, true age >= 18 | {100 * acc_adult['accuracy']:.2f}% |"]
                     if acc_adult else [])]
        for name in age_names:
            tr, errors = estimate_traits([get_estimator(name)], loc.faces, store=store, progress=progress,
                                         desc=f"{name} (UTKFace)")
            ok = [(p, it) for p, it in zip(paths, items) if p in tr]
            pred_age = np.array([float(tr[p]["age"].value) for p, _ in ok])
            true_age = np.array([it.age for _, it in ok], np.float64)
            ages = age_errors(pred_age, true_age)
            conf = np.array([tr[p]["age"].confidence for p, _ in ok], np.float64)
            tol = tr[ok[0][0]]["age"].tolerance if ok else None
            if tol is not None:
                ages["tolerance"] = float(tol)
                ages["mean_confidence"] = float(np.nanmean(conf))
                ages["fraction_within_tolerance"] = float(np.mean(np.abs(pred_age - true_age) <= tol))
            first = name == age_names[0]
            prediction_scatter(true_age, pred_age, "age", "years", out / ("utkface_age.png" if first else f"utkface_age_{name}.png"),
                               title=f"UTKFace: {name}, MAE {ages['mae']:.2f} y (0-80: {ages['mae_age_0_80']:.2f} y)")
            report["utkface"]["estimators"].setdefault(name, {"errors": errors})["age"] = ages
            if first:
                report["utkface"]["age"] = ages
                report["utkface"]["errors"].update(errors)
            md += [f"| UTKFace ({ages['n']} images) | {name}: age MAE, all ages | {ages['mae']:.2f} years |",
                   f"| UTKFace ({ages['n_age_0_80']} images) | {name}: age MAE, true age 0-80 | {ages['mae_age_0_80']:.2f} years |"]
            if tol is not None:
                md.append(f"| UTKFace | {name}: mean age confidence vs fraction within +-{tol:g} years | "
                          f"{ages['mean_confidence']:.3f} vs {ages['fraction_within_tolerance']:.3f} |")

    if "vip" in sets:
        d = vip_embeddings(data, subset=limit, cache=cache, progress=progress, seed=seed)
        cv = cross_validate_body_mass(d["X"], {"bmi": d["bmi"], "weight": d["weight"]}, strata=d["male"], folds=folds, seed=seed)
        for t, unit in (("bmi", "kg/m^2"), ("weight", "kg")):
            r = cv[t]
            prediction_scatter(np.array(r["truth"]), np.array(r["predictions"]), t.upper() if t == "bmi" else t, unit,
                               out / f"vip_{t}.png", title=f"VIP_attribute, {folds}-fold CV: MAE {r['mae']:.2f}, r = {r['pearson_r']:.3f}")
            md += [f"| VIP_attribute ({cv['n']} faces, {folds}-fold CV) | {t} MAE / RMSE / Pearson r | {r['mae']:.2f} / "
                   f"{r['rmse']:.2f} {unit} / {r['pearson_r']:.3f} |",
                   f"| VIP_attribute | {t} baseline MAE: training mean / per-gender mean | {r['baseline_mae']:.2f} / "
                   f"{r['baseline_gender_mae']:.2f} {unit} |",
                   f"| VIP_attribute | {t}: mean confidence vs fraction within +-{r['tolerance']:g} {unit} | "
                   f"{r['mean_confidence']:.3f} vs {r['fraction_within_tolerance']:.3f} |"]
        from ..datasets import VIPAttribute

        by_path = {str(it.path): it for it in VIPAttribute(data).items()}
        loc = locate_faces(d["paths"], select="center", fallback="image", cache=det_cache, progress=False, **run_on)
        tr, _ = estimate_traits([get_estimator(gender_names[0])], loc.faces, store=store, progress=progress,
                                desc=f"{gender_names[0]} (VIP)")
        acc = gender_accuracy([tr[p]["gender"].value for p in d["paths"] if p in tr],
                              [by_path[p].gender for p in d["paths"] if p in tr])
        md.append(f"| VIP_attribute ({acc['n']} faces) | {gender_names[0]}: gender accuracy | {100 * acc['accuracy']:.2f}% |")
        report["vip"] = {"faces": len(d["paths"]), "fallback_boxes": len(d["fallback"]), "errors": d["errors"],
                         "body_mass_cv": {t: {k: v for k, v in cv[t].items() if k not in ("predictions", "std", "truth", "confidence")}
                                          for t in ("bmi", "weight")},
                         "gender": acc}
    report["table"] = "\n".join(md) + "\n"
    report["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "table.md").write_text(report["table"])
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report
