"""Explanation latency per pair, for every registered method, with the costs that bound it.

For each model (the default dlib-resnet at 150 px on real LFW chips; a randomly initialised
iresnet100 at 112 px on real LFW ArcFace crops), measured in one run with the same threads:

* per method: median milliseconds per explanation over the pairs, forwards and backward passes;
* the reference xSSAB structure (abridged code of Huber et al.): 12 forwards and 4 backwards,
  one image at a time (3 forwards and 1 backward per map, 4 maps);
* the limit for xSSAB: one forward+backward of a batch of 4 aligned faces;
* for black-box methods, the pure forward time of their own masked batches: the time spent
  inside the model's forward calls during the explanation, against the explanation's total.

    python benchmarks/explain_latency.py                       # everything, default sizes
    python benchmarks/explain_latency.py --methods xssab,gradient --pairs 10
    python benchmarks/explain_latency.py --models dlib-resnet --bb-pairs 3
    python benchmarks/explain_latency.py --models iresnet100 --bb-pairs 1 --bb-light iresnet100

Black-box methods cost hundreds to thousands of forwards per pair; ``--bb-pairs`` (default 3 on
dlib-resnet, 1 on iresnet100) limits how many pairs they run on, and the table says how many.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from common import median, time_it
from xaiface.datasets import LFW
from xaiface.explain import Verifier, explainer_info, get_explainer, list_explainers
from xaiface.models import get_model
from xaiface.pipeline import FacePipeline

BLACK_BOX = {"xface1", "xface2", "xface3", "corrrise", "rise"}
#: reduced settings for black-box methods on slow models (--bb-light): the ratio to the pure
#: forward time is what they measure there, not the full cost
LIGHT = {"xface1": {"patch_sizes": (28,)}, "xface2": {"patch_sizes": (28,)}, "xface3": {"patch_sizes": (28,)},
         "corrrise": {"n_masks": 200}, "rise": {"n_masks": 500}}


def lfw_crops(n_pairs: int, geometry_model, data=None) -> list[tuple[np.ndarray, np.ndarray]]:
    pipe = FacePipeline(geometry_model, threshold=0.0, cache=True)
    out = []
    for p in LFW(data).pairs()[:: max(1, 6000 // n_pairs)][:n_pairs]:
        out.append((pipe.align(p.path_a, select="center").image, pipe.align(p.path_b, select="center").image))
    return out


def reference_structure(verifier: Verifier, a: np.ndarray, b: np.ndarray) -> None:
    """The reference code's structure: per map (i+, i-, j+, j-) two clean forwards and one with grad."""
    def px(c):
        return torch.from_numpy(c).permute(2, 0, 1)[None].float()

    th = verifier.threshold
    for me, other in ((a, b), (b, a)):
        for sign in (1, -1):
            with torch.no_grad():
                e_me = F.normalize(verifier.model(px(me)), dim=1)[0]
                e_other = F.normalize(verifier.model(px(other)), dim=1)[0]
            arg = e_me * e_other
            keep = (arg >= th / arg.numel()) if sign > 0 else (arg < th / arg.numel())
            x = px(me).requires_grad_(True)
            (F.normalize(verifier.model(x), dim=1)[0] * (e_other * keep)).sum().backward()
            x.grad.abs().mean(1)


def fwd_bwd_batch4(model, crops) -> None:
    x = torch.from_numpy(np.stack([crops[0][0], crops[0][1], crops[1][0], crops[1][1]])).permute(0, 3, 1, 2).float()
    x.requires_grad_(True)
    model(x).sum().backward()


