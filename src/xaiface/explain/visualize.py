"""Pictures of explanation maps: the xSSAB colour convention, overlays and a per-pair figure.

The picture layer over :class:`~xaiface.explain.base.PairExplanation`'s numbers (InterpretML's
``data()`` / ``visualize()`` split): nothing here changes a map.

Colour convention (Huber et al., WACV 2024): **green** where a pixel argues for a match
(similarity), **pink-red** where it argues against (dissimilarity). A signed map in [-1, 1] is
painted with opacity proportional to ``|value|`` (``max_alpha`` at 1, transparent at 0), so the
face shows through where the map is near zero. Maps are first scaled by one pair-wide factor:

* ``combined``: the largest ``|combined|`` of both images (as :meth:`PairExplanation.normalized`);
* ``similarity`` / ``dissimilarity``: the largest value of the similarity *and* dissimilarity maps
  of both images, so the two can be compared; similarity is drawn green, dissimilarity pink.

matplotlib is imported only inside :func:`draw_pair_figure`, and draws on its Agg canvas (no display).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, Union

import numpy as np

from ..errors import ConfigError
from ..io.files import savefig_atomic
from .base import MAP_KINDS, PairExplanation

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DISSIMILARITY_RGB", "MAX_ALPHA", "SIMILARITY_RGB", "colorize", "cost_text", "crop_overlays", "legend_strip",
    "load_photos", "map_on_background", "overlay", "pair_figure", "photo_overlays", "score_text", "signed_maps",
    "title_line", "verdict_text",
]

#: colour of similarity (positive combined values): green
SIMILARITY_RGB = (0, 200, 60)
#: colour of dissimilarity (negative combined values): pink-red
DISSIMILARITY_RGB = (235, 25, 105)
#: opacity of a map value of +-1
MAX_ALPHA = 0.75

PathLike = Union[str, "os.PathLike[str]"]
#: photos of a pair: ``(photo_a, photo_b)``, each an image source (path, array, ...) or None
Photos = Sequence[Any]


# ---- colours --------------------------------------------------------------------------------

def colorize(signed_map: np.ndarray, max_alpha: float = MAX_ALPHA) -> np.ndarray:
    """RGBA colours of a signed map.

    Args:
        signed_map: ``(H, W)`` values in [-1, 1] (clipped; NaN counts as 0).
        max_alpha: opacity at ``|value| = 1``.
    Returns:
        ``(H, W, 4)`` float32 in [0, 1]: green for positive values, pink-red for negative ones,
        alpha ``max_alpha * |value|``.
    """
    m = np.asarray(signed_map, dtype=np.float32)
    if m.ndim != 2:
        raise ConfigError(f"a map must be (H, W), got shape {m.shape}")
    if not 0.0 <= max_alpha <= 1.0:
        raise ConfigError(f"max_alpha must be in [0, 1], got {max_alpha}")
    v = np.clip(np.nan_to_num(m, nan=0.0), -1.0, 1.0)
    pos = np.asarray(SIMILARITY_RGB, dtype=np.float32) / 255
    neg = np.asarray(DISSIMILARITY_RGB, dtype=np.float32) / 255
    rgb = np.where(v[..., None] >= 0, pos, neg)
    alpha = (max_alpha * np.abs(v))[..., None]
    return np.concatenate([rgb, alpha], axis=-1).astype(np.float32)


def overlay(image: np.ndarray, signed_map: np.ndarray, max_alpha: float = MAX_ALPHA) -> np.ndarray:
    """Paint a signed map onto an image.

    Args:
        image: ``(H, W, 3)`` uint8 RGB (an aligned crop or a photo).
        signed_map: ``(H, W)`` values in [-1, 1] (already normalised; NaN = no value).
        max_alpha: opacity at ``|value| = 1``.
    Returns:
        ``(H, W, 3)`` uint8 RGB; pixels where the map is 0 are the image's own.

    Example:
        >>> crop = np.full((4, 4, 3), 128, np.uint8)
        >>> m = np.zeros((4, 4)); m[:, :2] = 1; m[:, 2:] = -1
        >>> out = overlay(crop, m)
        >>> bool(out[0, 0, 1] > out[0, 0, 0]), bool(out[0, 3, 0] > out[0, 3, 1])
        (True, True)
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ConfigError(f"overlay needs an (H, W, 3) uint8 image, got {img.shape} {img.dtype}")
    m = np.asarray(signed_map)
    if m.shape != img.shape[:2]:
        raise ConfigError(f"map of shape {m.shape} does not fit an image of {img.shape[:2]}")
    rgba = colorize(m, max_alpha)
    a = rgba[..., 3:]
    out = img.astype(np.float32) * (1 - a) + rgba[..., :3] * 255 * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def map_on_background(background: np.ndarray, signed_map: np.ndarray, fade: float = 0.65,
                      max_alpha: float = 0.9) -> np.ndarray:
    """A map on a faded grey copy of the image, so the colours read as numbers, not as a face.

    Args:
        background: ``(H, W, 3)`` uint8 RGB. fade: 0 keeps the grey image, 1 makes it white.
        signed_map: ``(H, W)`` in [-1, 1]. max_alpha: opacity at ``|value| = 1``.
    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    bg = np.asarray(background, dtype=np.float32)
    grey = bg @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    light = 255 - (255 - grey) * (1 - fade)
    base = np.repeat(np.clip(np.rint(light), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    return overlay(base, signed_map, max_alpha)


def legend_strip(width: int = 256, height: int = 16, max_alpha: float = MAX_ALPHA) -> np.ndarray:
    """``(height, width, 3)`` uint8: the colours of values -1 (left) .. +1 (right) on white."""
    v = np.tile(np.linspace(-1, 1, width, dtype=np.float32), (height, 1))
    return overlay(np.full((height, width, 3), 255, np.uint8), v, max_alpha)


# ---- maps of a pair, scaled -----------------------------------------------------------------

def _check_kind(kind: str) -> None:
    if kind not in MAP_KINDS:
        raise ConfigError(f"map kind must be one of {MAP_KINDS}, got {kind!r}")


def _pair_scale(expl: PairExplanation, kind: str) -> float:
    """The pair-wide factor of :func:`signed_maps` (0 when every map is 0 or missing)."""
    kinds = ("combined",) if kind == "combined" else ("similarity", "dissimilarity")
    vals = [float(np.nanmax(np.abs(m))) for k in kinds for m in expl.maps(k)
            if m is not None and m.size and np.isfinite(m).any()]
    return max(vals, default=0.0)


def _sign(kind: str) -> float:
    return -1.0 if kind == "dissimilarity" else 1.0


def signed_maps(expl: PairExplanation, kind: str = "combined") -> tuple[np.ndarray | None, np.ndarray | None]:
    """Both images' maps in [-1, 1] at crop resolution, ready for :func:`overlay`.

    ``combined`` as :meth:`PairExplanation.normalized`; ``similarity`` positive (green) and
    ``dissimilarity`` negative (pink), both scaled by the largest value of the two kinds.
    ``None`` for an image the method did not explain.
    """
    _check_kind(kind)
    scale = _pair_scale(expl, kind)
    s = _sign(kind)
    return tuple(None if m is None else (s * m / scale if scale > 0 else np.zeros_like(m)).astype(np.float32)
                 for m in expl.maps(kind))  # type: ignore[return-value]


def crop_overlays(expl: PairExplanation, kind: str = "combined",
                  max_alpha: float = MAX_ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Both aligned crops with their map painted on (the plain crop where there is no map)."""
    faces = _faces(expl)
    return tuple(face.image.copy() if m is None else overlay(face.image, m, max_alpha)
                 for face, m in zip(faces, signed_maps(expl, kind)))  # type: ignore[return-value]


