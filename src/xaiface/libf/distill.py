"""Patch embeddings distilled from the deep face model: every patch learns to predict the identity code.

D5.2 trains the 16-d patch encoder by BYOL alone, which sees no identity: after 6,000 BYOL steps on
every face outside the test fold, the best per-patch EBM verifies 74.7% of LFW fold 2 (and 77.5%
with a per-patch joint Bayesian metric; ``docs/results/libf/explore``), far from the 85% a user
needs. Knowledge distillation (Hinton et al., 2015) supplies identity without labels: the default
deep model (dlib's ResNet, 98.9% on LFW) embeds every *training* face, and the patch encoder is
trained so that each patch's 16-d embedding alone predicts that face's identity code.

Target of face ``i``: the teacher's mirror-averaged embedding ``t_i`` (unit length), centred on the
mean of the training faces and scaled to unit length again (``c_i``, 128-d for dlib). Each patch kind
``p`` has a linear head ``W_p`` (16 x 128, no bias) that maps its 16-d embedding ``z_ip`` to the
teacher's space; the loss over the visible patches of a batch of faces is::

    L = mean_{i,p visible} (1 - cos(W_p' z_ip, c_i))  +  joint_weight * mean_i (1 - cos(sum_p W_p' z_ip, c_i))

The first term makes every patch's embedding an identity code on its own, so the per-patch cosine
of two faces (the ``"patch-cosine"`` pair encoding of :mod:`.features`) is a similarity an EBM can
add up; the second lets the patches complement one another. After training, the head is folded
into the embedding: ``e_ip = A_p' z_ip`` with ``A_p A_p' = W_p W_p'`` (symmetric square root), so
``e_ip . e_jp = (W_p' z_ip) . (W_p' z_jp)`` and the 16-d embedding carries the head's metric. (A
head-free variant, regressing the teacher's top-16 principal components directly, verified
81.2% of LFW fold 2 against 84.7% with heads on the same budget: the head lets each patch kind
choose the 16 directions of identity it can see.)
The encoder is the :class:`~.byol.PatchEncoder`
of D5.2 (shared by all eleven patch kinds) and its output is the 16-d patch embedding, so LIBF
vectors keep D5.2's shape (11 x (16 + 1)). Deviation from D5.2, stated: the training signal is the
teacher's embedding instead of BYOL's self-supervision; nothing of the test fold (its photos or
their teacher embeddings) is used. Augmentation is light (shift, scale, rotation +-6 degrees,
brightness and contrast, grey): BYOL's strong augmentations would ask a patch to predict the same
code from views that no longer show the same detail.

Checkpoints (``torch.save`` of tensors and plain values, atomic, after every epoch) are read back
with ``torch.load(weights_only=True)``; an interrupted run continues from its last epoch.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, WeightsError
from .byol import BYOLConfig, EpochConfig, PatchEncoder, load_checkpoint, run_epochs, save_checkpoint
from .patches import N_PATCHES

__all__ = ["DISTILL_FORMAT", "DistillConfig", "DistillResult", "distill_targets", "fold_heads", "light_augment",
           "distill_loss", "train_distilled"]

DISTILL_FORMAT = "xaiface-libf-distill"


@dataclass(frozen=True)
class DistillConfig(EpochConfig):
    """Hyper-parameters of the distilled patch encoder.

    Attributes:
        embedding_dim: patch embedding size (16, as D5.2).
        patch_size, width: as :class:`~.byol.BYOLConfig` (the same encoder).
        batch_size: *faces* per step (each gives its eleven patches).
        steps_per_epoch, epochs: 250 x 12 = 3,000 steps (about 5.5 minutes on one core).
        lr: peak AdamW learning rate (5% warm-up, cosine decay). weight_decay: AdamW's.
        joint_weight: weight of the whole-face term of the loss.
        augment: light augmentation of the training patches.
        seed: seeds initialisation, sampling and augmentation (a resumed run repeats them).
    """

    embedding_dim: int = 16
    patch_size: int = 24
    width: int = 16
    batch_size: int = 64
    steps_per_epoch: int = 250
    epochs: int = 12
    lr: float = 3e-3
    weight_decay: float = 1e-4
    joint_weight: float = 1.0
    augment: bool = True
    seed: int = 0

    _what = "distillation"

    def __post_init__(self) -> None:
        self._check_positive(("embedding_dim", "patch_size", "width", "batch_size", "steps_per_epoch", "epochs"))
        if not self.lr > 0 or self.joint_weight < 0:
            raise ConfigError(f"DistillConfig needs lr > 0 and joint_weight >= 0, got {self.lr}, {self.joint_weight}")

    def encoder_config(self) -> BYOLConfig:
        """The :class:`~.byol.BYOLConfig` describing the same encoder (how :class:`~.features.LIBFEncoder` files store it)."""
        return BYOLConfig(embedding_dim=self.embedding_dim, patch_size=self.patch_size, width=self.width,
                          epochs=self.epochs, seed=self.seed)


def distill_targets(teacher: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length, centred identity codes of the training faces' teacher embeddings.

    Args:
        teacher: ``(N, D)`` teacher embeddings of the training faces (any length; normalised here).
    Returns:
        ``(codes (N, D) float32, mean (D,))``: ``codes = normalise(normalise(t) - mean)``.
    """
    t = np.asarray(teacher, dtype=np.float64)
    if t.ndim != 2 or len(t) < 2 or not np.isfinite(t).all():
        raise ConfigError(f"teacher embeddings must be a finite (N >= 2, D) array, got shape {t.shape}")
    t = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    mean = t.mean(0)
    c = t - mean
    c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    return c.astype(np.float32), mean


