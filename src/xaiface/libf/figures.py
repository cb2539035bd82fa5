"""Figures of LIBF-EBM: the patch layout, LFW accuracy beside the deep model, explained pairs.

Pictures only (the numbers come from :mod:`.train` reports and :class:`~xaiface.explain.base.PairExplanation`
data); matplotlib draws on its Agg canvas. Explanation colours follow :mod:`xaiface.explain.visualize`:
green where a patch argues for a match, pink-red where it argues against, opacity proportional to
``|contribution|`` over the pair's largest.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .patches import PATCH_NAMES, PatchLayout, draw_patches

__all__ = ["patch_layout_figure", "accuracy_figure", "explanation_figure"]


def _save(fig: Any, path: str | os.PathLike, dpi: int = 120) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=dpi, bbox_inches="tight")
    return p


def patch_layout_figure(panels: Sequence[tuple[np.ndarray, PatchLayout, str]], path: str | os.PathLike) -> Path:
    """One panel per ``(image, layout, title)``: the eleven patches drawn on the face, with a legend."""
    from matplotlib.figure import Figure

    n = len(panels)
    fig = Figure(figsize=(3.2 * n, 3.9))
    for i, (img, lay, title) in enumerate(panels):
        draw_patches(img, lay, fig.add_subplot(1, n, i + 1), title=title)
    fig.text(0.5, 0.01, "  ".join(f"{j}: {name}" for j, name in enumerate(PATCH_NAMES)) +
             "   (solid: visible; dashed grey: not visible)", ha="center", fontsize=7)
    return _save(fig, path)


def accuracy_figure(report: dict[str, Any], path: str | os.PathLike, deep: dict[str, Any] | None = None) -> Path:
    """LFW 10-fold accuracy of each encoding (mean +- std over folds) beside the deep model's, and wall times.

    Args:
        report: the ``report.json`` of ``xaiface train libf``.
        deep: the ``report.json`` of ``xaiface eval lfw`` (its ``variants``), optional.
    """
    from matplotlib.figure import Figure

    names, means, stds, colours = [], [], [], []
    for enc, e in report.get("encodings", {}).items():
        label = {"concat": "LIBF-EBM\nconcat\n(374-d)", "symmetric": "LIBF-EBM\nsymmetric\n(374-d)",
                 "patch-cosine": "LIBF-EBM\npatch-cosine\n(11-d)"}.get(enc, enc)
        names.append(f"{label}\n{len(e['folds'])} fold{'s' if len(e['folds']) != 1 else ''}")
        means.append(100 * e["mean_accuracy"])
        stds.append(100 * e["std_accuracy"])
        colours.append({"concat": "#4c72b0", "symmetric": "#55a868"}.get(enc, "#dd8452"))
    if deep is not None:
        model = deep.get("model", "deep")
        for key, label in (("select=center,flip=off", "plain"), ("select=center,flip=on", "flip")):
            v = deep.get("variants", {}).get(key)
            if v:
                names.append(f"{model}\n({label})\n10 folds")
                means.append(100 * v["mean_accuracy"])
                stds.append(100 * v["std_accuracy"])
                colours.append("#8c8c8c")
    fig = Figure(figsize=(10, 4.2))
    ax = fig.add_subplot(1, 2, 1)
    x = np.arange(len(names))
    ax.bar(x, means, yerr=stds, color=colours, capsize=4)
    for xi, m, s in zip(x, means, stds):
        ax.text(xi, m + s + 0.8, f"{m:.2f}%", ha="center", fontsize=8)
    ax.axhline(50, color="k", lw=0.6, ls=":")
    ax.set_xticks(x, names, fontsize=7)
    ax.set_ylim(40, 105)
    ax.set_ylabel("LFW View 2 accuracy (%), mean +- std over test folds")
    ax.set_title("LFW 10-fold protocol: train on 9 folds, test on the 10th", fontsize=9)

    ax2 = fig.add_subplot(1, 2, 2)
    t = report.get("timing_s", {})
    method = report.get("settings", {}).get("encoder", "byol")
    bars = [("BYOL" if method == "byol" else "encoder\n(distilled)", t.get("byol_mean")), ("LIBF features\n(all pair photos)",
                                          float(np.mean(list(t.get("libf_features_per_fold", {}).values()) or [np.nan])))]
    for enc, v in (t.get("ebm_fit_mean") or {}).items():
        bars.append((f"EBM fit\n{enc}", v))
    bars = [(n, v) for n, v in bars if v is not None and np.isfinite(v)]
    ax2.bar(range(len(bars)), [v for _, v in bars], color="#c44e52")
    for i, (_, v) in enumerate(bars):
        ax2.text(i, v * 1.02, f"{v:.0f} s", ha="center", fontsize=8)
    ax2.set_xticks(range(len(bars)), [n for n, _ in bars], fontsize=7)
    ax2.set_ylabel("wall time per fold (s), mean over folds")
    ax2.set_title("training cost on this CPU (shared, 2 cores)", fontsize=9)
    return _save(fig, path)


def explanation_figure(explanations: Sequence[Any], titles: Sequence[str], path: str | os.PathLike) -> Path:
    """Rows of ``libf-ebm`` explanations: both crops with coloured patch regions and the patch contributions.

    Args:
        explanations: :class:`~xaiface.explain.base.PairExplanation` objects of method ``libf-ebm``.
        titles: one line per row (e.g. "genuine pair: A vs B").
    """
    from matplotlib.figure import Figure

    from ..explain.visualize import DISSIMILARITY_RGB, SIMILARITY_RGB, overlay

    n = len(explanations)
    fig = Figure(figsize=(12.5, 3.6 * n))
    for r, (e, title) in enumerate(zip(explanations, titles)):
        c = np.array([e.extra["patch_contributions"][p] for p in PATCH_NAMES])
        scale = float(np.abs(c).max()) or 1.0
        for i, face in enumerate((e.pair.a, e.pair.b)):
            ax = fig.add_subplot(n, 3, 3 * r + i + 1)
            m = e.combined_maps[i]
            ax.imshow(overlay(face.image, m / scale))
            lay = e.extra["layout"][i]
            for j, ctr in enumerate(lay["centers"]):
                ax.text(ctr[0], ctr[1], str(j), fontsize=6, ha="center", va="center", color="white")
            ax.set_axis_off()
            src = Path(face.source).name if face.source else "AB"[i]
            ax.set_title(f"{'AB'[i]}: {src}", fontsize=8)
        ax = fig.add_subplot(n, 3, 3 * r + 3)
        col = [tuple(np.array(SIMILARITY_RGB) / 255) if v >= 0 else tuple(np.array(DISSIMILARITY_RGB) / 255) for v in c]
        y = np.arange(len(c))
        ax.barh(y, c, color=col)
        ax.set_yticks(y, [f"{j} {p}" for j, p in enumerate(PATCH_NAMES)], fontsize=7)
        ax.invert_yaxis()
        ax.axvline(0, color="k", lw=0.6)
        ax.set_xlabel("contribution to the logit", fontsize=8)
        ex = e.extra
        ax.set_title(f"logit {ex['logit']:+.2f} = intercept {ex['intercept']:+.2f} + patches\n"
                     f"p(match) {ex['probability']:.3f} -> {'match' if e.match else 'no match'}", fontsize=8)
        fig.text(0.01, 1 - (r + 0.02) / n, title, fontsize=9, va="top", weight="bold")
    fig.subplots_adjust(hspace=0.45, wspace=0.5, top=0.93)
    return _save(fig, path)
