"""Pictures of verification scores: ROC, DET and score histograms, saved as PNG.

Every function takes either one set of pairs (``scores, labels``) or several to compare, as a
dict ``{curve label: (scores, labels)}`` with ``labels=None`` (``plot_roc(curves, None, path)``,
or shorter ``plot_roc(curves, path)``). Figures are drawn with
matplotlib's Agg canvas directly (no pyplot state, no display needed); matplotlib is imported
only when a function is called.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import det_curve, roc_curve

from ..errors import ConfigError
from .metrics import _check_scores_labels, calibrate, eer

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_det", "plot_roc", "plot_score_histograms"]

#: One set of scores, or several by curve label: ``{label: (scores (N,), labels (N,))}``.
ScoresOrCurves = Union[ArrayLike, Mapping[str, tuple[ArrayLike, ArrayLike]]]
PathLike = Union[str, "os.PathLike[str]"]

_DET_TICKS = (1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99, 0.999)


def _curves(
    scores: ScoresOrCurves,
    labels: ArrayLike | PathLike | None,
    path: PathLike | None,
    label: str | None,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], Path]:
    """Validated ``{label: (scores, labels)}`` and the output path, from either calling form:
    ``(scores, labels, path)`` or ``(curves, None, path)``, also ``(curves, path)``."""
    if isinstance(scores, Mapping):
        if path is None and isinstance(labels, (str, os.PathLike)):
            path, labels = labels, None
        if labels is not None:
            raise ConfigError(
                "with a dict of curves, labels go inside it: {name: (scores, labels)}; pass labels=None"
            )
        if not scores:
            raise ConfigError("no curve to plot: the dict of curves is empty")
        curves = {}
        for name, pair in scores.items():
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise ConfigError(f"curve {name!r} must be a (scores, labels) pair, got {pair!r:.60}")
            curves[str(name)] = _check_scores_labels(*pair)
    elif labels is None:
        raise ConfigError("labels are missing: give (scores, labels) or a dict {name: (scores, labels)}")
    else:
        curves = {label or "scores": _check_scores_labels(scores, labels)}
    if path is None:
        raise ConfigError("no output path given for the PNG")
    return curves, Path(path)


def _figure(nrows: int = 1, size: tuple[float, float] = (6.0, 5.0)) -> tuple[Figure, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0], size[1] * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, 1, squeeze=False)[:, 0]


def _save(fig: Figure, out: Path, dpi: int) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=dpi)
    return out


def plot_roc(
    scores: ScoresOrCurves,
    labels: ArrayLike | PathLike | None = None,
    path: PathLike | None = None,
    label: str | None = None,
    *,
    min_fmr: float = 1e-4,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """ROC curve(s): TAR against FMR on a log axis from ``min_fmr`` to 1.

    Args:
        scores: ``(N,)`` similarities, or ``{curve label: (scores, labels)}``.
        labels: ``(N,)`` 1 = genuine, 0 = impostor; ``None`` with a dict (or the path:
            ``plot_roc(curves, "roc.png")``).
        path: where to write the PNG (parent folders are created); required.
        label: the legend entry for a single curve. The legend also shows each curve's EER.
        min_fmr: left end of the FMR axis.
        title: optional figure title. dpi: PNG resolution.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    curves, path = _curves(scores, labels, path, label)
    fig, (ax,) = _figure()
    for name, (s, y) in curves.items():
        fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
        ax.plot(fpr, tpr, label=f"{name} (EER {100 * eer(s, y)[0]:.2f}%)")
    ax.set_xscale("log", nonpositive="clip")
    ax.set_xlim(min_fmr, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set(xlabel="FMR (false match rate)", ylabel="TAR (true accept rate)", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path, dpi)


def plot_det(
    scores: ScoresOrCurves,
    labels: ArrayLike | PathLike | None = None,
    path: PathLike | None = None,
    label: str | None = None,
    *,
    min_rate: float = 1e-4,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """DET curve(s): FNMR against FMR on normal-deviate (probit) axes.

    Points from :func:`sklearn.metrics.det_curve`, drawn by
    :class:`sklearn.metrics.DetCurveDisplay`; its axes stop at 0.1%, too early for face
    models, so both are widened to ``min_rate`` .. 99.9% with ticks labelled in percent.

    Args:
        scores, labels, path, label, title, dpi: as in :func:`plot_roc`.
        min_rate: the lowest FMR and FNMR shown.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    from scipy.stats import norm
    from sklearn.metrics import DetCurveDisplay

    curves, path = _curves(scores, labels, path, label)
    fig, (ax,) = _figure()
    for name, (s, y) in curves.items():
        fpr, fnr, _ = det_curve(y, s)
        DetCurveDisplay(fpr=fpr, fnr=fnr).plot(ax=ax, name=name)
    ticks = [t for t in _DET_TICKS if t >= min_rate]
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_ticks(norm.ppf(ticks), [f"{100 * t:g}%" for t in ticks])
    limits = norm.ppf([min_rate, _DET_TICKS[-1]])
    ax.set(xlim=limits, ylim=limits)
    ax.set(xlabel="FMR (false match rate)", ylabel="FNMR (false non-match rate)", title=title)
    ax.grid(True, alpha=0.3)
    return _save(fig, path, dpi)


def plot_score_histograms(
    scores: ScoresOrCurves,
    labels: ArrayLike | PathLike | None = None,
    path: PathLike | None = None,
    label: str | None = None,
    *,
    thresholds: Mapping[str, float] | None = None,
    bins: int = 50,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Genuine and impostor score densities with threshold lines, one panel per curve.

    Args:
        scores, labels, path, label, title, dpi: as in :func:`plot_roc`.
        thresholds: ``{name: threshold}`` drawn as vertical lines in every panel (e.g. a model's
            stored thresholds); by default each panel shows its own :func:`calibrate` thresholds
            (``"eer"``, ``"fmr=1e-2"``, ``"fmr=1e-3"``).
        bins: number of histogram bins over the panel's score range.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    curves, path = _curves(scores, labels, path, label)
    fig, axes = _figure(nrows=len(curves), size=(7.0, 3.5))
    for ax, (name, (s, y)) in zip(axes, curves.items()):
        edges = np.linspace(s.min(), s.max(), bins + 1) if s.max() > s.min() else bins
        ax.hist(s[y], bins=edges, density=True, alpha=0.55, label=f"genuine ({int(y.sum())})")
        ax.hist(s[~y], bins=edges, density=True, alpha=0.55, label=f"impostor ({int((~y).sum())})")
        lines = calibrate(s, y).thresholds if thresholds is None else thresholds
        for i, (key, t) in enumerate(lines.items()):
            ax.axvline(t, color=f"C{i + 2}", linestyle="--", label=f"{key}: {t:.4f}")
        ax.set(xlabel="similarity score", ylabel="density", title=name)
        ax.legend(loc="upper left", fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi)
