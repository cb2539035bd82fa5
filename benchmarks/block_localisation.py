"""How often each method's map finds a block of another identity planted in a genuine pair.

Same pairs and seed as tests/explain/test_localisation.py (10 genuine LFW pairs; a 45x45 block
over nose and mouth of the first 150 px chip replaced by another person's). A hit: the map's
mean inside the block exceeds its mean outside. Dissimilarity maps, except for ``gradient``
(whose only map is |d similarity / d pixel|, reported as its similarity map).

    python benchmarks/block_localisation.py [--n 10] [--methods xssab,gradient,...] [--model mobileface]

At another model's crop the block keeps its place and its fraction of the crop (0.3 of the side).
"""
from __future__ import annotations

import argparse
import time

from xaiface.explain import Verifier, explainer_info, get_explainer, list_explainers
from xaiface.explain.sanity import localisation_rate, planted_pairs
from xaiface.models import get_model
from xaiface.pipeline import FacePipeline


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default=None)
    ap.add_argument("--model", default="dlib-resnet")
    args = ap.parse_args()
    model = get_model(args.model)
    planted = planted_pairs(FacePipeline(model, threshold=0.9), n=args.n, seed=args.seed)
    verifier = Verifier(model, threshold="eer")
    methods = args.methods.split(",") if args.methods else [m for m in list_explainers() if explainer_info(m).family not in ("interpretable", "amortised")]
    print(f"model {args.model}, {args.n} planted pairs, seed {args.seed}")
    print("| method | map | hits / pairs | seconds |")
    print("|---|---|---:|---:|")
    for m in methods:
        kind = "similarity" if m == "gradient" else "dissimilarity"
        t = time.perf_counter()
        hits, n = localisation_rate(get_explainer(m, verifier), planted, kind=kind)
        print(f"| {m} | {kind} | {hits}/{n} | {time.perf_counter() - t:.0f} |", flush=True)


if __name__ == "__main__":
    main()
