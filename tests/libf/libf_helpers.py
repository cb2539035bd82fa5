"""Helpers of the LIBF tests: a tiny untrained encoder and a training folder written by hand."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch


def tiny_encoder(embedding_dim: int = 2, seed: int = 0):
    """An untrained (seeded) patch encoder with per-patch centres of zero."""
    from xaiface.libf import BYOLConfig, LIBFEncoder, PatchEncoder

    torch.manual_seed(seed)
    cfg = BYOLConfig(embedding_dim=embedding_dim, width=4, batch_size=8)
    return LIBFEncoder(PatchEncoder(embedding_dim, 4).eval(), np.zeros((11, embedding_dim), np.float32), cfg)


def write_artefacts(root: Path, encoder, verifier, fold: int = 1, patch_size: int = 24) -> Path:
    """A training folder as `xaiface train libf` lays it out, from an encoder and a fitted verifier."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps({"patches": {"patch_size": patch_size, "geometry": "dlib-150",
                                                              "min_inside": 0.5}}))
    fd = root / f"fold-{fold:02d}"
    encoder.save(fd / "encoder.pt")
    verifier.save(fd / f"ebm-{verifier.encoding}")
    (root / "report.json").write_text(json.dumps({"default_fold": fold}))
    return root