def bench_model(name: str, args, methods: list[str]) -> list[dict]:
    from xaiface.models import model_spec

    spec = model_spec(name)
    model = get_model(name, weights="random" if spec.weights_required else None)  # iresnet: random weights
    verifier = Verifier(model, threshold="eer" if spec.thresholds else 0.3)
    n_bb = args.bb_pairs if args.bb_pairs is not None else (3 if name == "dlib-resnet" else 1)
    crops = lfw_crops(max(args.pairs, 2), model)
    rows = []
    # the reference structure, the limit and xSSAB are timed interleaved, pair by pair, so that
    # load changes on a shared 2-core machine hit all three alike
    xs = get_explainer("xssab", verifier)
    xs.explain(crops[0])
    fwd_bwd_batch4(model, crops)
    reference_structure(verifier, *crops[0])
    t_ref, t_lim, t_xs = [], [], []
    for c in crops:
        for _ in range(args.repeat):
            t_ref.append(median(time_it(lambda: reference_structure(verifier, *c), 1, 0)))
            t_lim.append(median(time_it(lambda: fwd_bwd_batch4(model, [c, c]), 1, 0)))
            t_xs.append(median(time_it(lambda: xs.explain(c), 1, 0)))
    ref, limit, xs_ms = statistics.median(t_ref), statistics.median(t_lim), statistics.median(t_xs)
    rows.append({"model": name, "method": "reference xSSAB structure (12 fwd + 4 bwd, one image at a time)",
                 "pairs": len(crops), "ms": 1000 * ref, "forwards": 12, "backwards": 4})
    rows.append({"model": name, "method": "limit: forward+backward of a batch of 4", "pairs": len(crops),
                 "ms": 1000 * limit, "forwards": 4, "backwards": 4})
    for m in methods:
        kw = {"batch_size": args.batch_size} if m in BLACK_BOX else {}
        kw.update(args.params.get(m, {}).get(name, {}))
        light = m in BLACK_BOX and name in (args.bb_light or "").split(",")
        if light:
            kw.update(LIGHT[m])
        ex = get_explainer(m, verifier, **kw)
        use = crops[:n_bb] if m in BLACK_BOX else crops
        ex.explain(use[0])  # warm-up (mask sets, allocator)
        times, fw, bw = [], 0, 0
        in_forward = [0.0]
        embed = ex._embed

        def timed_embed(x, cost, _embed=embed):  # the time spent inside the model's forwards
            t = time.perf_counter()
            out = _embed(x, cost)
            in_forward[0] += time.perf_counter() - t
            return out

        ex._embed = timed_embed
        fwd_times = []
        for c in use:
            in_forward[0] = 0.0
            t = time.perf_counter()
            r = ex.explain(c)
            times.append(time.perf_counter() - t)
            fwd_times.append(in_forward[0])
            fw, bw = r.n_forward, r.n_backward
        row = {"model": name, "method": m + (f" (light: {LIGHT[m]})" if light else ""), "pairs": len(use), "ms": 1000 * statistics.median(times), "forwards": fw, "backwards": bw}
        if m in BLACK_BOX:
            pure = statistics.median(fwd_times)
            row["pure_forward_ms"] = 1000 * pure
            row["x_pure_forward"] = row["ms"] / (1000 * pure)
        if m == "xssab":
            row["ms"] = 1000 * xs_ms
            row["x_reference"] = xs_ms / ref
            row["x_limit"] = xs_ms / limit
        rows.append(row)
        print(f"  {name:<12} {m:<10} {row['ms']:9.1f} ms  ({len(use)} pairs)", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="dlib-resnet,iresnet100")
    ap.add_argument("--methods", default=None, help="comma-separated (default: all registered)")
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--bb-pairs", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--bb-light", default="", help="models (comma-separated) on which black-box methods run reduced settings")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved repeats per pair for xssab / reference / limit")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("--param", action="append", default=[], metavar="METHOD.NAME=VALUE[@MODEL]",
                    help="an explainer parameter, for one model with @MODEL (e.g. corrrise-student.weights=s.pt@dlib-resnet)")
    args = ap.parse_args()
    args.params = {}
    for p in args.param:
        key, _, val = p.partition("=")
        val, _, model = val.partition("@")
        method, _, pname = key.partition(".")
        for mname in (model.split(",") if model else args.models.split(",")):
            args.params.setdefault(method, {}).setdefault(mname, {})[pname] = val
    torch.set_num_threads(args.threads)
    methods = args.methods.split(",") if args.methods else [m for m in list_explainers() if explainer_info(m).family not in ("interpretable", "amortised")]
    rows = []
    for name in args.models.split(","):
        rows += bench_model(name, args, methods)
    print(f"\n{torch.get_num_threads()} torch threads; medians per pair\n")
    print("| model | method | pairs | ms / pair | forwards | backwards | vs reference | vs limit | pure forward ms | x pure forward |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        f = lambda k, fmt: (fmt.format(r[k]) if k in r else "")  # noqa: E731
        print(f"| {r['model']} | {r['method']} | {r['pairs']} | {r['ms']:.1f} | {r['forwards']} | {r['backwards']} | "
              f"{f('x_reference', '{:.2f}x')} | {f('x_limit', '{:.2f}x')} | {f('pure_forward_ms', '{:.0f}')} | {f('x_pure_forward', '{:.2f}x')} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
