"""Heuristic face-patch extraction (XAIface D5.2, section 3.1.1).

Eleven square patches per face: five at the landmarks (both eye centres, the nose tip, both
mouth corners) and six placed heuristically (left and right forehead, cheek and chin). Every
position and size is written in a *face frame* built from the five landmarks, so the layout
follows the face under any resolution, scale and in-plane rotation:

* ``u``: the unit vector from the image-left eye to the image-right eye; ``v``: ``u`` turned by
  +90 degrees (pointing down the face, chin-wards);
* ``d_eye``: eye-to-eye distance (horizontal offsets are multiples of it);
* ``d_em``: eye-line-to-mouth distance along ``v``; ``d_nm``: nose-tip-to-mouth distance along ``v``;
  ``nose_depth``: eye-line-to-nose-tip distance along ``v`` (vertical offsets use these);
* ``scale = (d_eye + d_em / 1.1) / 2``: the patch side unit. It equals ``d_eye`` on an average
  frontal face (``d_em ~ 1.1 d_eye`` in dlib's chips) and shrinks less than ``d_eye`` under yaw.

"Left" and "right" are the image's left and right (as :data:`xaiface.types.LANDMARK_NAMES`).
Each patch is resampled, upright in the face frame, to ``patch_size x patch_size`` pixels.

A patch is **visible** when at least ``min_inside`` of its square lies inside the image and it
is not on the hidden side of a strongly turned face. Yaw is read from the nose tip's offset
along the eye line, ``yaw_index = (nose - eye_mid) . u / d_eye`` (about 0 for a frontal face,
about +-0.55 at 45 degrees of yaw); the side the nose moves towards turns away from the camera,
and its patches are hidden beyond a per-patch limit (:data:`YAW_LIMITS`: 0.35 for the cheek,
0.45 for the chin, 0.5 for eyes, forehead and mouth corners).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, ImageError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "PATCH_NAMES", "N_PATCHES", "PATCH_SIDE", "YAW_LIMITS", "FacePatches", "PatchLayout",
    "extract_patches", "patch_label_map", "patch_layout", "draw_patches",
]

#: the eleven patches, in feature order
PATCH_NAMES = (
    "left_eye", "right_eye", "nose", "left_mouth", "right_mouth",
    "left_forehead", "right_forehead", "left_cheek", "right_cheek", "left_chin", "right_chin",
)
N_PATCHES = len(PATCH_NAMES)
#: patch side in units of the face scale
PATCH_SIDE = np.array([0.6, 0.6, 0.5, 0.45, 0.45, 0.5, 0.5, 0.5, 0.5, 0.45, 0.45])
#: which side of the face each patch lies on: -1 image-left, +1 image-right, 0 centre
PATCH_SIDE_OF_FACE = np.array([-1, 1, 0, -1, 1, -1, 1, -1, 1, -1, 1])
#: |yaw_index| beyond which a patch on the side the nose turns towards is hidden
YAW_LIMITS = np.array([0.5, 0.5, np.inf, 0.5, 0.5, 0.5, 0.5, 0.35, 0.35, 0.45, 0.45])
#: ratio d_em / d_eye of an average frontal face (dlib 150 px chips: 58.2 / 52.7)
_EM_OVER_EYE = 1.1


@dataclass(frozen=True)
class PatchLayout:
    """Where the eleven patches lie on one image (geometry only).

    Attributes:
        centers: ``(11, 2)`` patch centres, image pixels (x, y).
        sides: ``(11,)`` patch side lengths, image pixels.
        u: ``(2,)`` unit vector along the eye line (image-left eye to image-right eye).
        inside: ``(11,)`` fraction of each patch square inside the image, in [0, 1].
        visible: ``(11,)`` bool: inside enough and not hidden by yaw.
        yaw_index: nose-tip offset along the eye line over the eye distance (signed; + = towards
            the image's right).
        image_shape: ``(H, W)`` of the image.
    """

    centers: np.ndarray
    sides: np.ndarray
    u: np.ndarray
    inside: np.ndarray
    visible: np.ndarray
    yaw_index: float
    image_shape: tuple[int, int]

    @property
    def v(self) -> np.ndarray:
        return np.array([-self.u[1], self.u[0]])

    @property
    def angle(self) -> float:
        """In-plane rotation of the eye line, radians (0 = horizontal)."""
        return float(np.arctan2(self.u[1], self.u[0]))

    def corners(self) -> np.ndarray:
        """``(11, 4, 2)`` corners of each patch square (top-left, top-right, bottom-right, bottom-left)."""
        h = self.sides[:, None] / 2
        u, v = self.u[None], self.v[None]
        c = self.centers
        return np.stack([c - h * u - h * v, c + h * u - h * v, c + h * u + h * v, c - h * u + h * v], axis=1)

    def to_patch(self, points: np.ndarray) -> np.ndarray:
        """``(11, N, 2)`` coordinates of image points in each patch's frame, in [-1, 1] inside the patch."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        d = p[None] - self.centers[:, None]
        half = (self.sides / 2)[:, None]
        return np.stack([d @ self.u / half, d @ self.v / half], axis=-1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "patches": list(PATCH_NAMES),
            "centers": self.centers.tolist(), "sides": self.sides.tolist(),  # full precision: maps can be redrawn
            "angle_deg": round(float(np.degrees(self.angle)), 3), "yaw_index": round(float(self.yaw_index), 4),
            "inside": np.round(self.inside, 3).tolist(), "visible": [bool(b) for b in self.visible],
        }


@dataclass(frozen=True)
class FacePatches:
    """The eleven patches of one face.

    Attributes:
        pixels: ``(11, P, P, 3)`` uint8 RGB, each patch upright in the face frame (zeros outside
            the image).
        layout: the :class:`PatchLayout` they were cut with.
    """

    pixels: np.ndarray
    layout: PatchLayout

    @property
    def visible(self) -> np.ndarray:
        return self.layout.visible


def _check_landmarks(landmarks: Any) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2):
        raise ConfigError(f"patch extraction needs (5, 2) landmarks (eyes, nose tip, mouth corners), got shape {lm.shape}")
    if not np.all(np.isfinite(lm)):
        raise ConfigError(f"landmarks contain NaN or infinite values: {np.round(lm, 2).tolist()}")
    if np.linalg.norm(lm[1] - lm[0]) < 1e-6:
        raise ConfigError(f"degenerate landmarks: both eyes at {np.round(lm[0], 2).tolist()}")
    return lm


