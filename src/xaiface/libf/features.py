"""LIBF features (Locally Interpretable Boosted Features, XAIface D5.2 sections 3.2.3 and 3.3.1).

Per face: each of the eleven patches is embedded by the BYOL encoder (16-d), normalised per
patch, and followed by its visibility bit; stacked patch by patch this gives
``11 x (16 + 1) = 187`` values::

    [left_eye.e0 .. left_eye.e15, left_eye.visible, right_eye.e0, ..., right_chin.visible]

Per-patch normalisation: the embedding minus that patch kind's mean embedding (measured on the
encoder's training patches), scaled to unit length; a patch that is not visible gets zeros (and
visibility 0), so an absent patch carries no appearance information.

Pair encodings (374-d each), both patch-major in two blocks of 187:

* ``"concat"``: ``[L_q, L_t]``, query then template LIBF, as D5.2 specifies;
* ``"symmetric"``: ``[|L_q - L_t|, L_q * L_t]``, element-wise; invariant to swapping the faces.
  The products of one patch sum to the cosine similarity of its two normalised embeddings.

and one 11-d encoding, one value per patch:

* ``"patch-cosine"``: the cosine similarity of the two faces' normalised embeddings of each
  patch (the sum of that patch's products above), NaN where the patch is not visible in both
  faces (the EBM's missing-value bin). An EBM adds one learned function of each patch's
  similarity, so its decision is a sum over patches by construction. This is the encoding for
  encoders whose patch embeddings are identity codes (:mod:`.distill`); a sum of 16 products is
  out of reach of an additive model of the symmetric encoding.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, WeightsError
from .byol import BYOLConfig, PatchEncoder, load_checkpoint, save_checkpoint
from .patches import N_PATCHES, PATCH_NAMES

__all__ = [
    "ENCODER_FORMAT", "LIBF_DIM", "PAIR_ENCODINGS", "LIBFEncoder", "libf_feature_names", "libf_from_embeddings",
    "pair_feature_names", "pair_features", "feature_patch",
]

ENCODER_FORMAT = "xaiface-libf-encoder"
PAIR_ENCODINGS = ("concat", "symmetric", "patch-cosine")


def _per_patch(dim: int) -> int:
    return dim + 1


LIBF_DIM = N_PATCHES * _per_patch(16)  # 187 for the 16-d embedding of D5.2


def libf_feature_names(embedding_dim: int = 16) -> list[str]:
    """Names of the ``11 x (D + 1)`` LIBF values, e.g. ``"nose.e3"``, ``"nose.visible"``."""
    return [f"{p}.{k}" for p in PATCH_NAMES for k in [f"e{i}" for i in range(embedding_dim)] + ["visible"]]


def libf_from_embeddings(embeddings: np.ndarray, visible: np.ndarray, center: np.ndarray) -> np.ndarray:
    """LIBF features from raw patch embeddings.

    Args:
        embeddings: ``(N, 11, D)`` encoder outputs. visible: ``(N, 11)`` bool.
        center: ``(11, D)`` mean embedding of each patch kind.
    Returns:
        ``(N, 11 * (D + 1))`` float32.
    """
    e = np.asarray(embeddings, dtype=np.float64)
    vis = np.asarray(visible, dtype=bool)
    if e.ndim != 3 or e.shape[1] != N_PATCHES or vis.shape != e.shape[:2] or np.shape(center) != e.shape[1:]:
        raise ConfigError(f"LIBF needs embeddings (N, 11, D), visibility (N, 11) and centres (11, D); got "
                          f"{e.shape}, {vis.shape}, {np.shape(center)}")
    c = e - np.asarray(center, dtype=np.float64)[None]
    n = np.linalg.norm(c, axis=-1, keepdims=True)
    c = np.where(n > 1e-12, c / np.maximum(n, 1e-12), 0.0) * vis[..., None]
    return np.concatenate([c, vis[..., None].astype(np.float64)], axis=-1).reshape(len(e), -1).astype(np.float32)


def pair_features(la: np.ndarray, lb: np.ndarray, encoding: str = "symmetric") -> np.ndarray:
    """The verification feature of pairs of LIBF vectors ``(N, 187)``: 374-d, or 11-d for ``"patch-cosine"``
    (see module docstring)."""
    a, b = np.atleast_2d(np.asarray(la, dtype=np.float32)), np.atleast_2d(np.asarray(lb, dtype=np.float32))
    if a.shape != b.shape or a.ndim != 2:
        raise ConfigError(f"pair features need two LIBF arrays of one shape (N, F), got {a.shape} and {b.shape}")
    if encoding == "concat":
        return np.concatenate([a, b], axis=1)
    if encoding == "symmetric":
        return np.concatenate([np.abs(a - b), a * b], axis=1)
    if encoding == "patch-cosine":
        if a.shape[1] % N_PATCHES:
            raise ConfigError(f"LIBF vectors hold 11 patches of (D + 1) values; got {a.shape[1]} values")
        pa, pb = a.reshape(len(a), N_PATCHES, -1), b.reshape(len(b), N_PATCHES, -1)
        both = (pa[..., -1] > 0.5) & (pb[..., -1] > 0.5)
        cos = (pa[..., :-1].astype(np.float64) * pb[..., :-1]).sum(-1)
        return np.where(both, cos, np.nan).astype(np.float32)
    raise ConfigError(f"pair encoding must be one of {PAIR_ENCODINGS}, got {encoding!r}")


def pair_feature_names(encoding: str = "symmetric", embedding_dim: int = 16) -> list[str]:
    """``"a.nose.e3"`` / ``"b.nose.e3"`` (concat), ``"absdiff.nose.e3"`` / ``"prod.nose.e3"`` (symmetric),
    or ``"cos.nose"`` (patch-cosine)."""
    if encoding == "patch-cosine":
        return [f"cos.{p}" for p in PATCH_NAMES]
    blocks = {"concat": ("a", "b"), "symmetric": ("absdiff", "prod")}
    if encoding not in blocks:
        raise ConfigError(f"pair encoding must be one of {PAIR_ENCODINGS}, got {encoding!r}")
    base = libf_feature_names(embedding_dim)
    return [f"{blk}.{n}" for blk in blocks[encoding] for n in base]


def feature_patch(index: int, embedding_dim: int = 16, encoding: str = "symmetric") -> tuple[int, int]:
    """``(block, patch)`` of pair feature ``index``: block 0/1 (a/b or absdiff/prod; 0 for patch-cosine), patch 0..10."""
    if encoding == "patch-cosine":
        if not 0 <= index < N_PATCHES:
            raise ConfigError(f"patch-cosine has {N_PATCHES} features, got index {index}")
        return 0, int(index)
    per = N_PATCHES * _per_patch(embedding_dim)
    return index // per, (index % per) // _per_patch(embedding_dim)


class LIBFEncoder:
    """A trained patch encoder with the per-patch centres: patches -> 187-d LIBF features.

    Args:
        encoder: the patch encoder (BYOL's online encoder, or a distilled one). center: ``(11, D)``
            mean embeddings per patch kind.
        config: its :class:`~xaiface.libf.byol.BYOLConfig`. meta: anything JSON-like to keep with it
            (e.g. training identities, fold, geometry).
        projection: optional ``(11, D, D)`` per-patch-kind linear map applied to the encoder's output
            (``e_p = A_p' z_p``; a distilled encoder's folded heads, :func:`~.distill.fold_heads`);
            ``None``: the encoder's output is the embedding (BYOL).
    """

    def __init__(self, encoder: PatchEncoder, center: np.ndarray, config: BYOLConfig, meta: dict[str, Any] | None = None,
                 projection: np.ndarray | None = None):
        self.encoder = encoder.eval()
        self.center = np.asarray(center, dtype=np.float32)
        self.config = config
        self.meta = dict(meta or {})
        d = config.embedding_dim
        if self.center.shape != (N_PATCHES, d):
            raise ConfigError(f"centres must be (11, {d}), got {self.center.shape}")
        self.projection = None if projection is None else np.asarray(projection, dtype=np.float32)
        if self.projection is not None and self.projection.shape != (N_PATCHES, d, d):
            raise ConfigError(f"projection must be (11, {d}, {d}), got {self.projection.shape}")

    @property
    def patch_size(self) -> int:
        return self.config.patch_size

    def embed(self, pixels: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Raw embeddings ``(N, 11, D)`` of patches ``(N, 11, P, P, 3)`` uint8."""
        px = np.asarray(pixels)
        p = self.config.patch_size
        if px.ndim != 5 or px.shape[1:] != (N_PATCHES, p, p, 3) or px.dtype != np.uint8:
            raise ConfigError(f"LIBF takes (N, 11, {p}, {p}, 3) uint8 patches, got {px.shape} {px.dtype}")
        e = self.encoder.embed_uint8(px.reshape(-1, p, p, 3), batch_size=batch_size)
        return _project(e.reshape(len(px), N_PATCHES, -1), self.projection)

    def transform(self, pixels: np.ndarray, visible: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """LIBF features ``(N, 187)`` of patches ``(N, 11, P, P, 3)`` and visibility ``(N, 11)``."""
        return libf_from_embeddings(self.embed(pixels, batch_size), visible, self.center)

    @staticmethod
    def centers_from(encoder: PatchEncoder, pixels: np.ndarray, visible: np.ndarray,
                     projection: np.ndarray | None = None) -> np.ndarray:
        """Mean embedding ``(11, D)`` of each patch kind over its visible patches (after ``projection``)."""
        n, k, p = pixels.shape[0], pixels.shape[1], pixels.shape[2]
        e = _project(encoder.embed_uint8(np.asarray(pixels).reshape(-1, p, p, 3)).reshape(n, k, -1), projection)
        vis = np.asarray(visible, bool)
        out = np.zeros((k, e.shape[-1]), np.float32)
        for j in range(k):
            rows = e[vis[:, j], j] if vis[:, j].any() else e[:, j]
            out[j] = rows.mean(0)
        return out

    # ---- files -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """``torch.save`` of the configuration, encoder state dict, centres and meta (plain values)."""
        return save_checkpoint(path, {
            "format": ENCODER_FORMAT, "version": 1, "config": self.config.to_dict(),
            "encoder": {k: v.contiguous() for k, v in self.encoder.state_dict().items()},
            "center": torch.from_numpy(self.center.copy()), "meta": self.meta,
            **({} if self.projection is None else {"projection": torch.from_numpy(self.projection.copy())}),
        })

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LIBFEncoder":
        """Read a file written by :meth:`save` (``torch.load(weights_only=True)``).

        Raises:
            WeightsError: missing, corrupt, of another format, or not fitting the encoder.
        """
        state = load_checkpoint(path, ENCODER_FORMAT, required=("config", "encoder", "center"))
        try:
            cfg = BYOLConfig.from_dict(state["config"])
        except (ConfigError, TypeError) as e:
            raise WeightsError(f"{path}: encoder configuration is not valid ({e})") from None
        enc = PatchEncoder(cfg.embedding_dim, cfg.width)
        try:
            enc.load_state_dict(state["encoder"])
        except (RuntimeError, KeyError) as e:
            raise WeightsError(f"{path}: weights do not fit the patch encoder of {cfg.to_dict()} ({str(e).splitlines()[0]})") from None
        center = state["center"]
        if not torch.is_tensor(center) or tuple(center.shape) != (N_PATCHES, cfg.embedding_dim):
            raise WeightsError(f"{path}: per-patch centres must be a (11, {cfg.embedding_dim}) tensor")
        proj = state.get("projection")
        d = cfg.embedding_dim
        if proj is not None and (not torch.is_tensor(proj) or tuple(proj.shape) != (N_PATCHES, d, d)):
            raise WeightsError(f"{path}: the per-patch projection must be a (11, {d}, {d}) tensor")
        return cls(enc, center.numpy(), cfg, state.get("meta") or {}, None if proj is None else proj.numpy())


def _project(e: np.ndarray, projection: np.ndarray | None) -> np.ndarray:
    """``(N, 11, D)`` embeddings through the per-patch maps ``(11, D, D)`` (``e_p A_p``; ``A_p`` is symmetric)."""
    if projection is None:
        return e
    return np.einsum("npd,pde->npe", e, projection).astype(np.float32)
