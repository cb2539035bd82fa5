"""Why the pixel-gradient maps miss Patch-LFW's planted patches: what each map predicts against
what the planted content actually does to the score.

For Patch-LFW pairs of a benchmark folder (patched image P, its original O, the partner B, the
planted mask M), the crop is cut into cells of the patch size (21 px at 150: a 7 x 7 grid). For
each cell holding planted pixels, the *actual* effect of its planted content is measured by one
forward: ``a_c = s(P) - s(P with the cell's planted pixels restored from O)`` (> 0: the planted
content raised the similarity). Each method's prediction of ``a_c`` is its combined map summed
over the cell's planted pixels; for the plain gradient also the first-order Taylor term
``sum g . (P - O)`` over those pixels (what a gradient *can* say about the change) and the
unsigned |gradient| mass (what the ``gradient`` map ranks by). The pairs are development pairs:
Patch-LFW pairs of the 1,200-pair selection that are not among the 600 the tables are computed on.

Printed per model: the median over pairs of the Spearman correlation between ``a_c`` and each
prediction over the pair's planted cells; the cell-level AUROC of "planted" (label-signed
evidence, as the benchmark's pixel AUROC); how linear the score is over a patch
(``median |taylor - a| / |a|``); and how much each map is the same map whatever the patches
(Pearson correlation of a pair's map with the mean map over the pairs: a face template); and
where the |gradient| lies: its mean on the patches' seams (within 2 px of the planted mask's
edge), inside the patches and elsewhere, relative to elsewhere. A figure shows examples and the
correlations.

    xaiface bench patch-lfw-generate --pairs 1200 --out runs/dev/patch-lfw-dlib-150
    python benchmarks/why_gradients_miss.py --bench runs/dev --model dlib-resnet --pairs 100 \
        --out docs/results/explainers/why-gradients-miss-dlib-resnet
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import binary_dilation, binary_erosion
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from xaiface.bench.patch_lfw import PatchLFW
from xaiface.explain import Verifier, get_explainer
from xaiface.models import get_model

METHODS = ("gradient", "xssab", "fggb", "simcam", "hirescam", "gradcam", "ig", "corrrise")


def _t(im: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)[None].float()


def pick_pairs(ds: PatchLFW, n: int, exclude: frozenset[int] = frozenset()) -> list:
    """The first n / 20 genuine and impostor pairs of each fold, leaving out ``exclude``."""
    per = max(1, n // 20)
    out = []
    for fold in ds.folds:
        pairs = [p for p in ds.pairs if p.fold == fold and p.index not in exclude]
        for same in (True, False):
            out += [p for p in pairs if p.same == same][:per]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", required=True, help="benchmark folder holding patch-lfw-<geometry>")
    ap.add_argument("--model", default="dlib-resnet")
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--corrrise-pairs", type=int, default=20, help="pairs corrrise runs on (about 1,000 forwards each)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = get_model(args.model)
    geometry = model.spec.preprocessing.geometry
    ds = PatchLFW(Path(args.bench) / f"patch-lfw-{geometry}")
    verifier = Verifier(model, threshold="eer")
    methods = [m for m in args.methods.split(",") if m]
    explainers = {m: get_explainer(m, verifier) for m in methods}
    from xaiface.bench.status import subset_pairs

    # development pairs: none of the 600 the benchmark's tables are computed on
    pairs = pick_pairs(ds, args.pairs, exclude=subset_pairs(600))
    if len(pairs) < args.pairs:
        raise SystemExit(f"{ds.root}: only {len(pairs)} pairs outside the 600-pair subset; generate more with "
                         f"`xaiface bench patch-lfw-generate --pairs 1200 --model {args.model} --out {ds.root}`")
    p = ds.patch_size
    s = ds.size
    k = s // p
    rows: list[dict] = []
    maps_kept: dict[str, list[np.ndarray]] = {m: [] for m in ["|gradient|"] + methods}
    examples = []
    t0 = time.perf_counter()
    for n, pp in enumerate(pairs):
        fold = ds.fold(pp.fold)
        P, O, B, M = (fold.get(x, pp.index) for x in ("patched", "clean_a", "clean_b", "mask"))
        with torch.no_grad():
            eb = F.normalize(model(_t(B)), dim=1)
        x = _t(P).requires_grad_(True)
        s_p = (F.normalize(model(x), dim=1) * eb).sum()
        (g,) = torch.autograd.grad(s_p, x)
        g = g[0].permute(1, 2, 0).numpy()
        diff = (P.astype(np.float32) - O.astype(np.float32))
        cells, restored = [], []
        for i in range(k):
            for j in range(k):
                cm = np.zeros_like(M)
                cm[i * p:(i + 1) * p, j * p:(j + 1) * p] = True
                planted = cm & M
                if planted.sum() < 0.25 * p * p:
                    continue
                r = P.copy()
                r[planted] = O[planted]
                cells.append(planted)
                restored.append(r)
        if len(cells) < 3:
            continue
        with torch.no_grad():
            e_r = F.normalize(model(torch.cat([_t(r) for r in restored])), dim=1)
        a = float(s_p) - (e_r @ eb[0]).numpy()
        taylor = np.array([(g[c] * diff[c]).sum() for c in cells])
        absg = np.abs(g).mean(axis=2)
        # where |gradient| sits: on the planted patches' seams (within 2 px of the mask's edge,
        # inside or out), inside the patches away from the seams, or elsewhere
        seam = binary_dilation(M, iterations=2) & ~binary_erosion(M, iterations=2)
        interior, outside = M & ~seam, ~M & ~seam
        seams = {"seam": float(absg[seam].mean()), "interior": float(absg[interior].mean()) if interior.any() else float("nan"),
                 "outside": float(absg[outside].mean())}
        preds = {"taylor (g . (P - O))": taylor, "|gradient|": np.array([absg[c].sum() for c in cells])}
        maps_kept["|gradient|"].append(absg)
        sign = -1.0 if pp.same else 1.0  # label-signed evidence for "planted", as the benchmark's AUROC
        auroc = {}
        grid_planted = np.array([[(M[i * p:(i + 1) * p, j * p:(j + 1) * p]).mean() >= 0.25 for j in range(k)] for i in range(k)])
        for m, ex in explainers.items():
            if m == "corrrise" and sum(1 for r_ in rows if "corrrise" in r_["spearman"]) >= args.corrrise_pairs:
                continue
            cmap = ex.explain((P, B), images=(0,)).combined_maps[0]
            maps_kept[m].append(cmap)
            preds[m] = np.array([cmap[c].sum() for c in cells])
            cellmass = np.array([[cmap[i * p:(i + 1) * p, j * p:(j + 1) * p].mean() for j in range(k)] for i in range(k)])
            if grid_planted.any() and not grid_planted.all():
                auroc[m] = float(roc_auc_score(grid_planted.ravel(), sign * cellmass.ravel()))
        rho = {name: float(spearmanr(v, a).statistic) for name, v in preds.items() if np.std(v) > 0 and np.std(a) > 0}
        rel = float(np.median(np.abs(taylor - a) / np.maximum(np.abs(a), 1e-4)))
        rows.append({"index": pp.index, "same": pp.same, "cells": len(cells), "spearman": rho, "cell_auroc": auroc,
                     "abs_gradient_mean": seams,
                     "taylor_rel_error": rel, "a_mean_abs": float(np.abs(a).mean()), "taylor_mean_abs": float(np.abs(taylor).mean())})
        if len(examples) < 3 and (pp.same if len(examples) % 2 == 0 else not pp.same):
            examples.append((P, M, absg, {m: maps_kept[m][-1] for m in methods if maps_kept[m]}, pp.same))
        print(f"{n + 1}/{len(pairs)} pair {pp.index} ({'genuine' if pp.same else 'impostor'}): "
              + ", ".join(f"{kk} {v:+.2f}" for kk, v in rho.items()), flush=True)
    summary = summarise(rows, maps_kept, args, time.perf_counter() - t0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({"summary": summary, "pairs": rows}, indent=1))
    print(json.dumps(summary, indent=1))
    figure(summary, examples, out / "why-gradients-miss.png", args.model)


def summarise(rows: list[dict], maps_kept: dict[str, list[np.ndarray]], args, seconds: float) -> dict:
    names = sorted({k for r in rows for k in r["spearman"]})
    out = {"model": args.model, "pairs": len(rows), "seconds": round(seconds, 1),
           "command": f"python benchmarks/why_gradients_miss.py --bench {args.bench} --model {args.model} --pairs {args.pairs} --out {args.out}",
           "median_spearman_actual_vs_predicted": {}, "pairs_with": {}, "median_cell_auroc": {}, "template_correlation": {}}
    for nm in names:
        v = [r["spearman"][nm] for r in rows if nm in r["spearman"] and np.isfinite(r["spearman"][nm])]
        out["median_spearman_actual_vs_predicted"][nm] = round(float(np.median(v)), 3)
        out["pairs_with"][nm] = len(v)
    for m in sorted({k for r in rows for k in r["cell_auroc"]}):
        out["median_cell_auroc"][m] = round(float(np.mean([r["cell_auroc"][m] for r in rows if m in r["cell_auroc"]])), 3)
    for where in ("seam", "interior", "outside"):
        out.setdefault("abs_gradient_mean_relative_to_outside", {})[where] = round(float(np.nanmedian(
            [r["abs_gradient_mean"][where] / r["abs_gradient_mean"]["outside"] for r in rows])), 3)
    out["taylor_median_relative_error"] = round(float(np.median([r["taylor_rel_error"] for r in rows])), 3)
    out["actual_effect_mean_abs"] = round(float(np.mean([r["a_mean_abs"] for r in rows])), 4)
    out["taylor_effect_mean_abs"] = round(float(np.mean([r["taylor_mean_abs"] for r in rows])), 4)
    for m, ms in maps_kept.items():
        if len(ms) < 3:
            continue
        stack = np.stack([x / (np.abs(x).max() + 1e-12) for x in ms])
        mean = stack.mean(axis=0)
        cors = [float(np.corrcoef(x.ravel(), mean.ravel())[0, 1]) for x in stack]
        out["template_correlation"][m] = round(float(np.median(cors)), 3)
    return out


def figure(summary: dict, examples: list, path: Path, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = ["|gradient|"] + [m for m in ("xssab", "hirescam", "corrrise") if examples and m in examples[0][3]]
    fig = plt.figure(figsize=(3 + 2.2 * (len(cols) + 1), 2.4 * max(1, len(examples)) + 0.5))
    gs = fig.add_gridspec(max(1, len(examples)), len(cols) + 2, width_ratios=[1] * (len(cols) + 1) + [2.2])
    for r, (P, M, absg, maps, same) in enumerate(examples):
        ax = fig.add_subplot(gs[r, 0])
        ax.imshow(P)
        ax.contour(M, levels=[0.5], colors="yellow", linewidths=0.6)
        ax.set_title(f"{'genuine' if same else 'impostor'}: planted", fontsize=8)
        ax.axis("off")
        for c, m in enumerate(cols):
            ax = fig.add_subplot(gs[r, c + 1])
            mm = absg if m == "|gradient|" else maps[m]
            if m == "|gradient|":
                ax.imshow(mm, cmap="magma")
            else:
                v = np.abs(mm).max() + 1e-12
                ax.imshow(mm, cmap="PiYG", vmin=-v, vmax=v)  # green similar, pink dissimilar
            ax.contour(M, levels=[0.5], colors="cyan", linewidths=0.5)
            ax.set_title(m, fontsize=8)
            ax.axis("off")
    ax = fig.add_subplot(gs[:, -1])
    d = summary["median_spearman_actual_vs_predicted"]
    names = list(d)
    ax.barh(range(len(names)), [d[n] for n in names], color=["tab:gray" if "gradient" in n or "taylor" in n else "tab:green" for n in names])
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel("median Spearman: predicted vs actual\neffect of a cell's planted pixels", fontsize=8)
    ax.set_title(f"{model}, {summary['pairs']} pairs", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("figure:", path)


if __name__ == "__main__":
    main()
