"""``xaiface verify`` (one pair of photos) and ``xaiface eval lfw`` (LFW View 2)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .args import detector_kwargs, executor_kwargs, lfw_folds, pipeline_from_args


def cmd_verify(args: argparse.Namespace) -> int:
    pipe = pipeline_from_args(args)
    verdict = pipe.verify(args.image_a, args.image_b)
    print(json.dumps(verdict.to_dict(), indent=2))
    return 0


def cmd_eval_lfw(args: argparse.Namespace) -> int:
    from ..pipeline.lfw_eval import run_lfw_eval

    det_kwargs = detector_kwargs(args)
    rep = run_lfw_eval(args.out, model=args.model, weights=args.weights, detector=args.detector,
                       detector_kwargs=det_kwargs, select=args.select, flip=args.flip, data=args.data,
                       cache=args.cache if args.cache else False, folds=lfw_folds(args.folds),
                       **executor_kwargs(args),
                       pairs_per_fold=args.pairs_per_fold,
                       write_thresholds=args.write_thresholds, progress=not args.quiet)
    print(rep["summary"])
    print(f"images without a detected face: {rep['images_without_detected_face']} (fallback: median box)")
    print("variants (accuracy, EER):")
    for k, v in rep["variants"].items():
        print(f"  {k:<28} {100 * v['mean_accuracy']:.2f}% +- {100 * v['std_accuracy']:.2f}%   EER {100 * v['eer']:.2f}%")
    print(f"report: {Path(args.out) / 'report.json'}")
    return 0
