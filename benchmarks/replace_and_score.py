"""Throughput of Patch-LFW's replace-and-score stage against the model's pure forward, same run, same batch size.

For real Patch-LFW pairs with their maps already computed (seeded random maps: the stage's cost
does not depend on the values), :class:`xaiface.bench.PairScorer` builds every DPR, deletion and
insertion image of a pair in memory and scores them in one forward against the partner's known
embedding. Its rate (images passed through the network per second) is compared with the model's
pure forward (``model(x)`` plus L2 normalisation) on ready-made tensors of the same batch size.
The two are measured interleaved, pair by pair, so that load from other jobs on a shared machine
hits both alike; the medians of the per-repeat rates are reported. The eager network (``frozen_inference``
off, as before the frozen TorchScript path) is timed in the same loop, so the speed-up of the frozen path
is a same-run ratio too.

    python benchmarks/replace_and_score.py [--pairs 24] [--repeat 5] [--threads 1] [--jpeg]
        [--dataset runs/bench/patch-lfw-dlib-150] [--json out.json]

Without ``--dataset`` (or when it does not exist) a small Patch-LFW is generated in a
temporary folder. Goal: ratio >= 0.85.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from xaiface.bench import PairScorer, PatchLFW, generate_patch_lfw
from xaiface.models import get_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="runs/bench/patch-lfw-dlib-150")
    ap.add_argument("--pairs", type=int, default=24, help="pairs per repeat (first of fold 1, genuine and impostor)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default torch's)")
    ap.add_argument("--jpeg", action="store_true", help="also time the JPEG re-encoding mode")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = get_model("dlib-resnet").eval()
    eager = get_model("dlib-resnet").eval()
    eager.frozen_inference = False

    root = Path(args.dataset)
    if not (root / "manifest.json").is_file():
        half = args.pairs // 2
        root = Path(tempfile.mkdtemp()) / "plfw"
        generate_patch_lfw(root, pair_indices=list(range(half)) + list(range(300, 300 + args.pairs - half)), progress=False)
    ds = PatchLFW(root)
    fold = ds.fold(ds.pairs[0].fold)
    idx = [int(i) for i in fold.arrays["pair_index"]]
    same_of = {q.index: q.same for q in ds.pairs}
    gen = [i for i in idx if same_of[i]][: args.pairs // 2]
    imp = [i for i in idx if not same_of[i]][: args.pairs - len(gen)]
    pairs = gen + imp
    rng = np.random.default_rng(0)
    maps = {i: rng.standard_normal((ds.size, ds.size)).astype(np.float32) for i in pairs}

    def crops(i):
        return [fold.get(k, i) for k in ("patched", "clean_a", "clean_b", "mask")]

    with torch.inference_mode():
        embs = {i: F.normalize(model(torch.from_numpy(np.stack(crops(i)[:3])).permute(0, 3, 1, 2).float()), dim=1) for i in pairs}
    modes = [("lossless", PairScorer(model))] + ([("jpeg", PairScorer(model, jpeg=True))] if args.jpeg else [])
    results: dict[str, dict] = {}
    for name, scorer in modes:
        # the batch each pair's forward gets; the pure forward is timed on tensors of that size
        sizes = {}
        for i in pairs[:2]:
            p, o, b, m = crops(i)
            sizes[i] = scorer.score(p, o, b, maps[i], same_of[i], i % 2 == 0, mask=m, e_patched=embs[i][0],
                                    e_original=embs[i][1], e_partner=embs[i][2]).n_forward
        stage_rates, fwd_rates, eager_rates, n_imgs = [], [], [], []
        for _ in range(args.repeat):
            t_stage = t_fwd = t_eager = 0.0
            n = 0
            for i in pairs:
                p, o, b, m = crops(i)
                t = time.perf_counter()
                r = scorer.score(p, o, b, maps[i], same_of[i], i % 2 == 0, mask=m, e_patched=embs[i][0],
                                 e_original=embs[i][1], e_partner=embs[i][2])
                t_stage += time.perf_counter() - t
                x = torch.from_numpy(np.repeat(p[None], r.n_forward, axis=0)).permute(0, 3, 1, 2).float()
                with torch.inference_mode():
                    t = time.perf_counter()
                    F.normalize(model(x), dim=1)
                    t_fwd += time.perf_counter() - t
                    t = time.perf_counter()
                    F.normalize(eager(x), dim=1)
                    t_eager += time.perf_counter() - t
                n += r.n_forward
            stage_rates.append(n / t_stage)
            fwd_rates.append(n / t_fwd)
            eager_rates.append(n / t_eager)
            n_imgs.append(n / len(pairs))
        s, f, e = statistics.median(stage_rates), statistics.median(fwd_rates), statistics.median(eager_rates)
        results[name] = {"images_per_pair": float(np.mean(n_imgs)), "stage_images_per_s": round(s, 1),
                         "forward_images_per_s": round(f, 1), "ratio": round(s / f, 3),
                         "ratio_per_repeat": [round(a / b, 3) for a, b in zip(stage_rates, fwd_rates)],
                         "pairs_per_s": round(s / float(np.mean(n_imgs)), 2),
                         "eager_forward_images_per_s": round(e, 1), "frozen_speedup": round(f / e, 3),
                         "stage_vs_eager_forward": round(s / e, 3)}
        print(f"{name:<9} {results[name]['images_per_pair']:.0f} images/pair (one forward each): stage {s:.1f} img/s, "
              f"pure forward {f:.1f} img/s, ratio {s / f:.3f} (per repeat {results[name]['ratio_per_repeat']}); "
              f"{s / float(np.mean(n_imgs)):.2f} pairs/s; eager forward {e:.1f} img/s (frozen path {f / e:.2f}x)")
    out = {"threads": torch.get_num_threads(), "pairs": len(pairs), "repeat": args.repeat, "dataset": str(root), **results}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
