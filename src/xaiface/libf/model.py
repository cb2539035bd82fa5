"""A trained LIBF-EBM model: patch geometry + BYOL encoder + EBM verifier, loaded from a training folder.

The folder is the ``--out`` of ``xaiface train libf`` (see :mod:`.train`)::

    config.json                 training settings (patch size, geometry, BYOL, EBM, folds)
    fold-NN/encoder.pt          BYOL encoder + per-patch centres (torch.load(weights_only=True))
    fold-NN/ebm-<encoding>/     model.json + arrays.npz (no pickle)
    report.json                 accuracies, timings, and ``default_fold``

Fold ``NN`` (1..10) is the model whose encoder and EBM never saw LFW fold ``NN``'s people.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import cache_dir
from ..errors import ConfigError, WeightsError
from .ebm import LIBFVerifier
from .features import LIBFEncoder
from .patches import FacePatches, extract_patches

__all__ = ["DEFAULT_ENCODING_ORDER", "LIBFModel", "default_artefacts", "fold_dir"]

#: the EBM a model folder answers with when no encoding is named: the first of these it holds
DEFAULT_ENCODING_ORDER = ("patch-cosine", "symmetric", "concat")


def default_artefacts() -> Path:
    """``$XAIFACE_LIBF`` if set, else ``<cache>/libf`` (the default ``--out`` of ``xaiface train libf``)."""
    env = os.environ.get("XAIFACE_LIBF")
    return Path(env) if env else cache_dir() / "libf"


def fold_dir(root: str | os.PathLike, fold: int) -> Path:
    """``root/fold-NN`` for a 1-based fold number."""
    return Path(root) / f"fold-{int(fold):02d}"


@dataclass
class LIBFModel:
    """Everything needed to verify and explain a pair with LIBF-EBM.

    Attributes:
        encoder: the :class:`LIBFEncoder`. verifier: the fitted :class:`LIBFVerifier`.
        patch_size, geometry, min_inside: how patches were cut for training.
        fold: the (1-based) LFW fold this model never saw. root: its training folder.
    """

    encoder: LIBFEncoder
    verifier: LIBFVerifier
    patch_size: int
    geometry: str | None
    min_inside: float
    fold: int | None = None
    root: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, root: str | os.PathLike | None = None, fold: int | None = None, encoding: str | None = None) -> "LIBFModel":
        """Load the artefacts of one fold (default: the training report's ``default_fold``).

        ``encoding``: the pair encoding's EBM; ``None``: the first trained of ``patch-cosine``,
        ``symmetric``, ``concat`` (a fixed order, not one chosen by test accuracy).

        Raises:
            WeightsError: no trained model there (with the command that trains one), or broken files.
        """
        r = Path(root) if root is not None else default_artefacts()
        cfg_path = r / "config.json"
        if not cfg_path.is_file():
            raise WeightsError(f"{r}: no trained LIBF-EBM model (config.json missing); train one with "
                               f"`xaiface train libf --out {r}` or point XAIFACE_LIBF / artefacts= at a training folder")
        try:
            cfg = json.loads(cfg_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise WeightsError(f"{cfg_path}: unreadable ({e})") from None
        if fold is None:
            fold = _default_fold(r, cfg)
        d = fold_dir(r, fold)
        if encoding is None:
            encoding = next((e for e in DEFAULT_ENCODING_ORDER if (d / f"ebm-{e}" / "model.json").is_file()), "symmetric")
        enc_path, ebm_path = d / "encoder.pt", d / f"ebm-{encoding}"
        if not enc_path.is_file() or not (ebm_path / "model.json").is_file():
            raise WeightsError(f"{d}: fold {fold} is not fully trained ({'encoder.pt' if not enc_path.is_file() else f'ebm-{encoding}'} "
                               f"missing); run `xaiface train libf --out {r}` to finish it")
        enc = LIBFEncoder.load(enc_path)
        ver = LIBFVerifier.load(ebm_path)
        patch = cfg.get("patches", {})
        return cls(enc, ver, int(patch.get("patch_size", enc.patch_size)), patch.get("geometry", "dlib-150"),
                   float(patch.get("min_inside", 0.5)), int(fold), r, {"config": cfg})

    @property
    def encoding(self) -> str:
        return self.verifier.encoding

    def patches(self, image: np.ndarray, landmarks: np.ndarray) -> FacePatches:
        """The eleven patches of a face (image pixels, five landmarks in them)."""
        if self.patch_size != self.encoder.patch_size:
            raise ConfigError(f"patch size {self.patch_size} differs from the encoder's {self.encoder.patch_size}")
        return extract_patches(image, landmarks, self.patch_size, min_inside=self.min_inside)

    def libf(self, patches: FacePatches | list[FacePatches]) -> np.ndarray:
        """LIBF vectors ``(N, 187)`` of one or several faces' patches."""
        fps = [patches] if isinstance(patches, FacePatches) else list(patches)
        px = np.stack([f.pixels for f in fps])
        vis = np.stack([f.visible for f in fps])
        return self.encoder.transform(px, vis)

    def explain(self, image_a: np.ndarray, landmarks_a: np.ndarray, image_b: np.ndarray,
                landmarks_b: np.ndarray) -> tuple[dict[str, Any], tuple[FacePatches, FacePatches]]:
        """Verdict and local explanation of one pair, with the patches used."""
        pa, pb = self.patches(image_a, landmarks_a), self.patches(image_b, landmarks_b)
        la, lb = self.libf([pa, pb])
        return self.verifier.local_explanation(la, lb), (pa, pb)


def _default_fold(root: Path, cfg: dict[str, Any]) -> int:
    rep = root / "report.json"
    if rep.is_file():
        try:
            f = json.loads(rep.read_text()).get("default_fold")
            if f:
                return int(f)
        except (OSError, json.JSONDecodeError, ValueError):
            pass
    done = sorted(int(p.name[5:]) for p in root.glob("fold-*") if (p / "encoder.pt").is_file() and p.name[5:].isdigit())
    if not done:
        raise WeightsError(f"{root}: no trained fold yet; run `xaiface train libf --out {root}`")
    return done[-1]
