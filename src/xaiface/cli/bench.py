"""``xaiface bench ...``: the Patch-LFW generator and benchmark on the command line.

    xaiface bench patch-lfw-generate --out runs/bench/patch-lfw-dlib-150
    xaiface bench patch-lfw --methods xssab,xssab-noblur,gradient,random --pairs 600 --out runs/bench
    xaiface bench status runs/bench

Added by :func:`register` (``register(sub, eval_sub)``) to the parser of :mod:`xaiface.cli`;
project errors go to its handler (exit code 1).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .args import (
    add_data_arg, add_executor_args, add_folds_arg, add_model_arg, add_out_arg, add_quiet_arg, add_threads_arg,
    add_weights_arg, executor_kwargs, lfw_folds, method_params, set_torch_threads,
)


#: ``bench.runner.DEFAULT_METHODS`` (not imported: the parser stays light; a test checks they agree)
DEFAULT_METHODS = "xssab,xssab-noblur,gradient,random"




def _command_line(args: argparse.Namespace) -> str:
    parts = ["xaiface bench patch-lfw", f"--methods {','.join(args.methods)}" if args.methods else "--methods ''"]
    for flag, v in (("--pairs", args.pairs), ("--folds", args.folds), ("--model", None if args.model == "dlib-resnet" else args.model),
                    ("--dataset", args.dataset), ("--rule", None if args.rule == "bound" else args.rule),
                    ("--threshold", args.threshold), ("--seed", args.seed or None)):
        if v is not None:
            parts.append(f"{flag} {v}")
    parts += [f"--param {p}" for p in args.param or []]
    if args.jpeg:
        parts.append("--jpeg")
    if args.reference_rules:
        parts.append("--reference-rules")
    if args.threads is not None:
        parts.append(f"--threads {args.threads}")
    parts.append(f"--out {args.out}")
    return " ".join(parts)


def cmd_generate(args: argparse.Namespace) -> int:
    from ..bench.patch_lfw import generate_patch_lfw

    ds = generate_patch_lfw(args.out, model=args.model, seed=args.seed, data=args.data, n_pairs=args.pairs,
                            folds=lfw_folds(args.folds), cache=args.cache if args.cache else True,
                            progress=not args.quiet, reference_rules=args.reference_rules, **executor_kwargs(args))
    m = ds.manifest
    print(json.dumps({"out": str(ds.root), "pairs": ds.n_pairs, "complete": ds.complete, "geometry": ds.geometry,
                      "patch_size": ds.patch_size, "n_patches": m["params"]["n_patches"], "seed": m["params"]["seed"],
                      "rules": m["params"].get("rules", "project"),
                      "mean_coverage": round(m["mean_coverage"], 4), "photos_without_face": len(m["faces"]["no_face"]),
                      "identity": ds.identity, "content_sha256": ds.content_sha256, "seconds": m["seconds"]}, indent=2))
    return 0


def cmd_patch_lfw(args: argparse.Namespace) -> int:
    from ..bench.report import write_summary
    from ..bench.runner import run_patch_lfw

    set_torch_threads(args.threads)
    methods = [m.strip() for m in (args.methods or "").split(",") if m.strip()]
    args.methods = methods
    summary = run_patch_lfw(args.out, methods=methods, model=args.model, weights=args.weights, dataset=args.dataset,
                            n_pairs=args.pairs, folds=lfw_folds(args.folds), seed=args.seed, jpeg=args.jpeg, rule=args.rule,
                            threshold=args.threshold, method_params=method_params(args.param), data=args.data,
                            progress=not args.quiet, write=False, reference_rules=args.reference_rules,
                            threads=args.threads, **executor_kwargs(args))
    summary["command"] = _command_line(args)
    files = write_summary(summary, summary["report_dir"])
    t = summary["table1"]
    partial = ", a partial data set" if "partial" in t.get("scope", "") else ""
    print(f"Table 1 ({t['n_pairs']} pairs{partial}): clean EER {t['clean_eer']:.4f}; threshold "
          f"{t['threshold']:.4f} ({t['threshold_source']}); "
          f"Patch-LFW FMR {t['patched_fmr']:.3f}, FNMR {t['patched_fnmr']:.3f}")
    for m, r in summary["methods"].items():
        if "dpr" not in r:
            print(f"{m}: no finished pairs ({r['n_failed']} failed)")
            continue
        d, lo = r["dpr"], r["localisation"]
        print(f"{m:<12} {r['n_pairs']} pairs  DPR AUC FMR {d['auc_fmr']:.2f}  FNMR {d['auc_fnmr']:.2f}  "
              f"deletion {r['deletion']['auc_all']:.2f}  insertion {r['insertion']['auc_all']:.2f}  "
              f"AUROC {lo['auroc_all']:.3f}  {r['cost']['seconds_per_pair_mean']:.2f} s/pair"
              + (f"  ({r['n_failed']} failed)" if r["n_failed"] else ""))
    for m, note in summary.get("method_notes", {}).items():
        print(f"  {m}: {note}")
    print(f"summary: {files['markdown']}")
    return 3 if any(r.get("n_failed") for r in summary["methods"].values()) else 0


def cmd_status(args: argparse.Namespace) -> int:
    from ..bench.status import bench_status

    st = bench_status(args.dir)
    print(json.dumps(st.to_dict(), indent=2) if args.json else st.text(), end="\n" if args.json else "")
    return 0


def _add_common(p: argparse.ArgumentParser, out_help: str) -> None:
    add_out_arg(p, help=out_help)
    add_model_arg(p, help="registered model whose crop geometry is used (default dlib-resnet)")
    p.add_argument("--pairs", type=int, default=None, help="balanced subset: N pairs in all, the first N/(2*folds) genuine "
                   "and impostor pairs of each fold (default all)")
    add_folds_arg(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the generator and of the random baseline (default 0)")
    add_data_arg(p)
    add_quiet_arg(p)


def register(sub: Any, eval_sub: Any) -> None:
    """Add ``bench`` and its sub-commands to the top-level parser."""
    b = sub.add_parser("bench", help="benchmarks of explanation maps (Patch-LFW: Table 1, DPR, deletion/insertion, localisation)")
    bsub = b.add_subparsers(dest="bench_command", required=True)

    g = bsub.add_parser("patch-lfw-generate", help="generate Patch-LFW for a model's crop geometry (lossless .npz, masks, "
                        "hashes), or add the pairs a folder lacks")
    _add_common(g, "folder to write the data set into, or to extend (manifest.json, fold-NN-EEEE.npz)")
    g.add_argument("--reference-rules", action="store_true",
                   help="the reference code's generator rules: one NumPy stream seeded 3 per class, patched images "
                        "as later donors (default: the project's per-pair streams and clean donors)")
    g.add_argument("--cache", default=None, help="detection cache file (default ~/.cache/xaiface/detections.sqlite)")
    add_executor_args(g, workers_help="detection processes for cache misses (default 2)")
    g.set_defaults(func=cmd_generate)

    r = bsub.add_parser("patch-lfw", help="Table 1, DPR curves and AUCs, deletion/insertion and localisation; resumable")
    _add_common(r, "benchmark folder: results.sqlite, embeddings, and one report folder per subset "
                   "(OUT/all, OUT/600pairs, ...)")
    r.add_argument("--methods", default=DEFAULT_METHODS,
                   help=f"comma-separated explainers (see `xaiface explainers`; default {DEFAULT_METHODS}: xssab = the "
                        "paper's blurred maps, xssab-noblur = the reference code's); empty: Table 1 only")
    r.add_argument("--dataset", default=None, help="Patch-LFW folder, used as it is (default OUT/patch-lfw-<geometry>, "
                   "where the selected pairs are generated when missing)")
    add_weights_arg(r, help="weight file for the model")
    r.add_argument("--jpeg", action="store_true", help="re-encode every DPR step as JPEG, as the reference code does")
    r.add_argument("--rule", default="bound", choices=["bound", "rank"],
                   help="DPR pixels: 'bound' (the reference's strict value bound, default) or 'rank' (exactly X%%)")
    r.add_argument("--reference-rules", action="store_true",
                   help="score as the xSSAB reference code: float DPR step index, the random baseline's permutation "
                        "prefix for matches and non-matches alike, seed 3; with the reference-rules data set "
                        "(in-place donors, seed 3 per class; default OUT/patch-lfw-<geometry>-reference). Its runs "
                        "are stored under their own run keys")
    r.add_argument("--threshold", type=float, default=None, help="decision threshold (default: the clean EER threshold of "
                   "the full set, or the model's calibrated LFW EER threshold for a partial data set)")
    r.add_argument("--param", action="append", default=None, metavar="METHOD.NAME=VALUE",
                   help="explainer parameter, repeatable (e.g. corrrise.n_masks=300)")
    add_threads_arg(r, help="torch intra-op threads of each process that computes pairs (default: this process's "
                           "torch default locally, 1 on Dask workers; 1 is faster on a CPU shared with other jobs)")
    add_executor_args(r, workers_help="processes computing pairs (default: this process)")
    r.set_defaults(func=cmd_patch_lfw)

    st = bsub.add_parser("status", help="what a benchmark folder holds and what is missing (data set, embeddings, "
                                        "runs and their standard subsets); reads only")
    st.add_argument("dir", help="the benchmark folder (the --out of `xaiface bench patch-lfw`)")
    st.add_argument("--json", action="store_true", help="print JSON instead of text")
    st.set_defaults(func=cmd_status)
