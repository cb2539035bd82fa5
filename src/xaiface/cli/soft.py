"""Command line of the soft-biometrics stage (:mod:`xaiface.soft`).

* ``xaiface traits IMAGE [IMAGE_B]``: the traits of a photo's face(s) as JSON; with two photos,
  the verdict and its soft-biometric explanation (``--out``: JSON + figure);
* ``xaiface analyze soft-biometrics --out DIR``: LFW View 2 errors split by traits;
* ``xaiface analyze disentangle --out DIR``: demographic disentangling on LFW;
* ``xaiface analyze erasure --out DIR``: post-hoc gender erasure methods on LFW, trade-off curves;
* ``xaiface eval soft-biometrics --out DIR``: estimator accuracy (LFW, UTKFace, VIP_attribute);
* ``xaiface eval calibration --out DIR``: calibrated gender probabilities and conformal intervals;
* ``xaiface train body-mass``: fit the BMI / weight regressor on VIP_attribute and save it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .args import (
    FLIP_STUDY_HELP, add_data_arg, add_detector_arg, add_flip_arg, add_folds_arg, add_model_arg, add_out_arg,
    add_pairs_per_fold_arg, add_pipeline_args, add_quiet_arg, add_same_args, add_threads_arg, add_threshold_arg,
    add_executor_args, executor_kwargs, lfw_folds, pipeline_from_args, set_torch_threads, subparsers_of, threshold_value,
)


def _body_mass_arg(args: argparse.Namespace) -> Any:
    if not args.body_mass:
        return False
    return args.body_mass_model or True


def _estimators(args: argparse.Namespace, model: Any) -> list[Any]:
    from ..soft.body_mass import BodyMassEstimator
    from ..soft.traits import get_estimator

    ests: list[Any] = [get_estimator("dlib-gender"), get_estimator("dlib-age")]
    if args.body_mass:
        ests.append(BodyMassEstimator(args.body_mass_model, model=model, data=args.data, progress=not args.quiet))
    for spec in args.estimator or []:
        name, _, path = spec.partition("=")
        ests.append(get_estimator(name, model_path=path) if path else get_estimator(name))
    from ..soft.calibration import SoftBiometricCalibration, calibrate_estimators

    cal = getattr(args, "calibration", None)
    return calibrate_estimators(ests, False if cal == "none" else (SoftBiometricCalibration.load(cal) if cal else True))


def cmd_traits(args: argparse.Namespace) -> int:
    from ..io import load_image
    from ..soft.pair import explain_verdict
    from ..soft.traits import estimator_info, list_estimators

    if args.list:
        rows = [{"name": n, "traits": list(estimator_info(n).traits), "description": estimator_info(n).description,
                 "needs_user_file": estimator_info(n).needs_user_file} for n in list_estimators()]
        print(json.dumps({"estimators": rows}, indent=2))
        return 0
    if not 1 <= len(args.images) <= 2:
        raise ConfigError(f"traits takes one photo (its faces' traits) or two (a pair explained), got {len(args.images)}")
    pipe = pipeline_from_args(args)
    ests = _estimators(args, pipe.model)

    def traits_of(path: str, faces: list) -> list:
        photo = load_image(path)
        merged = [None] * len(faces)
        for est in ests:
            for i, ft in enumerate(est.estimate(photo, faces, source=path)):
                merged[i] = ft if merged[i] is None else merged[i].merged(ft)
        return merged

    if len(args.images) == 1:
        path = args.images[0]
        faces = [a.face for a in (pipe.align_all(path) if args.all_faces else [pipe.align(path)])]
        result = traits_of(path, faces)
        print(json.dumps({"image": path, "faces": [ft.to_dict() for ft in result]}, indent=2))
        return 0
    a, b = (pipe.align(p) for p in args.images)
    ta, tb = traits_of(args.images[0], [a.face])[0], traits_of(args.images[1], [b.face])[0]
    score = pipe.similarity(a, b)
    genuine = None if args.same is None else bool(args.same)
    expl = explain_verdict(ta, tb, score, pipe.threshold, genuine=genuine, model=pipe.model.spec.name)
    data = expl.data()
    data["threshold_name"] = pipe.threshold_name
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "soft_biometrics.json").write_text(json.dumps(data, indent=2))
        expl.visualize(out / "soft_biometrics.png")
        data["files"] = {"json": str(out / "soft_biometrics.json"), "figure": str(out / "soft_biometrics.png")}
    print(json.dumps(data, indent=2))
    return 0


def cmd_analyze_soft(args: argparse.Namespace) -> int:
    from ..soft.analysis import analyze_lfw

    _threads(args)
    rep = analyze_lfw(args.out, model=args.model, detector=args.detector, threshold=threshold_value(args.threshold),
                      flip=args.flip, data=args.data, folds=lfw_folds(args.folds), pairs_per_fold=args.pairs_per_fold,
                      body_mass=_body_mass_arg(args), cache=not args.no_cache, examples=args.examples,
                      progress=not args.quiet)
    t = rep["threshold"]
    print(f"LFW View 2: {rep['pairs']} pairs, threshold {t['name']} = {t['value']:.4f}; "
          f"{rep['false_matches']} false matches, {rep['false_non_matches']} false non-matches")
    print(Path(rep["files"]["table"]).read_text())
    for e in rep["examples"]:
        print(f"{e['kind']}: {e['summary']}\n  {e['json']}\n  {e['figure']}")
    print(f"report: {Path(args.out) / 'report.json'}")
    return 0


def cmd_analyze_disentangle(args: argparse.Namespace) -> int:
    from ..soft.disentangle import disentangle_lfw

    _threads(args)
    classifiers = tuple(c.strip() for c in args.classifiers.split(",") if c.strip())
    rep = disentangle_lfw(args.out, model=args.model, data=args.data, all_images=not args.pair_images_only,
                          age=not args.no_age, classifiers=classifiers, cache=not args.no_cache, progress=not args.quiet,
                          seed=args.seed, projection_directions=args.projection_directions, epochs=args.epochs,
                          encoder=args.encoder, mmd_weight=args.mmd_weight, adversary_weight=args.adversary_weight,
                          similarity_weight=args.similarity_weight)
    print(rep["table"])
    print(f"report: {Path(args.out) / 'report.json'}")
    return 0


def cmd_analyze_erasure(args: argparse.Namespace) -> int:
    from ..soft.erasure import erase_lfw

    _threads(args)
    split = lambda v: tuple(x.strip() for x in v.split(",") if x.strip())  # noqa: E731
    inlp = {"max_iterations": args.inlp_max_iterations, "tolerance": args.inlp_tolerance}
    rep = erase_lfw(args.out, model=args.model, data=args.data, all_images=args.all_images, methods=split(args.methods),
                    probes=split(args.probes), curve_probes=split(args.curve_probes), cache=not args.no_cache,
                    progress=not args.quiet, seed=args.seed, inlp=inlp, normalise=args.normalise)
    print(rep["table"])
    print(f"report: {Path(args.out) / 'report.json'}; trade-off curves: {Path(args.out) / 'tradeoff.png'}")
    return 0


def cmd_eval_soft(args: argparse.Namespace) -> int:
    from ..soft.evaluate import evaluate_estimators

    _threads(args)
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    names = [n.strip() for spec in (args.estimator or []) for n in spec.split(",") if n.strip()] or None
    rep = evaluate_estimators(args.out, sets=sets, data=args.data, limit=args.limit, folds=args.cv_folds,
                              cache=not args.no_cache, progress=not args.quiet, estimators=names, **executor_kwargs(args))
    print(rep["table"])
    if "utkface" in rep:
        bad = rep["utkface"]["malformed_names"]
        print(f"UTKFace: {len(bad)} malformed file name(s) skipped: " + "; ".join(f"{m['file']!r} ({m['reason']})" for m in bad),
              file=sys.stderr)
    print(f"report: {Path(args.out) / 'report.json'}")
    return 0


def cmd_eval_calibration(args: argparse.Namespace) -> int:
    from ..soft.calibration import calibrate_soft_biometrics

    _threads(args)
    rep = calibrate_soft_biometrics(args.out, data=args.data, level=args.level, bins=args.bins, seed=args.seed,
                                    limit=args.limit, lfw=not args.no_lfw, vip=not args.no_vip, cache=not args.no_cache,
                                    progress=not args.quiet, save=args.save)
    print(rep["table"])
    print(f"calibration: {Path(args.out) / 'calibration.json'}" + (f" (also {args.save})" if args.save else ""))
    return 0


def cmd_train_body_mass(args: argparse.Namespace) -> int:
    from ..soft.body_mass import TARGETS, BodyMassRegressor, default_body_mass_regressor, vip_embeddings

    _threads(args)
    if args.subset is None and args.out is None:
        reg = default_body_mass_regressor(data=args.data, model=args.model, progress=not args.quiet)
        where = "the default cache location"
    else:
        d = vip_embeddings(args.data, args.model, subset=args.subset, progress=not args.quiet)
        reg = BodyMassRegressor(TARGETS).fit(d["X"], {t: d[t] for t in TARGETS})
        out = Path(args.out or "body-mass.npz")
        reg.save(out, meta={"trained_on": "VIP_attribute", "n": int(len(d["X"])), "model": args.model})
        where = str(out)
    print(json.dumps({"targets": list(reg.targets), "n_train": reg.n_train_, "saved": where}))
    return 0


def _threads(args: argparse.Namespace) -> None:
    if args.threads:  # 0, like no --threads, leaves torch's default
        set_torch_threads(args.threads)


def _common(p: argparse.ArgumentParser, body_mass: bool = True) -> None:
    add_data_arg(p, help="data folder holding lfw/, utkface/, vip_attribute/ (default ../shared/data)")
    add_threads_arg(p)
    add_quiet_arg(p, help="no progress bars")
    if body_mass:
        p.add_argument("--body-mass", action=argparse.BooleanOptionalAction, default=True,
                       help="estimate BMI and weight (the VIP_attribute regressor; trained on first use, then cached)")
        p.add_argument("--body-mass-model", default=None, help="a regressor saved by `xaiface train body-mass --out`")


def register(sub: Any, eval_sub: Any) -> None:
    """Add ``traits``, ``analyze soft-biometrics``, ``analyze disentangle``, ``eval soft-biometrics``, ``train body-mass``."""
    p = sub.add_parser("traits", help="soft-biometric traits (gender, age, BMI, weight) of a face, or a pair explained by them",
                       description="One photo: each face's traits with confidences (JSON). Two photos: the verdict and "
                                   "which traits the faces share (accepts) or differ in (rejects); --out adds a figure.")
    p.add_argument("images", nargs="*", metavar="IMAGE")
    p.add_argument("--all-faces", action="store_true", help="one photo: every face, not only the selected one")
    add_same_args(p, same_help="two photos: they show the same person (the outcome becomes true accept / false reject)",
                  different_help="two photos: they show different people (true reject / false accept)")
    p.add_argument("--estimator", action="append", default=None, metavar="NAME[=MODEL.onnx]",
                   help="an extra registered estimator, e.g. dex-age=dex.onnx (see --list)")
    add_out_arg(p, help="two photos: folder for soft_biometrics.json and soft_biometrics.png", required=False)
    p.add_argument("--list", action="store_true", help="list the registered estimators and exit")
    p.add_argument("--calibration", default=None, metavar="FILE|none",
                   help="calibration JSON from `xaiface eval calibration` (default: the one shipped; none: raw confidences)")
    _common(p)
    add_pipeline_args(p)
    p.set_defaults(func=cmd_traits)

    asub = subparsers_of(sub, "analyze", "data-set analyses of a stage", "analysis")
    a = asub.add_parser("soft-biometrics", help="LFW View 2: FMR/FNMR at the EER threshold split by estimated gender, "
                                               "age gap and BMI gap (table, plots, explained errors)")
    add_out_arg(a)
    add_model_arg(a)
    add_detector_arg(a)
    add_threshold_arg(a, help="a calibrated threshold name of the model (default eer) or a number")
    add_flip_arg(a, default=True, help=FLIP_STUDY_HELP)
    add_folds_arg(a)
    add_pairs_per_fold_arg(a)
    a.add_argument("--examples", type=int, default=1, help="false accepts and false rejects explained with a figure (default 1)")
    a.add_argument("--no-cache", action="store_true", help="recompute detections, embeddings and traits")
    _common(a)
    a.set_defaults(func=cmd_analyze_soft)

    d = asub.add_parser("disentangle", help="demographic disentangling on LFW: gender / age predictability and "
                                           "verification before and after")
    add_out_arg(d)
    add_model_arg(d)
    d.add_argument("--epochs", type=int, default=40)
    d.add_argument("--encoder", default="linear", choices=["linear", "residual", "mlp"],
                   help="z = (I + A) x (default), z = x + MLP(x), or a plain MLP")
    d.add_argument("--mmd-weight", type=float, default=100.0, help="weight of the class-distribution matching term")
    d.add_argument("--adversary-weight", type=float, default=1.0, help="weight of the adversaries' confusion term")
    d.add_argument("--similarity-weight", type=float, default=10.0,
                   help="weight of the same-gender similarity-preservation term (identity)")
    d.add_argument("--projection-directions", type=int, default=5,
                   help="gender directions removed by the linear-projection reference (default 5)")
    d.add_argument("--pair-images-only", action="store_true", help="train on the View 2 pair images only (faster)")
    d.add_argument("--no-age", action="store_true", help="remove gender only (no apparent-age-group adversary)")
    d.add_argument("--classifiers", default="logistic,mlp", help="fresh classifiers for predictability (logistic, mlp)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--no-cache", action="store_true")
    _common(d, body_mass=False)
    d.set_defaults(func=cmd_analyze_disentangle)

    r = asub.add_parser("erasure", help="post-hoc gender erasure on LFW (INLP, LEACE, class-conditional Gaussian OT, "
                                        "the adversarial autoencoder): leakage to three probes, verification, trade-off curves")
    add_out_arg(r)
    add_model_arg(r)
    r.add_argument("--methods", default="inlp,leace,gaussian-ot,autoencoder",
                   help="comma-separated: inlp, leace, gaussian-ot, autoencoder")
    r.add_argument("--probes", default="logistic,mlp,hgb", help="fresh probes for the full setting (logistic, mlp, hgb)")
    r.add_argument("--curve-probes", default="logistic,mlp", help="probes along the trade-off curves")
    r.add_argument("--inlp-max-iterations", type=int, default=100)
    r.add_argument("--inlp-tolerance", type=float, default=0.01, help="INLP stops at dev balanced accuracy <= 0.5 + this")
    r.add_argument("--normalise", action="store_true", help="probes see L2-normalised erased embeddings")
    r.add_argument("--all-images", action="store_true", help="all 13,233 LFW images (default: the 7,701 View 2 pair images)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--no-cache", action="store_true")
    _common(r, body_mass=False)
    r.set_defaults(func=cmd_analyze_erasure)

    e = eval_sub.add_parser("soft-biometrics", help="estimator accuracy: gender on LFW / UTKFace, age on UTKFace, "
                                                    "BMI and weight on VIP_attribute (cross-validated)")
    add_out_arg(e)
    e.add_argument("--sets", default="lfw,utkface,vip", help="comma-separated: lfw, utkface, vip")
    e.add_argument("--limit", type=int, default=None, help="at most N images per set (random, seed 0)")
    e.add_argument("--estimator", action="append", default=None, metavar="NAME[,NAME...]",
                   help="registered gender / age estimators to measure (repeatable; default dlib-gender,dlib-age; "
                        "see `xaiface traits --list`), e.g. --estimator dlib-gender,levi-hassner-gender")
    add_executor_args(e, workers_help="detection processes (default 2)")
    e.add_argument("--cv-folds", type=int, default=5, help="cross-validation folds on VIP_attribute (default 5)")
    e.add_argument("--no-cache", action="store_true")
    _common(e, body_mass=False)
    e.set_defaults(func=cmd_eval_soft, cache=True)  # `xaiface eval` reads args.cache

    c = eval_sub.add_parser("calibration", help="calibrate the soft-biometric confidences (gender: isotonic / Platt; "
                                                "age, BMI, weight: split-conformal intervals) and check them on held-out faces")
    add_out_arg(c)
    c.add_argument("--level", type=float, default=0.8, help="stated coverage of the intervals (default 0.8)")
    c.add_argument("--bins", type=int, default=15, help="ECE / reliability-diagram bins (default 15)")
    c.add_argument("--limit", type=int, default=None, help="at most N UTKFace / LFW images (random, --seed)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--no-lfw", action="store_true", help="skip the LFW gender check")
    c.add_argument("--no-vip", action="store_true", help="skip BMI / weight (VIP_attribute)")
    c.add_argument("--save", default=None, metavar="FILE", help="also write the calibration here "
                                                                 "(src/xaiface/soft/data/calibration.json ships it)")
    c.add_argument("--no-cache", action="store_true")
    _common(c, body_mass=False)
    c.set_defaults(func=cmd_eval_calibration, cache=True)

    tsub = subparsers_of(sub, "train", "train the learned parts of a stage", "train_what")
    t = tsub.add_parser("body-mass", help="fit the BMI / weight regressor on VIP_attribute and save it")
    add_out_arg(t, help="file to save (default: the cache, where `traits` and `analyze` find it)", required=False)
    add_model_arg(t)
    t.add_argument("--subset", type=int, default=None, help="train on N faces only (half of each gender)")
    _common(t, body_mass=False)
    t.set_defaults(func=cmd_train_body_mass)