def patch_layout(landmarks: np.ndarray, image_shape: tuple[int, ...], *, min_inside: float = 0.5,
                 yaw_limits: np.ndarray | None = None) -> PatchLayout:
    """The eleven patch squares of a face from its five landmarks.

    Args:
        landmarks: ``(5, 2)`` image-left eye centre, image-right eye centre, nose tip, image-left
            and image-right mouth corners, in pixels.
        image_shape: ``(H, W, ...)`` of the image the landmarks refer to.
        min_inside: least fraction of a patch square inside the image for it to be visible.
        yaw_limits: ``(11,)`` per-patch yaw limits (default :data:`YAW_LIMITS`).
    Returns:
        a :class:`PatchLayout`.
    Raises:
        ConfigError: landmarks are not ``(5, 2)`` finite values, or both eyes coincide.
    """
    lm = _check_landmarks(landmarks)
    if not 0.0 <= min_inside <= 1.0:
        raise ConfigError(f"min_inside must be in [0, 1], got {min_inside}")
    le, re, nose, lmo, rmo = lm
    d_eye = float(np.linalg.norm(re - le))
    u = (re - le) / d_eye
    v = np.array([-u[1], u[0]])
    eye_mid, mouth_mid = (le + re) / 2, (lmo + rmo) / 2
    d_em = float((mouth_mid - eye_mid) @ v)
    if d_em <= 0.2 * d_eye:  # mouth not below the eyes: implausible landmarks; keep a usable frame
        d_em = _EM_OVER_EYE * d_eye
    d_nm = float(np.clip((mouth_mid - nose) @ v, 0.25 * d_em, 0.8 * d_em))
    nose_depth = float(np.clip((nose - eye_mid) @ v, 0.3 * d_em, 0.8 * d_em))
    scale = (d_eye + d_em / _EM_OVER_EYE) / 2
    centers = np.stack([
        le, re, nose, lmo, rmo,
        le - 0.55 * d_em * v, re - 0.55 * d_em * v,                                   # forehead
        le + nose_depth * v - 0.15 * d_eye * u, re + nose_depth * v + 0.15 * d_eye * u,  # cheeks
        mouth_mid + d_nm * v - 0.25 * d_eye * u, mouth_mid + d_nm * v + 0.25 * d_eye * u,  # chin
    ])
    sides = PATCH_SIDE * scale
    h, w = int(image_shape[0]), int(image_shape[1])
    inside = _inside_fraction(centers, sides, u, v, h, w)
    yaw_index = float((nose - eye_mid) @ u / d_eye)
    limits = YAW_LIMITS if yaw_limits is None else np.asarray(yaw_limits, dtype=np.float64)
    hidden = PATCH_SIDE_OF_FACE * yaw_index > limits
    visible = (inside >= min_inside) & ~hidden
    return PatchLayout(centers, sides, u, inside, visible, yaw_index, (h, w))


def _inside_fraction(centers: np.ndarray, sides: np.ndarray, u: np.ndarray, v: np.ndarray, h: int, w: int,
                     n: int = 8) -> np.ndarray:
    t = (np.arange(n) + 0.5) / n - 0.5
    a, b = np.meshgrid(t, t)
    offs = a.reshape(-1, 1) * u + b.reshape(-1, 1) * v  # (n*n, 2) in units of the side
    pts = centers[:, None] + sides[:, None, None] * offs[None]
    ok = (pts[..., 0] >= -0.5) & (pts[..., 0] <= w - 0.5) & (pts[..., 1] >= -0.5) & (pts[..., 1] <= h - 0.5)
    return ok.mean(axis=1)


