"""Self-supervised patch embeddings: BYOL (Grill et al., NeurIPS 2020) on face patches.

"Bootstrap your own latent": two augmented views of one patch go through an *online* network
(encoder -> projector -> predictor) and a *target* network (encoder -> projector) whose weights
are an exponential moving average (EMA) of the online ones; the online prediction of one view
regresses the target projection of the other (loss ``2 - 2 cos``, symmetrised). No labels and no
negative pairs are used. The encoder's 16-d output is the patch embedding of the LIBF features
(XAIface D5.2 section 3.2.2); projector and predictor are discarded after training.

The encoder is a small CNN sized to train on a 2-core CPU in minutes (about 2 MMAC per 24x24
patch). One encoder is shared by all eleven patch kinds.
On a shared machine one thread is often faster than two (``threads`` of :func:`train_byol`).

Checkpoints are ``torch.save`` dicts of tensors and plain values (configuration, state dicts,
optimiser state, loss history), written atomically after every epoch and read back with
``torch.load(weights_only=True)``; a file that is not such a checkpoint raises
:class:`~xaiface.errors.WeightsError`.
"""
from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, WeightsError

__all__ = [
    "BYOL", "BYOLConfig", "PatchEncoder", "augment", "byol_loss", "load_checkpoint", "save_checkpoint",
    "train_byol", "BYOLResult", "CHECKPOINT_FORMAT",
]

CHECKPOINT_FORMAT = "xaiface-libf-byol"
_VERSION = 1


class EpochConfig:
    """What the settings dataclasses of the patch encoders' trainings share (BYOL, distillation):
    positive-integer checks, a plain-dict form and the step count. Subclasses set ``_what``."""

    _what = "training"

    def _check_positive(self, names: tuple[str, ...]) -> None:
        for name in names:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{type(self).__name__}.{name} must be a positive integer, got {v!r}")
        if getattr(self, "batch_size", 2) < 2:
            raise ConfigError(f"{type(self).__name__}.batch_size must be >= 2 (batch normalisation), got {self.batch_size}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown {cls._what} settings {unknown}; known: {sorted(known)}")
        return cls(**d)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch  # type: ignore[attr-defined]


@dataclass(frozen=True)
class BYOLConfig(EpochConfig):
    """Hyper-parameters of the patch encoder and of its BYOL training.

    Attributes:
        embedding_dim: size of the patch embedding (16 in D5.2).
        patch_size: side of the input patches, pixels.
        width: channels of the first convolution (then 2x, 4x, 4x).
        hidden_dim, projection_dim: projector / predictor MLP sizes.
        batch_size: patches per step. steps_per_epoch: optimiser steps per epoch. epochs: epochs.
        lr: peak AdamW learning rate (5% linear warm-up, cosine decay). weight_decay: AdamW's.
        tau_base: EMA rate at the start; it rises to 1 along a cosine (BYOL's schedule).
        seed: seeds the sampling of patches and augmentations (a resumed run repeats them).
    """

    embedding_dim: int = 16
    patch_size: int = 24
    width: int = 16
    hidden_dim: int = 128
    projection_dim: int = 32
    batch_size: int = 256
    steps_per_epoch: int = 50
    epochs: int = 12
    lr: float = 2e-3
    weight_decay: float = 1e-4
    tau_base: float = 0.99
    seed: int = 0

    _what = "BYOL"

    def __post_init__(self) -> None:
        self._check_positive(("embedding_dim", "patch_size", "width", "hidden_dim", "projection_dim", "batch_size",
                              "steps_per_epoch", "epochs"))
        if self.patch_size < 8:
            raise ConfigError(f"BYOLConfig.patch_size must be >= 8, got {self.patch_size}")
        if not 0.0 <= self.tau_base < 1.0:
            raise ConfigError(f"BYOLConfig.tau_base must be in [0, 1), got {self.tau_base}")
        if not self.lr > 0:
            raise ConfigError(f"BYOLConfig.lr must be > 0, got {self.lr}")


# ---- networks ------------------------------------------------------------------------------------