def fold_heads(heads: np.ndarray) -> np.ndarray:
    """``(11, D, D)`` matrices ``A_p`` with ``A_p A_p' = W_p W_p'`` of heads ``(11, D, T)`` (symmetric square roots)."""
    w = np.asarray(heads, dtype=np.float64)
    out = np.zeros((w.shape[0], w.shape[1], w.shape[1]))
    for p in range(len(w)):
        val, vec = np.linalg.eigh(w[p] @ w[p].T)
        out[p] = vec @ np.diag(np.sqrt(np.clip(val, 0, None))) @ vec.T
    return out.astype(np.float32)


def light_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mildly perturbed patches ``(B, 3, P, P)`` in [0, 1]: scale 0.9-1.05, rotation +-6 degrees,
    shift +-4% of the side, brightness and contrast 0.75-1.25, grey with probability 0.15."""
    b = x.shape[0]

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=generator)

    s, th = u(0.9, 1.05), u(-6.0, 6.0) * math.pi / 180
    tx, ty = u(-0.08, 0.08), u(-0.08, 0.08)
    c, si = torch.cos(th) * s, torch.sin(th) * s
    theta = torch.stack([torch.stack([c, -si, tx], 1), torch.stack([si, c, ty], 1)], 1)
    y = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), padding_mode="reflection",
                      align_corners=False)
    bri, con = u(0.75, 1.25)[:, None, None, None], u(0.75, 1.25)[:, None, None, None]
    m = y.mean(dim=(1, 2, 3), keepdim=True)
    y = ((y - m) * con + m) * bri
    grey = (torch.rand(b, generator=generator) < 0.15).float()[:, None, None, None]
    g = (0.299 * y[:, 0:1] + 0.587 * y[:, 1:2] + 0.114 * y[:, 2:3]).expand_as(y)
    return (grey * g + (1 - grey) * y).clamp(0, 1)


def distill_loss(z: torch.Tensor, heads: torch.Tensor, visible: torch.Tensor, codes: torch.Tensor,
                 joint_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The loss of the module docstring.

    Args:
        z: ``(B, 11, D)`` patch embeddings. heads: ``(11, D, T)``. visible: ``(B, 11)`` 0/1.
        codes: ``(B, T)`` unit targets.
    Returns:
        ``(total, per-patch term, joint term)``.
    """
    v = visible.float()
    z = torch.einsum("bpd,pdt->bpt", z, heads)
    cp = (F.normalize(z, dim=-1) * codes[:, None]).sum(-1)
    per_patch = ((1 - cp) * v).sum() / v.sum().clamp(min=1)
    joint = (1 - (F.normalize((z * v[..., None]).sum(1), dim=-1) * codes).sum(-1)).mean()
    return per_patch + joint_weight * joint, per_patch, joint


@dataclass
class DistillResult:
    """A trained encoder (eval mode), its folded heads ``(11, D, D)`` (:func:`fold_heads`), configuration,
    per-epoch mean losses and training seconds."""

    encoder: PatchEncoder
    projection: np.ndarray
    config: DistillConfig
    epoch_loss: list[float]
    seconds: float
    resumed_from_epoch: int