def extract_patches(image: np.ndarray, landmarks: np.ndarray, patch_size: int = 24, *, min_inside: float = 0.5,
                    layout: PatchLayout | None = None) -> FacePatches:
    """Cut the eleven patches of a face out of an RGB image.

    Each patch square is sampled upright in the face frame (bilinear; supersampled and averaged
    when the square is larger than ``1.5 x patch_size`` pixels, so large faces do not alias).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        landmarks: ``(5, 2)`` landmarks in the image's pixels (see :func:`patch_layout`).
        patch_size: side ``P`` of the resampled patches.
        layout: a precomputed layout (else computed from ``landmarks``).
    Returns:
        :class:`FacePatches` with ``pixels (11, P, P, 3)`` uint8.

    Example:
        >>> from xaiface.io import load_image                      # doctest: +SKIP
        >>> fp = extract_patches(load_image("face.jpg"), landmarks)  # doctest: +SKIP
        >>> fp.pixels.shape, fp.visible.sum()                      # doctest: +SKIP
        ((11, 24, 24, 3), 11)
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ImageError(f"patch extraction takes an (H, W, 3) uint8 RGB image, got {img.shape} {img.dtype}")
    if not 4 <= int(patch_size) <= 256:
        raise ConfigError(f"patch_size must be within 4..256, got {patch_size}")
    lay = layout if layout is not None else patch_layout(landmarks, img.shape, min_inside=min_inside)
    return FacePatches(_sample(img, lay, int(patch_size)), lay)


def _sample(img: np.ndarray, lay: PatchLayout, p: int) -> np.ndarray:
    h, w = img.shape[:2]
    k = int(np.clip(np.ceil(lay.sides.max() / (1.5 * p)), 1, 4))  # supersampling factor
    n = p * k
    t = (np.arange(n) + 0.5) / n - 0.5
    a, b = np.meshgrid(t, t)  # a: along u (columns), b: along v (rows)
    pts = (lay.centers[:, None, None] + lay.sides[:, None, None, None]
           * (a[None, ..., None] * lay.u + b[None, ..., None] * lay.v))  # (11, n, n, 2)
    grid = np.stack([(2 * pts[..., 0] + 1) / w - 1, (2 * pts[..., 1] + 1) / h - 1], axis=-1)
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    out = F.grid_sample(x.expand(len(grid), -1, -1, -1), torch.from_numpy(grid).float(), mode="bilinear",
                        padding_mode="zeros", align_corners=False)
    if k > 1:
        out = F.avg_pool2d(out, k)
    return np.clip(np.rint(out.permute(0, 2, 3, 1).numpy()), 0, 255).astype(np.uint8)


def patch_label_map(layout: PatchLayout, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Which patch each pixel belongs to: ``(H, W)`` int, -1 outside every patch.

    Where squares overlap a pixel goes to the patch whose centre is nearest in that patch's own
    normalised (max-norm) units, so every patch region is one connected, patch-constant area.
    """
    h, w = shape if shape is not None else layout.image_shape
    ys, xs = np.mgrid[0:h, 0:w]
    q = layout.to_patch(np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64))  # (11, HW, 2)
    dist = np.abs(q).max(axis=-1)  # (11, HW)
    best = dist.argmin(axis=0)
    lab = np.where(dist[best, np.arange(dist.shape[1])] <= 1.0, best, -1)
    return lab.reshape(h, w).astype(np.int16)


def draw_patches(image: np.ndarray, layout: PatchLayout, ax: Any = None, *, labels: bool = True,
                 title: str | None = None) -> "Figure":
    """Draw the eleven patch squares on a face (visible: solid, hidden: dashed grey).

    Returns the matplotlib figure (Agg canvas; save it with ``fig.savefig``).
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Polygon

    if ax is None:
        fig = Figure(figsize=(4, 4.3))
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    ax.imshow(image)
    colours = _patch_colours()
    for j, quad in enumerate(layout.corners()):
        vis = bool(layout.visible[j])
        ax.add_patch(Polygon(quad, closed=True, fill=False, lw=1.6 if vis else 1.0,
                             ls="-" if vis else "--", ec=colours[j] if vis else (0.6, 0.6, 0.6)))
        if labels:
            c = layout.centers[j]
            ax.text(c[0], c[1], str(j), color="white", fontsize=7, ha="center", va="center", clip_on=True,
                    bbox=dict(boxstyle="round,pad=0.1", fc=colours[j] if vis else (0.6, 0.6, 0.6), ec="none", alpha=0.8))
    # show patches that leave the image too (up to half an image beyond it)
    h, w = image.shape[:2]
    cs = layout.corners().reshape(-1, 2)
    x0, x1 = max(min(-0.5, cs[:, 0].min() - 2), -w / 2), min(max(w - 0.5, cs[:, 0].max() + 2), 1.5 * w)
    y0, y1 = max(min(-0.5, cs[:, 1].min() - 2), -h / 2), min(max(h - 0.5, cs[:, 1].max() + 2), 1.5 * h)
    ax.add_patch(Polygon([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]], closed=True,
                         fill=False, lw=0.8, ec="k"))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)
    return fig


def _patch_colours() -> list[tuple[float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return [tuple(cmap(i)[:3]) for i in (0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 1)]
