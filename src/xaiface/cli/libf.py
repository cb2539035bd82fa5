"""``xaiface train libf`` and ``xaiface eval libf``: the LIBF-EBM stage (:mod:`xaiface.libf`) on the command line."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .args import (
    FOLDS_HELP, add_cache_arg, add_data_arg, add_folds_arg, add_out_arg, add_pairs_per_fold_arg, add_quiet_arg,
    add_threads_arg, lfw_folds, subparsers_of,
)


def _test_folds(text: str | None) -> tuple[int, ...]:
    """``--folds`` (numbered 1..10, the parser every command uses) as LIBFTrainConfig's fold numbers 1..10."""
    folds = lfw_folds(text)
    return tuple(range(1, 11)) if folds is None else tuple(f + 1 for f in folds)


def cmd_train_libf(args: argparse.Namespace) -> int:
    from ..libf.byol import BYOLConfig
    from ..libf.distill import DistillConfig
    from ..libf.model import default_artefacts
    from ..libf.train import LIBFTrainConfig, train_libf

    distill = args.encoder == "distill"
    # --epochs, --steps-per-epoch and --batch-size set the encoder that is trained; the other keeps its defaults
    given = {k: v for k, v in (("epochs", args.epochs), ("steps_per_epoch", args.steps_per_epoch),
                               ("batch_size", args.batch_size)) if v is not None}
    shape = dict(patch_size=args.patch_size, embedding_dim=args.embedding_dim, width=args.width, seed=args.seed)
    byol = BYOLConfig(**shape, **({} if distill else given))
    dist = DistillConfig(**shape, **(given if distill else {}))
    ebm_params: dict[str, Any] = {}
    if args.n_jobs != -1:
        ebm_params["n_jobs"] = args.n_jobs
    if args.max_rounds is not None:
        ebm_params["max_rounds"] = args.max_rounds
    cfg = LIBFTrainConfig(folds=_test_folds(args.folds), byol=byol, encodings=tuple(args.encodings.split(",")),
                          interactions=args.interactions, outer_bags=args.outer_bags, max_bins=args.max_bins,
                          geometry=None if args.geometry == "photo" else args.geometry, byol_images=args.byol_images,
                          threads=args.threads, pairs_per_fold=args.pairs_per_fold, ebm_params=ebm_params,
                          encoder=args.encoder, distill=dist, extra_faces=args.extra_faces, teacher=args.teacher)
    out = Path(args.out) if args.out else default_artefacts()
    rep = train_libf(out, cfg, data=args.data, cache=args.cache if args.cache else True, progress=not args.quiet,
                     max_byol_epochs=args.max_byol_epochs)
    lines = []
    for enc, e in rep["encodings"].items():
        lines.append(f"  {enc:<10} {100 * e['mean_accuracy']:.2f}% +- {100 * e['std_accuracy']:.2f}% over folds {e['folds']}")
    print("LIBF-EBM accuracy (match probability >= 0.5, test fold unseen):")
    print("\n".join(lines) if lines else "  (no fold finished yet)")
    t = rep["timing_s"]
    if t.get("byol_mean") is not None:
        print(f"wall time per fold: {'distillation' if distill else 'BYOL'} {t['byol_mean']:.0f} s; EBM fit " +
              ", ".join(f"{k} {v:.0f} s" for k, v in t.get("ebm_fit_mean", {}).items()))
    print(f"artefacts: {out}  (report: {out / 'report.json'})")
    return 0


def cmd_eval_libf(args: argparse.Namespace) -> int:
    from ..libf.evaluate import evaluate_libf

    summary = evaluate_libf(args.model, args.out, deep_report=args.deep_report, fold=args.fold, data=args.data,
                            encoding=args.encoding, cache=args.cache if args.cache else True)
    print(json.dumps(summary, indent=2))
    return 0


