"""Train a CorrRISE student (:mod:`xaiface.explain.student`) on clean LFW pairs of training folds.

    python -m xaiface.explain.train_student --model dlib-resnet --folds 1,2,3,4,5 \
        --work runs/student/dlib-targets-a --out runs/student/dlib-student-a.pt

The CorrRISE targets are computed first (resumable: one file a pair in ``--work``), then the
student is trained and saved with its record (``.json``).
"""
from __future__ import annotations

import json
from typing import Sequence

from .student import make_targets, train_student, training_pairs


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m xaiface.explain.train_student --model dlib-resnet --folds 1,2,3,4,5 --work DIR --out student.pt``"""
    import argparse

    ap = argparse.ArgumentParser(description="Train a CorrRISE student on clean LFW pairs of training folds.")
    ap.add_argument("--model", default="dlib-resnet")
    ap.add_argument("--folds", required=True, help="training folds, 1-based, comma-separated")
    ap.add_argument("--per-fold", type=int, default=8)
    ap.add_argument("--first", type=int, default=30)
    ap.add_argument("--work", required=True, help="folder of the CorrRISE targets (resumable)")
    ap.add_argument("--out", required=True, help="the student's .pt file (its .json record beside it)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--data", default=None)
    args = ap.parse_args(argv)
    folds = [int(f) for f in args.folds.split(",")]
    pairs = training_pairs(folds, args.per_fold, args.first, args.data)
    make_targets(args.model, pairs, args.work)
    print(json.dumps(train_student(args.model, args.work, args.out, folds=folds, steps=args.steps), indent=1))


if __name__ == "__main__":
    main()
