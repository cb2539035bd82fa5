"""The CorrRISE student on Patch-LFW, cross-fold: each student only on the folds it was not trained on.

Two students (``python -m xaiface.explain.train_student``), one trained on clean pairs of folds
1-5 and one on folds 6-10, each run by ``xaiface bench patch-lfw`` on the other half's folds
(``--folds ... --pairs 300``: the same 30 genuine + 30 impostor pairs a fold as the 600-pair
subset; ``--pairs 1200``: 60 a fold). Their results are merged into one ``corrrise-student`` row
and summarised beside the other methods already in the benchmark folder, over the same pairs
(paired intervals against random as every row).

    python benchmarks/student_crossfold.py --out runs/bench --model dlib-resnet \
        --students runs/student/dlib-student-a.pt runs/student/dlib-student-b.pt \
        --methods random,xssab,gradient,simcam,hirescam,gradcam,ig,fggb --workers 2
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from patch_lfw_tables import table

from xaiface.bench import ResultStore
from xaiface.bench.patch_lfw import PatchLFW
from xaiface.bench.protocol import DELETION_PERCENTS, DPR_PERCENTS
from xaiface.bench.report import summarize, write_summary
from xaiface.bench.status import subset_pairs
from xaiface.models import model_spec

NAME = "corrrise-student"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="the benchmark folder (600-pair runs of the other methods in it)")
    ap.add_argument("--model", default="dlib-resnet")
    ap.add_argument("--students", nargs=2, required=True, help="two student .pt files with complementary training folds")
    ap.add_argument("--methods", default="random,xssab,gradient", help="other methods to summarise beside it")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--label", default=NAME, help="the merged row's name (default corrrise-student)")
    ap.add_argument("--pairs", type=int, default=600, help="the subset (600 or 1200): N / 20 genuine and impostor pairs a fold")
    args = ap.parse_args()
    out = Path(args.out)
    records = [json.loads(Path(s).with_suffix(".json").read_text()) for s in args.students]
    folds = [set(r["folds"]) for r in records]
    if folds[0] & folds[1] or folds[0] | folds[1] != set(range(1, 11)):
        sys.exit(f"the students' training folds must split 1..10 in two, got {sorted(folds[0])} and {sorted(folds[1])}")
    xaiface = str(Path(sys.executable).with_name("xaiface"))
    for student, trained in zip(args.students, folds):
        evaluate = sorted(set(range(1, 11)) - trained)
        cmd = [xaiface, "bench", "patch-lfw", "--model", args.model, "--methods", NAME,
               "--folds", ",".join(map(str, evaluate)), "--pairs", str(args.pairs // 10 * len(evaluate)),
               "--param", f"{NAME}.weights={student}", "--workers", str(args.workers), "--threads", "1",
               "--out", str(out), "--quiet"]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)

    geometry = model_spec(args.model).preprocessing.geometry
    ds = PatchLFW(out / f"patch-lfw-{geometry}")
    wanted = subset_pairs(args.pairs)
    selection = [q for q in ds.pairs if q.index in wanted]
    others = [m for m in args.methods.split(",") if m]
    results, run_keys, params = {}, {}, {}
    with ResultStore(out / "results.sqlite") as s:
        runs = [r for r in s.runs() if r["model"] == args.model and not r["config"].get("reference_rules")]
        for m in others:
            cands = [r for r in runs if r["method"] == m]
            if not cands:
                sys.exit(f"{out}: no {m} run of {args.model}; run it first on --pairs {args.pairs}")
            r = cands[-1]
            results[m] = s.results(r["run_key"], sorted(wanted))
            run_keys[m], params[m] = r["run_key"], r["config"].get("params", {})
        merged = []
        for student, trained in zip(args.students, folds):
            key = next(r["run_key"] for r in runs if r["method"] == NAME
                       and str(r["config"].get("params", {}).get("weights")) == str(student))
            evaluate_idx = sorted(q.index for q in selection if q.fold + 1 not in trained)
            merged += s.results(key, evaluate_idx)
            run_keys[f"{NAME} ({Path(student).name})"] = key
        results[args.label] = sorted(merged, key=lambda r: r.pair)
        params[args.label] = {"students": [str(p) for p in args.students], "trained_folds": [sorted(f) for f in folds]}
        th = next(r for r in runs if r["method"] == others[0])["config"]["threshold"]
    t1 = json.loads((out / f"{args.pairs}pairs" / "summary.json").read_text())["table1"]
    assert abs(t1["threshold"] - th) < 1e-12, f"the runs' threshold differs from the {args.pairs}-pair summary's"
    summary = summarize(results, t1, selection, dataset=ds, model=args.model, rule="bound", jpeg=False,
                        dpr_percents=DPR_PERCENTS, deletion_percents=DELETION_PERCENTS, run_keys=run_keys, params=params)
    report = out / (f"{args.pairs}pairs-crossfold" + ("" if args.label == NAME else f"-{args.label}"))
    write_summary(summary, report, command="python benchmarks/student_crossfold.py " + " ".join(sys.argv[1:]))
    print(table(summary))
    print("written:", report)


if __name__ == "__main__":
    main()