def train_distilled(pixels: np.ndarray, visible: np.ndarray, teacher: np.ndarray, config: DistillConfig | None = None,
                    checkpoint: str | os.PathLike | None = None, *, resume: bool = True, progress: bool = True,
                    max_epochs: int | None = None, on_epoch: Callable[[int, float], None] | None = None,
                    threads: int | None = None) -> DistillResult:
    """Train the patch encoder to predict the teacher's identity code from every patch.

    Args:
        pixels: ``(N, 11, P, P, 3)`` uint8 patches of the training faces. visible: ``(N, 11)`` bool.
        teacher: ``(N, D)`` the teacher's embeddings of the same faces.
        config: hyper-parameters (default :class:`DistillConfig`).
        checkpoint, resume, max_epochs, on_epoch, threads: as :func:`~.byol.train_byol`.
    Raises:
        ConfigError: inputs of the wrong shape, or a checkpoint of another configuration.
        WeightsError: an unreadable checkpoint.
    """
    cfg = config or DistillConfig()
    px = np.asarray(pixels)
    p = cfg.patch_size
    if px.ndim != 5 or px.shape[1:] != (N_PATCHES, p, p, 3) or px.dtype != np.uint8:
        raise ConfigError(f"distillation takes (N, 11, {p}, {p}, 3) uint8 patches, got {px.shape} {px.dtype}")
    vis = np.asarray(visible, dtype=bool)
    if vis.shape != px.shape[:2] or len(teacher) != len(px):
        raise ConfigError(f"{len(px)} faces of patches need visibility (N, 11) and N teacher embeddings; got "
                          f"{vis.shape} and {len(teacher)}")
    if threads is not None:
        before = torch.get_num_threads()
        torch.set_num_threads(int(threads))
        try:
            return train_distilled(px, vis, teacher, cfg, checkpoint, resume=resume, progress=progress,
                                   max_epochs=max_epochs, on_epoch=on_epoch, threads=None)
        finally:
            torch.set_num_threads(before)
    codes = torch.from_numpy(distill_targets(teacher)[0])
    torch.manual_seed(cfg.seed)
    enc = PatchEncoder(cfg.embedding_dim, cfg.width).to(memory_format=torch.channels_last)
    heads = torch.nn.Parameter(torch.randn(N_PATCHES, cfg.embedding_dim, codes.shape[1]) / math.sqrt(cfg.embedding_dim))
    opt = torch.optim.AdamW([*enc.parameters(), heads], lr=cfg.lr, weight_decay=cfg.weight_decay)
    epoch0, epoch_loss, seconds = 0, [], 0.0
    ck = Path(checkpoint) if checkpoint is not None else None
    if ck is not None and resume and ck.is_file():
        state = load_checkpoint(ck, DISTILL_FORMAT, required=("config", "epoch", "encoder", "optimizer", "epoch_loss",
                                                              "seconds", "n_faces"))
        if state["config"] != cfg.to_dict() or int(state["n_faces"]) != len(px):
            raise ConfigError(f"{ck}: checkpoint of another distillation ({state['config']}, {state['n_faces']} faces); "
                              f"expected {cfg.to_dict()} on {len(px)} faces (use another folder or delete it)")
        try:
            enc.load_state_dict(state["encoder"])
            if tuple(state["heads"].shape) != tuple(heads.shape):
                raise ValueError(f"heads of shape {tuple(state['heads'].shape)}, expected {tuple(heads.shape)}")
            with torch.no_grad():
                heads.copy_(state["heads"])
            opt.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise WeightsError(f"{ck}: checkpoint does not fit the patch encoder ({str(e).splitlines()[0]})") from None
        epoch0, epoch_loss, seconds = int(state["epoch"]), [float(v) for v in state["epoch_loss"]], float(state["seconds"])
    last = cfg.epochs if max_epochs is None else min(cfg.epochs, epoch0 + max_epochs)
    enc.train()
    data, V = torch.from_numpy(px), torch.from_numpy(vis)

    def step_loss(step: int, rng: np.random.Generator, gen: torch.Generator) -> torch.Tensor:
        idx = torch.from_numpy(rng.integers(0, len(px), cfg.batch_size))
        x = data[idx].permute(0, 1, 4, 2, 3).float().div_(255).flatten(0, 1)  # (B*11, 3, P, P)
        if cfg.augment:
            x = light_augment(x, gen)
        z = enc(x).view(cfg.batch_size, N_PATCHES, -1)
        return distill_loss(z, heads, V[idx], codes[idx], cfg.joint_weight)[0]

    def save(epoch: int, secs: float) -> None:
        if ck is not None:
            save_checkpoint(ck, {
                "format": DISTILL_FORMAT, "version": 1, "config": cfg.to_dict(), "epoch": epoch,
                "encoder": enc.state_dict(), "heads": heads.detach().clone(), "optimizer": opt.state_dict(),
                "epoch_loss": epoch_loss, "seconds": secs, "n_faces": len(px),
            })

    seconds = run_epochs(cfg, opt, epoch0, last, step_loss, desc="distil", progress=progress, epoch_loss=epoch_loss,
                         seconds=seconds, save=save, on_epoch=on_epoch)
    return DistillResult(enc.eval(), fold_heads(heads.detach().numpy()), cfg, epoch_loss, seconds, epoch0)
