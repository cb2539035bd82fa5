"""Pictures of this stage (matplotlib, Agg): a pair's trait explanation, error rates by group,
estimator accuracy. The numbers come from the data functions; these only draw them."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .pair import SoftBiometricExplanation

SHARED = "#1a7f37"
DIFFER = "#b4235a"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike, dpi: int) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=dpi, bbox_inches="tight")
    _plt().close(fig)
    return p


def face_thumbnail(photo: np.ndarray, face: Any, size: int = 150) -> np.ndarray:
    """dlib's aligned chip of ``face`` (padding 0.25) for display, or the photo when it has no face."""
    from .dlib_age_gender import dlib_face_chip

    if face is None:
        return photo
    return dlib_face_chip(photo, face, size, 0.25)


def explanation_figure(expl: SoftBiometricExplanation, path: str | os.PathLike,
                       photos: Sequence[np.ndarray] | None = None, dpi: int = 120) -> Path:
    """Both faces (aligned chips) over their traits: shared in green, differing in pink."""
    from ..io import load_image

    plt = _plt()
    fa, fb = expl.traits_a, expl.traits_b
    if photos is None:
        photos = [load_image(fa.source) if fa.source else None, load_image(fb.source) if fb.source else None]
    thumbs = [None if p is None else face_thumbnail(p, t.face) for p, t in zip(photos, (fa, fb))]
    rows = list(expl.comparisons.values())
    fig = plt.figure(figsize=(6.4, 3.2 + 0.42 * len(rows)))
    gs = fig.add_gridspec(2, 2, height_ratios=[3.0, 0.5 + 0.42 * len(rows)])
    for i, (th, t) in enumerate(zip(thumbs, (fa, fb))):
        ax = fig.add_subplot(gs[0, i])
        if th is not None:
            ax.imshow(th)
        ax.set_xticks([])
        ax.set_yticks([])
        name = Path(t.source).name if t.source else f"face {'AB'[i]}"
        ax.set_title(f"{'AB'[i]}: {name}", fontsize=8)
    ax = fig.add_subplot(gs[1, :])
    ax.axis("off")
    colour = {True: SHARED, False: DIFFER}
    ax.text(0.0, 1.0, "trait", fontsize=9, weight="bold", va="top")
    ax.text(0.22, 1.0, "A (confidence)", fontsize=9, weight="bold", va="top")
    ax.text(0.50, 1.0, "B (confidence)", fontsize=9, weight="bold", va="top")
    ax.text(0.78, 1.0, "pair", fontsize=9, weight="bold", va="top")
    step = 1.0 / (len(rows) + 1)
    for k, c in enumerate(rows, 1):
        y = 1.0 - k * step
        fmt = (lambda v: str(v)) if c.a.categorical else (lambda v: f"{float(v):.0f}" if c.trait == "age" else f"{float(v):.1f}")
        unit = f" {c.unit}" if c.unit else ""
        conf = lambda t: "?" if t.confidence != t.confidence else f"{t.confidence:.2f}"  # noqa: E731 - NaN: unknown
        ax.text(0.0, y, c.trait, fontsize=9, va="top")
        shown = lambda t: t.interval_text(short=True) or f"{fmt(t.value)}{unit} ({conf(t)})"  # noqa: E731 - calibrated interval first
        ax.text(0.22, y, shown(c.a), fontsize=9, va="top")
        ax.text(0.50, y, shown(c.b), fontsize=9, va="top")
        label = (f"shared, p={c.p_shared:.2f}" if c.shared else f"differs, p={c.p_differ:.2f}")
        if c.gap is not None:
            label += f" (gap {c.gap:.1f})"
        weight = "bold" if c in expl.reasons else "normal"
        ax.text(0.78, y, label, fontsize=9, va="top", color=colour[c.shared], weight=weight)
    rel = ">=" if expl.match else "<"
    fig.suptitle(f"{expl.outcome}: score {expl.score:.4f} {rel} {expl.threshold:.4f}"
                 + (f" ({expl.model})" if expl.model else ""), fontsize=10,
                 color=DIFFER if expl.outcome.startswith("false") else "black")
    return _save(fig, path, dpi)


