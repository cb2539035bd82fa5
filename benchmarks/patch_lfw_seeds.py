"""How much Patch-LFW's Table 1 rates move with the generator's seed (same pairs, same threshold).

The patches are random: where they land (eyes or cheek) decides much of a pair's fate, so the
FMR / FNMR of a few hundred pairs differ from seed to seed. This generates the same subset with
several seeds and reports the rates at one fixed threshold, to judge whether a difference to
another implementation (a different random stream) is more than seed noise.

    python benchmarks/patch_lfw_seeds.py --pairs 300 --folds 1,2 --seeds 0,1,2,3 --threshold 0.9042537 \
        [--out runs/bench/seeds] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from xaiface.bench import generate_patch_lfw, table1
from xaiface.bench.runner import dataset_embeddings
from xaiface.models import get_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--folds", default="1,2")
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--threshold", type=float, required=True, help="the clean EER threshold of all 6,000 pairs")
    ap.add_argument("--out", default="runs/bench/seeds")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = get_model("dlib-resnet")
    folds = [int(f) - 1 for f in args.folds.split(",")]
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        root = Path(args.out) / f"seed{seed}"
        ds = generate_patch_lfw(root / "data", seed=seed, n_pairs=args.pairs, folds=folds, progress=False)
        t = table1(dataset_embeddings(ds, model, root, progress=False), args.threshold)
        rows.append({"seed": seed, "fmr": t["patched_fmr"], "fnmr": t["patched_fnmr"], "coverage": ds.manifest["mean_coverage"]})
        print(f"seed {seed}: FMR {t['patched_fmr']:.3f}  FNMR {t['patched_fnmr']:.3f}  coverage {ds.manifest['mean_coverage']:.3f}",
              flush=True)
    fmr, fnmr = np.array([r["fmr"] for r in rows]), np.array([r["fnmr"] for r in rows])
    out = {"pairs": args.pairs, "folds": args.folds, "threshold": args.threshold, "seeds": rows,
           "fmr_mean": float(fmr.mean()), "fmr_std": float(fmr.std(ddof=1)) if len(rows) > 1 else None,
           "fnmr_mean": float(fnmr.mean()), "fnmr_std": float(fnmr.std(ddof=1)) if len(rows) > 1 else None}
    print(json.dumps(out, indent=2))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "seeds.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