def register(sub: Any, eval_sub: Any) -> None:
    """Add ``train libf`` (top level) and ``eval libf`` (under ``eval``)."""
    tsub = subparsers_of(sub, "train", "train the learned parts of a stage", "train_what")
    p = tsub.add_parser("libf", help="LIBF-EBM: patch encoder (BYOL or distilled) then EBM per LFW fold (resumable)",
                        description="Per LFW test fold: a patch encoder trained on faces outside the test fold "
                                    "(BYOL as D5.2, or distilled from the deep model), LIBF features, one EBM per "
                                    "pair encoding on the other nine folds' pairs, accuracy on the test fold. "
                                    "Run the same command again to continue an interrupted run.")
    add_out_arg(p, help="training folder (default $XAIFACE_LIBF or <cache>/libf)", required=False)
    add_folds_arg(p, help="test folds: " + FOLDS_HELP)
    p.add_argument("--encoder", default="byol", choices=["byol", "distill"],
                   help="how the patch encoder learns: byol (D5.2, default) or distill (predict the teacher's identity code)")
    p.add_argument("--teacher", default="dlib-resnet", help="registered model distilled with --encoder distill (default dlib-resnet)")
    p.add_argument("--extra-faces", action="store_true", help="also train the encoder on the UTKFace and VIP_attribute faces")
    p.add_argument("--epochs", type=int, default=None, help="encoder epochs (default 12)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="steps per epoch (default 50 for BYOL, 250 for distill)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default 256 patches for BYOL, 64 faces for distill)")
    p.add_argument("--patch-size", type=int, default=24, help="patch side in pixels (default 24)")
    p.add_argument("--embedding-dim", type=int, default=16, help="patch embedding size (default 16, as D5.2)")
    p.add_argument("--width", type=int, default=16, help="channels of the encoder's first convolution (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--byol-images", type=int, default=None, help="at most N training photos for BYOL per fold")
    p.add_argument("--max-byol-epochs", type=int, default=None, help="stop the encoder's training after N epochs in this call (resume later)")
    p.add_argument("--encodings", default="concat,symmetric",
                   help="pair encodings among concat, symmetric, patch-cosine (default concat,symmetric)")
    p.add_argument("--interactions", type=int, default=5, help="EBM interaction terms (default 5; keep small)")
    p.add_argument("--outer-bags", type=int, default=2, help="EBM outer bags (default 2)")
    p.add_argument("--max-bins", type=int, default=256, help="EBM bins per feature (default 256)")
    p.add_argument("--max-rounds", type=int, default=None, help="EBM boosting rounds (default interpret's)")
    p.add_argument("--n-jobs", type=int, default=-1, help="EBM worker processes (default -1: every core)")
    add_pairs_per_fold_arg(p)
    add_cache_arg(p, help="detection cache file (default: the on-disk cache)")
    p.add_argument("--geometry", default="dlib-150", help="crops to cut patches from (default dlib-150; 'photo': the photos)")
    add_threads_arg(p)
    add_data_arg(p, help="data folder holding lfw/")
    add_quiet_arg(p, help="no progress bars")
    p.set_defaults(func=cmd_train_libf)

    e = eval_sub.add_parser("libf", help="LIBF-EBM figures: accuracy vs the deep model, timing, patches, explained pairs")
    e.add_argument("--model", required=True, help="training folder of `xaiface train libf`")
    add_out_arg(e, help="folder for the figures and JSON")
    e.add_argument("--deep-report", default=None, help="report.json of `xaiface eval lfw` to compare with")
    e.add_argument("--fold", type=int, default=None, help="fold (numbered 1..10) whose model explains its own test pairs (default: the report's)")
    e.add_argument("--encoding", default=None, choices=["symmetric", "concat", "patch-cosine"],
                   help="EBM used for the explanations (default: the first trained of patch-cosine, symmetric, concat)")
    add_data_arg(e, help="data folder holding lfw/")
    add_cache_arg(e, help="detection cache file (default: the on-disk cache)")
    e.set_defaults(func=cmd_eval_libf)