def load_photos(expl: PairExplanation, photos: Photos | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The two original photos of an explanation's pair, as ``(H, W, 3)`` uint8 arrays.

    Args:
        expl: an explanation carrying its :class:`FacePair`.
        photos: ``(photo_a, photo_b)``, each anything :func:`xaiface.io.load_image` reads, or
            None to load that photo from the aligned face's ``source`` path.
    Raises:
        ConfigError: a photo is needed but its face has no readable path source, or a photo's
            size is not the one the face was aligned from.
        ImageError: a photo file cannot be read.
    """
    from ..io import load_image

    faces = _faces(expl)
    given = [None, None] if photos is None else list(photos)
    if len(given) != 2:
        raise ConfigError(f"photos must be a pair (photo_a, photo_b), got {len(given)} item(s)")
    out = []
    for label, face, ph in zip("AB", faces, given):
        if ph is None:
            src = face.source
            if not src or not Path(src).is_file():
                raise ConfigError(
                    f"{expl.method}: image {label} (source {src!r}) has no photo file to draw the map on; "
                    "pass photos=(photo_a, photo_b)"
                )
            ph = load_image(src)
        elif not isinstance(ph, np.ndarray) or ph.dtype != np.uint8 or ph.ndim != 3 or ph.shape[2] != 3:
            ph = load_image(ph, name=face.source)
        if tuple(ph.shape[:2]) != tuple(face.photo_shape):
            raise ConfigError(
                f"photo {label} ({face.source}) is {ph.shape[1]}x{ph.shape[0]} px, but its face was aligned from a "
                f"{face.photo_shape[1]}x{face.photo_shape[0]} px photo"
            )
        out.append(ph)
    return out[0], out[1]


def photo_overlays(expl: PairExplanation, photos: Photos | None = None, kind: str = "combined",
                   max_alpha: float = MAX_ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Both original photos with their map warped back (:meth:`PairExplanation.on_photo`) and painted on.

    Same scale as :func:`crop_overlays`; the plain photo where there is no map. ``photos`` as
    :func:`load_photos`.
    """
    _check_kind(kind)
    pa, pb = load_photos(expl, photos)
    scale = _pair_scale(expl, kind)
    s = _sign(kind)
    out = []
    for i, ph in enumerate((pa, pb)):
        if expl.maps(kind)[i] is None:
            out.append(ph.copy())
            continue
        m = expl.on_photo(i, kind)  # NaN outside the crop: left unpainted
        m = s * m / scale if scale > 0 else np.zeros_like(m)
        out.append(overlay(ph, m, max_alpha))
    return out[0], out[1]


def _faces(expl: PairExplanation):
    if expl.pair is None:
        raise ConfigError(f"the {expl.method} explanation carries no aligned faces to draw on")
    return expl.pair.a, expl.pair.b


# ---- text -----------------------------------------------------------------------------------

def score_text(expl: PairExplanation) -> str:
    """``"score 0.812 >= threshold 0.600"`` (``<`` for no match)."""
    return f"score {expl.score:.3f} {'>=' if expl.match else '<'} threshold {expl.threshold:.3f}"


def verdict_text(expl: PairExplanation) -> str:
    """``"match: score 0.812 >= threshold 0.600"`` (or ``no match: ... <``)."""
    return f"{'match' if expl.match else 'no match'}: {score_text(expl)}"


def cost_text(expl: PairExplanation) -> str:
    return f"{expl.n_forward} forwards, {expl.n_backward} backwards, {expl.seconds:.2f} s"


def title_line(expl: PairExplanation) -> str:
    """One line: method, verdict, score, threshold, model and cost."""
    return f"{expl.method}  |  {verdict_text(expl)}  |  model {expl.model}  |  {cost_text(expl)}"


def _short(source: str | None, fallback: str) -> str:
    return Path(source).name if source else fallback


# ---- the figure -----------------------------------------------------------------------------

def pair_figure(explanations: Sequence[PairExplanation] | PairExplanation, path: PathLike,
                photos: Photos | None = None, on_photo: bool = False, separate: bool = False,
                dpi: int = 120) -> Path:
    """Write :func:`draw_pair_figure`'s figure as a PNG to ``path`` (parent folders are created).

    Args: as :func:`draw_pair_figure`; ``dpi``: the PNG's resolution.
    Returns:
        ``path`` as a :class:`Path`.
    """
    fig = draw_pair_figure(explanations, photos=photos, on_photo=on_photo, separate=separate)
    out = Path(path)
    savefig_atomic(fig, out, format="png", dpi=dpi)
    return out


def draw_pair_figure(explanations: Sequence[PairExplanation] | PairExplanation, photos: Photos | None = None,
                     on_photo: bool = False, separate: bool = False) -> Figure:
    """A matplotlib figure with one row per method: the combined map on face A and on face B.

    Args:
        explanations: one or several explanations (of the same pair, typically one per method).
        photos: ``(photo_a, photo_b)`` for ``on_photo`` (see :func:`load_photos`); by default
            the photos are read from the aligned faces' path sources.
        on_photo: also draw the combined maps on the original photos (two more columns).
        separate: also draw the similarity and dissimilarity maps apart (four more columns).
    Returns:
        a ``matplotlib.figure.Figure`` with an Agg canvas (no pyplot state; ``fig.savefig`` to write it).

    Each row's title carries the method, verdict, score, threshold, model and cost; a colour
    bar at the bottom explains green and pink. A method that explained one image only shows the
    plain crop for the other.
    """
    exps = _as_list(explanations)
    cols = ["crop"] + (["photo"] if on_photo else []) + (["similarity", "dissimilarity"] if separate else [])
    ncols = 2 * len(cols)
    photo_cache: dict[tuple[str | None, str | None], tuple[np.ndarray, np.ndarray]] = {}

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width = max(7.5, 1.9 * ncols)
    row_h = 2.35
    fig = Figure(figsize=(width, row_h * len(exps) + 1.35), layout="constrained")
    FigureCanvasAgg(fig)
    first = exps[0].pair
    fig.suptitle(f"A: {_short(first.a.source, 'image A')}    vs    B: {_short(first.b.source, 'image B')}",
                 fontsize=11, fontweight="bold")
    subs = fig.subfigures(len(exps) + 1, 1, height_ratios=[row_h] * len(exps) + [0.75], squeeze=False)[:, 0]
    for sf, e in zip(subs, exps):
        sf.suptitle(title_line(e), fontsize=8.5, color="#1a7f37" if e.match else "#b4235a")
        axes = sf.subplots(1, ncols, squeeze=False)[0]
        panels = _panels(e, cols, photos, photo_cache)
        for ax, (img, label) in zip(axes, panels):
            ax.imshow(img)
            ax.set_title(label, fontsize=7.5)
            ax.set_axis_off()
    _colorbar(fig, subs[-1])
    return fig


def _as_list(explanations: Sequence[PairExplanation] | PairExplanation) -> list[PairExplanation]:
    exps = [explanations] if isinstance(explanations, PairExplanation) else list(explanations)
    if not exps:
        raise ConfigError("no explanation to draw")
    for e in exps:
        if not isinstance(e, PairExplanation):
            raise ConfigError(f"expected PairExplanation objects, got {type(e).__name__}")
        _faces(e)
    return exps


def _cached_photos(e: PairExplanation, photos: Photos | None, cache: dict) -> tuple[np.ndarray, np.ndarray]:
    key = (e.pair.a.source, e.pair.b.source)
    if key not in cache:  # several methods explain the same pair: read its photos once
        cache[key] = load_photos(e, photos)
    return cache[key]


def _panels(e: PairExplanation, cols: list[str], photos: Photos | None, cache: dict) -> list[tuple[np.ndarray, str]]:
    explained = [m is not None for m in e.combined_maps]
    note = lambda i: "" if explained[i] else " (not explained)"  # noqa: E731
    out: list[tuple[np.ndarray, str]] = []
    for col in cols:
        if col == "crop":
            imgs = crop_overlays(e)
        elif col == "photo":
            imgs = photo_overlays(e, _cached_photos(e, photos, cache))
        else:
            faces = _faces(e)
            imgs = tuple(f.image.copy() if m is None else map_on_background(f.image, m)
                         for f, m in zip(faces, signed_maps(e, col)))
        for i, label in enumerate("AB"):
            out.append((imgs[i], f"{label} {col}{note(i)}"))
    return out


def _colorbar(fig: Figure, sf: Any) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    strip = legend_strip(512, 1)[0] / 255.0
    cmap = ListedColormap(strip, name="xssab")
    ax = sf.add_axes((0.2, 0.5, 0.6, 0.2))
    cb = sf.colorbar(ScalarMappable(Normalize(-1, 1), cmap), cax=ax, orientation="horizontal")
    cb.set_ticks([-1, 0, 1])
    cb.ax.set_xticklabels(["-1: dissimilarity\n(pink: argues against a match)", "0",
                           "+1: similarity\n(green: argues for a match)"], fontsize=7.5)
    sf.text(0.5, 0.98, "map value / largest |value| of the pair; opacity proportional to |value|",
            ha="center", va="top", fontsize=7.5, color="#444444")