def rate_bars(table: Sequence[Mapping[str, Any]], groups: Sequence[str], path: str | os.PathLike,
              title: str = "", dpi: int = 120) -> Path:
    """FMR and FNMR (with 95% Wilson intervals) of each category of each grouping, side by side."""
    plt = _plt()
    groups = [g for g in groups if any(r["group"] == g for r in table)]
    fig, axes = plt.subplots(len(groups), 2, figsize=(10, 2.9 * len(groups)), squeeze=False)
    for gi, g in enumerate(groups):
        rows = [r for r in table if r["group"] == g]
        for j, (rate, n_key, colour) in enumerate((("fmr", "impostor_pairs", DIFFER), ("fnmr", "genuine_pairs", SHARED))):
            ax = axes[gi, j]
            xs = np.arange(len(rows))
            vals = [100 * (r[rate] if r[rate] is not None else np.nan) for r in rows]
            lo = [100 * (r[rate + "_ci"][0] if r[rate + "_ci"] else np.nan) for r in rows]
            hi = [100 * (r[rate + "_ci"][1] if r[rate + "_ci"] else np.nan) for r in rows]
            err = np.array([[max(0.0, v - a) if np.isfinite(v) else 0.0 for v, a in zip(vals, lo)],
                            [max(0.0, b - v) if np.isfinite(v) else 0.0 for v, b in zip(vals, hi)]])
            ax.bar(xs, np.nan_to_num(vals), yerr=err, color=colour, alpha=0.8, capsize=3)
            ax.set_xticks(xs)
            wrapped = [r["category"].replace(", ", ",\n") for r in rows]
            ax.set_xticklabels([f"{c}\n(n={r[n_key]})" for c, r in zip(wrapped, rows)], fontsize=7)
            ax.set_ylabel(f"{rate.upper()} (%)")
            ax.set_title(f"{g}: {rate.upper()}", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path, dpi)


def gap_scatter(gaps: np.ndarray, scores: np.ndarray, labels: np.ndarray, threshold: float, trait: str, unit: str,
                path: str | os.PathLike, dpi: int = 120) -> Path:
    """Pair score against the estimated trait gap, genuine and impostor pairs, with the threshold."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    y = np.asarray(labels).astype(bool)
    ax.scatter(gaps[~y], scores[~y], s=3, alpha=0.3, color=DIFFER, label="impostor pairs")
    ax.scatter(gaps[y], scores[y], s=3, alpha=0.3, color=SHARED, label="genuine pairs")
    ax.axhline(threshold, color="k", lw=1, ls="--", label=f"threshold {threshold:.4f}")
    ax.set_xlabel(f"estimated {trait} gap ({unit})" if unit else f"estimated {trait} gap")
    ax.set_ylabel("cosine similarity")
    ax.legend(fontsize=7, markerscale=3)
    ax.grid(alpha=0.3)
    return _save(fig, path, dpi)


def prediction_scatter(truth: np.ndarray, pred: np.ndarray, label: str, unit: str, path: str | os.PathLike,
                       title: str = "", dpi: int = 120) -> Path:
    """Estimate against truth with the identity line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.scatter(truth, pred, s=4, alpha=0.35)
    lo, hi = float(min(np.min(truth), np.min(pred))), float(max(np.max(truth), np.max(pred)))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel(f"true {label} ({unit})")
    ax.set_ylabel(f"estimated {label} ({unit})")
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path, dpi)


def grouped_bars(values: Mapping[str, Mapping[str, float]], ylabel: str, path: str | os.PathLike, title: str = "",
                 chance: float | None = None, dpi: int = 120) -> Path:
    """``values[series][category]`` as grouped bars (e.g. predictability before / after)."""
    plt = _plt()
    series = list(values)
    cats = list(dict.fromkeys(c for s in series for c in values[s]))
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(cats), 3.6))
    w = 0.8 / max(1, len(series))
    for i, s in enumerate(series):
        xs = np.arange(len(cats)) + (i - (len(series) - 1) / 2) * w
        ax.bar(xs, [values[s].get(c, np.nan) for c in cats], width=w, label=s)
    if chance is not None:
        ax.axhline(chance, color="k", ls="--", lw=1, label="chance")
    ax.set_xticks(np.arange(len(cats)))
    ax.set_xticklabels(cats, fontsize=8)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path, dpi)