def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PatchEncoder(nn.Module):
    """Patch -> ``embedding_dim`` embedding.

    Input ``(B, 3, P, P)`` float RGB in [0, 1] (normalised inside as ``(x - 0.5) / 0.25``);
    output ``(B, embedding_dim)``. Use :meth:`embed_uint8` for ``(B, P, P, 3)`` uint8 patches.
    """

    def __init__(self, embedding_dim: int = 16, width: int = 16):
        super().__init__()
        w = width
        # stride 2 first: full-resolution activations dominate the CPU cost of small patches
        self.features = nn.Sequential(_conv(3, w, 2), _conv(w, 2 * w, 1), _conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w, 2))
        self.head = nn.Linear(4 * w, embedding_dim)
        self.embedding_dim = embedding_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ConfigError(f"PatchEncoder expects (B, 3, P, P) pixels in [0, 1], got {tuple(x.shape)}")
        h = self.features(((x - 0.5) / 0.25).contiguous(memory_format=torch.channels_last))
        return self.head(h.mean(dim=(2, 3)))

    @torch.inference_mode()
    def embed_uint8(self, patches: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Embeddings ``(N, D)`` float32 of ``(N, P, P, 3)`` uint8 patches (eval mode)."""
        was = self.training
        self.eval()
        out = []
        for i in range(0, len(patches), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(patches[i:i + batch_size])).permute(0, 3, 1, 2).float() / 255
            out.append(self(x).numpy())
        self.train(was)
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.embedding_dim), np.float32)


def _mlp(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, cout))


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``2 - 2 cos(p, z)`` per row (``z`` is treated as a constant)."""
    return 2 - 2 * (F.normalize(p, dim=-1) * F.normalize(z.detach(), dim=-1)).sum(dim=-1)


class BYOL(nn.Module):
    """Online (encoder, projector, predictor) and EMA target (encoder, projector) networks."""

    def __init__(self, config: BYOLConfig):
        super().__init__()
        c = config
        self.online_encoder = PatchEncoder(c.embedding_dim, c.width)
        self.online_projector = _mlp(c.embedding_dim, c.hidden_dim, c.projection_dim)
        self.predictor = _mlp(c.projection_dim, c.hidden_dim, c.projection_dim)
        self.target_encoder = copy.deepcopy(self.online_encoder)
        self.target_projector = copy.deepcopy(self.online_projector)
        for p in self._target_params():
            p.requires_grad_(False)

    def _online_params(self) -> list[nn.Parameter]:
        return list(self.online_encoder.parameters()) + list(self.online_projector.parameters())

    def _target_params(self) -> list[nn.Parameter]:
        return list(self.target_encoder.parameters()) + list(self.target_projector.parameters())

    def trainable_parameters(self) -> list[nn.Parameter]:
        return self._online_params() + list(self.predictor.parameters())

    def loss(self, v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
        """Symmetrised BYOL loss of two views ``(B, 3, P, P)`` of the same patches (mean over B)."""
        p1 = self.predictor(self.online_projector(self.online_encoder(v1)))
        p2 = self.predictor(self.online_projector(self.online_encoder(v2)))
        with torch.no_grad():
            z1 = self.target_projector(self.target_encoder(v1))
            z2 = self.target_projector(self.target_encoder(v2))
        return (byol_loss(p1, z2) + byol_loss(p2, z1)).mean()

    @torch.no_grad()
    def update_target(self, tau: float) -> None:
        """EMA step: ``target <- tau * target + (1 - tau) * online`` (parameters only)."""
        for po, pt in zip(self._online_params(), self._target_params()):
            pt.mul_(tau).add_(po.detach(), alpha=1 - tau)


def tau_schedule(step: int, total: int, tau_base: float) -> float:
    """BYOL's EMA rate: ``1 - (1 - tau_base) (cos(pi k / K) + 1) / 2``."""
    return 1 - (1 - tau_base) * (math.cos(math.pi * min(step, total) / max(total, 1)) + 1) / 2


def lr_schedule(step: int, total: int, lr: float) -> float:
    warm = max(1, int(0.05 * total))
    if step < warm:
        return lr * (step + 1) / warm
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


# ---- augmentations -------------------------------------------------------------------------------

def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One random view of each patch ``(B, 3, P, P)`` in [0, 1].

    Random crop (75-100% of the side, aspect 0.86-1.16, shifted within the patch), rotation
    +-12 degrees, horizontal flip (p 0.5), colour jitter (p 0.8: brightness, contrast,
    saturation 0.6-1.4), grey (p 0.2), 3x3 Gaussian blur (p 0.3).
    """
    b = x.shape[0]
    g = generator

    def u(lo: float, hi: float, n: int = b) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=g)

    s = u(0.75, 1.0)
    asp = torch.exp(u(-0.15, 0.15))
    th = u(-12.0, 12.0) * math.pi / 180
    flip = torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0)
    tx, ty = (1 - s) * u(-1, 1), (1 - s) * u(-1, 1)
    sx, sy = s * asp.sqrt() * flip, s / asp.sqrt()
    cos, sin = torch.cos(th), torch.sin(th)
    theta = torch.stack([torch.stack([cos * sx, -sin * sy, tx], 1), torch.stack([sin * sx, cos * sy, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    jit = (torch.rand(b, generator=g) < 0.8).float()[:, None, None, None]
    bri = 1 + jit * (u(0.6, 1.4)[:, None, None, None] - 1)
    con = 1 + jit * (u(0.6, 1.4)[:, None, None, None] - 1)
    sat = 1 + jit * (u(0.6, 1.4)[:, None, None, None] - 1)
    y = y * bri
    grey = (0.299 * y[:, 0:1] + 0.587 * y[:, 1:2] + 0.114 * y[:, 2:3])
    y = (y - grey.mean(dim=(2, 3), keepdim=True)) * con + grey.mean(dim=(2, 3), keepdim=True)
    grey = (0.299 * y[:, 0:1] + 0.587 * y[:, 1:2] + 0.114 * y[:, 2:3])
    y = grey + (y - grey) * sat
    to_grey = (torch.rand(b, generator=g) < 0.2).float()[:, None, None, None]
    grey = (0.299 * y[:, 0:1] + 0.587 * y[:, 1:2] + 0.114 * y[:, 2:3])
    y = to_grey * grey.expand_as(y) + (1 - to_grey) * y
    blur = (torch.rand(b, generator=g) < 0.3).float()[:, None, None, None]
    k = torch.tensor([1.0, 2.0, 1.0])
    k2 = (k[:, None] * k[None]) / 16
    yb = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), k2.expand(3, 1, 3, 3).contiguous(), groups=3)
    y = blur * yb + (1 - blur) * y
    return y.clamp(0, 1)


# ---- checkpoints ---------------------------------------------------------------------------------

def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write a checkpoint dict atomically (temporary file, then rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, p)
    return p


def load_checkpoint(path: str | os.PathLike, expected_format: str = CHECKPOINT_FORMAT,
                    required: tuple[str, ...] = ("config",)) -> dict[str, Any]:
    """Read a checkpoint safely (``torch.load(weights_only=True)``) and check its format tag.

    Raises:
        WeightsError: the file is missing, unreadable, not a checkpoint of ``expected_format``,
            or lacks one of ``required``.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: checkpoint not found; expected a file written by `xaiface train libf`")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, ... on bad files
        raise WeightsError(
            f"{p}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            f"expected a {expected_format} file written by `xaiface train libf` (delete it to retrain)"
        ) from None
    if not isinstance(state, dict) or state.get("format") != expected_format:
        got = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise WeightsError(f"{p}: checkpoint of format {got!r}; expected {expected_format!r}")
    if state.get("version") != _VERSION:
        raise WeightsError(f"{p}: {expected_format} version {state.get('version')!r}; this xaiface reads version {_VERSION}")
    missing = [k for k in required if k not in state]
    if missing:
        raise WeightsError(f"{p}: {expected_format} checkpoint lacks {missing}")
    return state


def run_epochs(cfg: EpochConfig, opt: torch.optim.Optimizer, epoch0: int, last: int,
               step_loss: Callable[[int, np.random.Generator, torch.Generator], torch.Tensor], *, desc: str,
               progress: bool, epoch_loss: list[float], seconds: float,
               after_step: Callable[[int], None] | None = None, save: Callable[[int, float], None] | None = None,
               on_epoch: Callable[[int, float], None] | None = None) -> float:
    """The epoch loop the patch encoders' trainings share; returns the training seconds so far.

    Epoch ``e`` draws its batches from ``numpy.random.default_rng([seed, e])`` and its augmentations
    from a torch generator seeded ``seed * 100003 + e``, so a resumed run repeats an uninterrupted one.
    Per step: the learning rate of :func:`lr_schedule`, ``step_loss(step, rng, gen)``, an optimiser
    step, then ``after_step(step)``. After each epoch its mean loss is appended to ``epoch_loss``,
    then ``save(epoch, seconds)`` (a checkpoint) and ``on_epoch(epoch, loss)`` are called.
    """
    from tqdm import tqdm

    seed = getattr(cfg, "seed")
    for epoch in range(epoch0, last):
        t0 = time.perf_counter()
        rng = np.random.default_rng([seed, epoch])
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
        losses: list[float] = []
        bar = tqdm(range(cfg.steps_per_epoch), desc=f"{desc} epoch {epoch + 1}/{cfg.epochs}", unit="step",  # type: ignore[attr-defined]
                   disable=not progress, leave=False)
        for i in bar:
            step = epoch * cfg.steps_per_epoch + i  # type: ignore[attr-defined]
            for group in opt.param_groups:
                group["lr"] = lr_schedule(step, cfg.total_steps, getattr(cfg, "lr"))
            loss = step_loss(step, rng, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step(step)
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
        epoch_loss.append(float(np.mean(losses)))
        seconds += time.perf_counter() - t0
        if save is not None:
            save(epoch + 1, seconds)
        if on_epoch is not None:
            on_epoch(epoch + 1, epoch_loss[-1])
    return seconds


@dataclass
class BYOLResult:
    """A trained encoder (eval mode), its configuration, per-epoch mean losses and training seconds."""

    encoder: PatchEncoder
    config: BYOLConfig
    epoch_loss: list[float]
    seconds: float
    resumed_from_epoch: int


def train_byol(patches: np.ndarray, config: BYOLConfig | None = None, checkpoint: str | os.PathLike | None = None,
               *, resume: bool = True, progress: bool = True, max_epochs: int | None = None,
               on_epoch: Callable[[int, float], None] | None = None, threads: int | None = None) -> BYOLResult:
    """Train a patch encoder with BYOL.

    Args:
        patches: ``(N, P, P, 3)`` uint8 training patches (all patch kinds together).
        config: hyper-parameters (default :class:`BYOLConfig`).
        checkpoint: file written after every epoch; with ``resume`` an existing one is continued
            (its configuration must equal ``config``). ``None``: no checkpoints.
        max_epochs: stop after this many epochs *in this call* (the run stays resumable).
        on_epoch: called with ``(epoch, mean loss)`` after each epoch.
        threads: torch CPU threads during training (restored afterwards); default: unchanged.
    Returns:
        :class:`BYOLResult`.
    Raises:
        ConfigError: patches of the wrong shape, or a checkpoint of another configuration.
        WeightsError: an unreadable checkpoint.
    """
    cfg = config or BYOLConfig()
    pt = np.asarray(patches)
    if pt.ndim != 4 or pt.shape[1:] != (cfg.patch_size, cfg.patch_size, 3) or pt.dtype != np.uint8:
        raise ConfigError(f"BYOL training takes (N, {cfg.patch_size}, {cfg.patch_size}, 3) uint8 patches, got {pt.shape} {pt.dtype}")
    if len(pt) < 2:
        raise ConfigError(f"BYOL training needs at least 2 patches, got {len(pt)}")
    if threads is not None:
        before = torch.get_num_threads()
        torch.set_num_threads(int(threads))
        try:
            return train_byol(pt, cfg, checkpoint, resume=resume, progress=progress, max_epochs=max_epochs,
                              on_epoch=on_epoch, threads=None)
        finally:
            torch.set_num_threads(before)
    torch.manual_seed(cfg.seed)
    model = BYOL(cfg).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    epoch0, epoch_loss, seconds = 0, [], 0.0
    ck = Path(checkpoint) if checkpoint is not None else None
    if ck is not None and resume and ck.is_file():
        state = load_checkpoint(ck, required=("config", "epoch", "model", "optimizer", "epoch_loss", "seconds"))
        if state["config"] != cfg.to_dict():
            raise ConfigError(f"{ck}: checkpoint of another BYOL configuration {state['config']}; "
                              f"expected {cfg.to_dict()} (use another folder or delete it)")
        try:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise WeightsError(f"{ck}: checkpoint does not fit the BYOL networks ({str(e).splitlines()[0]})") from None
        epoch0, epoch_loss, seconds = int(state["epoch"]), [float(v) for v in state["epoch_loss"]], float(state["seconds"])
    resumed_from = epoch0
    last = cfg.epochs if max_epochs is None else min(cfg.epochs, epoch0 + max_epochs)
    model.train()
    data = torch.from_numpy(pt)  # uint8, shared memory

    def step_loss(step: int, rng: np.random.Generator, gen: torch.Generator) -> torch.Tensor:
        idx = torch.from_numpy(rng.integers(0, len(pt), cfg.batch_size))
        x = data[idx].permute(0, 3, 1, 2).float() / 255
        return model.loss(augment(x, gen), augment(x, gen))

    def save(epoch: int, secs: float) -> None:
        if ck is not None:
            save_checkpoint(ck, {
                "format": CHECKPOINT_FORMAT, "version": _VERSION, "config": cfg.to_dict(), "epoch": epoch,
                "model": model.state_dict(), "optimizer": opt.state_dict(), "epoch_loss": epoch_loss, "seconds": secs,
            })

    seconds = run_epochs(cfg, opt, epoch0, last, step_loss, desc="BYOL", progress=progress, epoch_loss=epoch_loss,
                         seconds=seconds, save=save, on_epoch=on_epoch,
                         after_step=lambda step: model.update_target(tau_schedule(step + 1, cfg.total_steps, cfg.tau_base)))
    enc = model.online_encoder.eval()
    return BYOLResult(enc, cfg, epoch_loss, seconds, resumed_from)
