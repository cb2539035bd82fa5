"""Alignment geometry: templates, similarity transforms, and warps (numpy in, torch inside).

Coordinates are pixel centres: the top-left pixel's centre is (0, 0). A ``(2, 3)`` matrix
``M`` maps photo coordinates to crop coordinates: ``crop = M[:, :2] @ photo + M[:, 2]``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError

#: insightface ``utils/face_align.py`` five-point template for 112x112 ArcFace crops, in
#: :data:`xaiface.types.LANDMARK_NAMES` order.
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` to ``dst``.

    Umeyama (1991) without reflection. ``src``, ``dst``: ``(N, 2)``, N >= 2. Returns ``(2, 3)``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ConfigError(f"similarity_transform needs two (N, 2) point sets with N >= 2, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s <= 0:
        raise ConfigError("similarity_transform: source points are all identical")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1
    r = u @ e @ vt
    scale = np.trace(np.diag(sig) @ e) / var_s
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map ``(N, 2)`` points with a ``(2, 3)`` affine matrix."""
    p = np.asarray(points, dtype=np.float64)
    return p @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    a = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(a)[:2]


def sampling_grid(matrix: np.ndarray | torch.Tensor, out_size: tuple[int, int], in_size: tuple[int, int],
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``grid_sample`` grid ``(1, Ho, Wo, 2)`` that warps an image of ``in_size=(H, W)``
    into ``out_size=(Ho, Wo)`` under ``matrix`` (photo -> crop), for ``align_corners=False``."""
    m = matrix.detach().cpu().numpy() if torch.is_tensor(matrix) else np.asarray(matrix)
    inv = invert_affine(m)
    ho, wo = out_size
    h, w = in_size
    xs = np.arange(wo, dtype=np.float64)
    ys = np.arange(ho, dtype=np.float64)
    # photo coordinates of each crop pixel centre, then grid_sample's [-1, 1] units
    sx = inv[0, 0] * xs[None, :] + inv[0, 1] * ys[:, None] + inv[0, 2]
    sy = inv[1, 0] * xs[None, :] + inv[1, 1] * ys[:, None] + inv[1, 2]
    grid = np.stack([(2 * sx + 1) / w - 1, (2 * sy + 1) / h - 1], axis=-1)
    return torch.from_numpy(grid[None]).to(dtype)


def warp_tensor(photo: torch.Tensor, matrix: np.ndarray, size: int | tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Differentiable warp of ``(B, C, H, W)`` float photos into ``(B, C, S, S)`` crops (zeros outside).

    Gradients flow from the crop back to the photo's pixels (the white-box path used to explain
    the original photo itself).
    """
    if photo.ndim != 4:
        raise ConfigError(f"warp_tensor expects (B, C, H, W), got {tuple(photo.shape)}")
    so = (size, size) if isinstance(size, int) else tuple(size)
    grid = sampling_grid(matrix, so, tuple(photo.shape[2:]), dtype=photo.dtype).expand(photo.shape[0], -1, -1, -1)
    return F.grid_sample(photo, grid, mode=mode, padding_mode="zeros", align_corners=False)


def warp_image(image: np.ndarray, matrix: np.ndarray, size: int, mode: str = "bilinear",
               rounding: str = "nearest") -> np.ndarray:
    """Warp an ``(H, W, C)`` uint8 or float image into an ``(S, S, C)`` crop (same dtype).

    ``rounding`` applies to uint8 output: ``"nearest"`` (OpenCV's behaviour) or ``"floor"``
    (dlib's: its interpolated values are truncated when stored as ``unsigned char``).
    """
    arr = np.asarray(image)
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[..., None]
    t = torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1)[None].float()
    out = warp_tensor(t, matrix, size, mode=mode)[0].permute(1, 2, 0).numpy()
    if arr.dtype == np.uint8:
        if rounding not in ("nearest", "floor"):
            raise ConfigError(f"rounding must be 'nearest' or 'floor', got {rounding!r}")
        # a small epsilon keeps exact integers exact under float32 interpolation
        out = np.floor(out + 1e-3) if rounding == "floor" else np.rint(out)
        out = np.clip(out, 0, 255).astype(np.uint8)
    else:
        out = out.astype(arr.dtype, copy=False)
    return out[..., 0] if squeeze else out


def unwarp_map(values: np.ndarray, matrix: np.ndarray, photo_shape: tuple[int, int]) -> np.ndarray:
    """Draw a crop-resolution map ``(S, S)`` back onto the photo ``(H, W)`` (NaN outside the crop)."""
    v = np.asarray(values, dtype=np.float32)
    inv = invert_affine(matrix)
    t = torch.from_numpy(np.ascontiguousarray(v))[None, None]
    ones = torch.ones_like(t)
    h, w = photo_shape
    grid = sampling_grid(inv, (h, w), v.shape, dtype=torch.float32)
    out = F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0].numpy()
    cover = F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0].numpy()
    res = np.where(cover > 1e-3, out / np.maximum(cover, 1e-3), np.nan)
    return res.astype(np.float32)
