"""Figures of the influencing-factor stage: a gallery of transforms and a study's curves."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..io.files import savefig_atomic
from .transforms import factor_info, get_transform, list_factors, psnr


def transform_gallery(image: np.ndarray, out: str | os.PathLike, factors: Sequence[str] | None = None,
                      crop: tuple[int, int, int, int] | None = None, title: str | None = None, dpi: int = 110) -> Path:
    """One photo under each factor at its two gallery levels (mild, strong), with PSNR and bpp.

    Args:
        image: RGB uint8 photo. factors: which (default: every registered built-in factor).
        crop: ``x1, y1, x2, y2`` shown of each result (default: the whole photo).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(factors) if factors else [n for n in list_factors() if factor_info(n).family != "plugin"]
    ncol = 6
    cells: list[tuple[str, np.ndarray]] = [("original", image)]
    for n in names:
        info = factor_info(n)
        for lv in info.gallery_levels:
            r = get_transform(n, lv)(image)
            p = psnr(image, r.image)
            label = f"{n} {lv:g}\n" + (f"{r.bpp:.2f} bpp, " if r.bpp is not None else "") + f"{p:.1f} dB"
            cells.append((label, r.image))
    nrow = int(np.ceil(len(cells) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.2 * ncol, 2.5 * nrow))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, (label, im) in zip(np.ravel(axes), cells):
        if crop is not None:
            x1, y1, x2, y2 = crop
            im = im[y1:y2, x1:x2]
        ax.imshow(im)
        ax.set_title(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    savefig_atomic(fig, out, dpi=dpi)
    plt.close(fig)
    return out


def _short(meaning: str) -> str:
    """An axis label from a factor's level description (the part before a colon)."""
    return meaning.split(":")[0].strip()


def plot_study(summary: dict[str, Any], out: str | os.PathLike) -> Path:
    """A study's curves: EER, FMR and FNMR at the clean threshold, detection failures and
    explanation drift against the level (and EER against bits per pixel for codecs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = summary["levels"]
    rows = [r for r in levels if r["level"] != "clean"]
    x = [float(r["level"]) for r in rows]
    codec = all(r.get("bpp") is not None for r in rows) and bool(rows)
    clean = next(r for r in levels if r["level"] == "clean")
    n = 4 if codec else 3
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6))
    ax = axes[0]
    for key, style in (("eer", "o-"), ("fmr", "s--"), ("fnmr", "^--")):
        ax.plot(x, [100 * r[key] for r in rows], style, label=key.upper() + ("" if key == "eer" else " @ clean thr."))
        ax.axhline(100 * clean[key], color=ax.lines[-1].get_color(), lw=0.8, ls=":")
    ax.set_xlabel(_short(summary["level_meaning"]))
    ax.set_ylabel("%")
    ax.set_title(f"{summary['factor']}: error rates (dotted: clean)")
    ax.legend(fontsize=7)
    if summary.get("degrade") == "lower":
        ax.invert_xaxis()
    ax = axes[1]
    if all(r.get("detection_failure_rate") is not None for r in rows):
        ax.plot(x, [100 * r["detection_failure_rate"] for r in rows], "o-", color="tab:red")
        ax.axhline(100 * clean["detection_failure_rate"], color="tab:red", lw=0.8, ls=":")
    else:
        ax.text(0.5, 0.5, "clean landmarks reused:\nno detection rerun", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(_short(summary["level_meaning"]))
    ax.set_ylabel("% of transformed photos")
    ax.set_title("no face detected")
    if summary.get("degrade") == "lower":
        ax.invert_xaxis()
    ax = axes[2]
    drift = [r for r in rows if r.get("drift")]
    if drift:
        dx = [float(r["level"]) for r in drift]
        ax.plot(dx, [r["drift"]["spearman_mean"] for r in drift], "o-", label="Spearman rho")
        ax.plot(dx, [r["drift"]["top10_overlap_mean"] for r in drift], "s-", label="top-10% overlap")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
        if summary.get("degrade") == "lower":
            ax.invert_xaxis()
    else:
        ax.text(0.5, 0.5, "no drift measured", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(_short(summary["level_meaning"]))
    ax.set_title("xSSAB map drift vs clean")
    if codec:
        ax = axes[3]
        ax.plot([r["bpp"] for r in rows], [100 * r["eer"] for r in rows], "o-")
        for r in rows:
            ax.annotate(f"{float(r['level']):g}", (r["bpp"], 100 * r["eer"]), fontsize=7)
        ax.axhline(100 * clean["eer"], color="k", lw=0.8, ls=":")
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel("EER %")
        ax.set_title("EER vs rate")
    fig.tight_layout()
    out = Path(out)
    savefig_atomic(fig, out, dpi=110)
    plt.close(fig)
    return out


def plot_studies(summaries: Sequence[dict[str, Any]], out: str | os.PathLike) -> Path:
    """EER of several studies against their levels, one panel each, plus EER vs bpp for codecs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(summaries)
    codecs = [s for s in summaries if all(r.get("bpp") is not None for r in s["levels"] if r["level"] != "clean")]
    n = k + (1 if codecs else 0)
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    fig, grid = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow), squeeze=False)
    axes = [list(np.ravel(grid))]
    for ax in axes[0][n:]:
        ax.axis("off")
    for ax, s in zip(axes[0], summaries):
        rows = [r for r in s["levels"] if r["level"] != "clean"]
        clean = next(r for r in s["levels"] if r["level"] == "clean")
        ax.plot([float(r["level"]) for r in rows], [100 * r["eer"] for r in rows], "o-")
        ax.axhline(100 * clean["eer"], color="k", lw=0.8, ls=":")
        ax.set_title(f"{s['factor']} ({s['pairs']} pairs)", fontsize=9)
        ax.set_xlabel(_short(s["level_meaning"]), fontsize=7)
        ax.set_ylabel("EER %")
        if s.get("degrade") == "lower":
            ax.invert_xaxis()
    if codecs:
        ax = axes[0][n - 1]
        for s in codecs:
            rows = [r for r in s["levels"] if r["level"] != "clean"]
            ax.plot([r["bpp"] for r in rows], [100 * r["eer"] for r in rows], "o-", label=f"{s['factor']} ({s['pairs']} pairs)")
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel("EER %")
        ax.set_title("EER vs rate")
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(out)
    savefig_atomic(fig, out, dpi=110)
    plt.close(fig)
    return out
