"""An amortised explainer: a small network trained to predict CorrRISE's maps from one forward of the pair.

CorrRISE localises evidence well on Patch-LFW but costs ~1,000 forwards an image. This module
distils it: a student reads what one forward (and one partial backward) of the pair gives at the
model's ``"cam"`` layer (:attr:`~xaiface.models.spec.ModelSpec.layers`) and predicts the CorrRISE
map of the image at that layer's resolution; the map is interpolated back to the crop.

Features per place ``(i, j)`` of the ``C``-channel maps ``A_a``, ``A_b`` of the explained image
and its partner (aligned crops, so a place is roughly the same part of both faces):
``z_a = A_a / |A_a|``, ``z_b`` likewise (unit vectors over the channels), their product
``z_a * z_b``, and the HiResCAM cells of the similarity (:mod:`.cam`), scaled by their largest
absolute value: ``3 C + 1`` channels.

Network (fixed before any training run): 1x1 conv to 32, ReLU, 3x3 conv 32, ReLU, 3x3 conv to 1
(padding 1): a receptive field of 5 x 5 places.

Training (:func:`train_student`), fixed before any run on Patch-LFW:

* data: clean LFW View 2 pairs of the *training folds* only (never Patch-LFW, never a planted
  patch): the pairs ``first .. first + per_fold`` of each class and fold (default 8 genuine and
  8 impostor pairs from index 30 on, i.e. after the pairs the benchmark's 600-pair subset
  takes; 80 pairs, 160 images for five folds, what CorrRISE's ~1,000 forwards an image allow
  on this CPU), both images of each pair explained by CorrRISE with its defaults (500 masks), each
  target map area-averaged to the layer's places and divided by its standard deviation;
* loss: mean squared error; Adam, learning rate 1e-3, weight decay 1e-4, batch 32, 1,500 steps,
  seed 0; nothing is tuned on evaluation pairs (there is no validation-driven choice at all);
* saved: the state dict (``torch.save``) beside a JSON record with its SHA-256, the face model
  and its weights' SHA-256, the layer, the folds and pairs trained on; loading checks the
  digest and the model and reads with ``weights_only=True``.

Evaluation protocol: a student trained on folds F is evaluated only on Patch-LFW pairs of the
other folds (``benchmarks/student_crossfold.py`` runs two students, folds 1-5 and 6-10, and
merges their results over the 600-pair subset).

Cost: 2 forwards of the pair and one backward pass per explained image that stops at the
layer (4 forward-equivalents for one image), plus the student (a few thousand multiply-adds
a place; not counted).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, WeightsError
from ..io.hashing import file_sha256 as _sha256
from .base import Cost, MapResult, Verifier, read_trained_record, register_explainer
from .cam import LayerScoreExplainer

HIDDEN = 32


class StudentNet(nn.Module):
    """``(B, 3C + 1, h, w)`` place features -> ``(B, h, w)`` predicted (standardised) CorrRISE map."""

    def __init__(self, channels: int, hidden: int = HIDDEN):
        super().__init__()
        self.channels = int(channels)
        self.net = nn.Sequential(nn.Conv2d(3 * channels + 1, hidden, 1), nn.ReLU(),
                                 nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, 1, 3, padding=1))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net(feats)[:, 0]


def place_features(a_self: torch.Tensor, a_partner: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """The student's input ``(B, 3C + 1, h, w)`` from maps ``(B, C, h, w)`` and HiResCAM cells ``(B, h, w)``."""
    za = F.normalize(a_self, dim=1)
    zb = F.normalize(a_partner, dim=1)
    c = cells / cells.flatten(1).abs().amax(dim=1).clamp_min(1e-12).view(-1, 1, 1)
    return torch.cat([za, zb, za * zb, c[:, None]], dim=1)


def load_student(path: str | Path, model: Any) -> tuple[StudentNet, dict[str, Any]]:
    """A trained student and its record (``<path>.json``), checked against the face model.

    Raises:
        WeightsError: a missing file or record, a digest that differs from the record's, a
            student made for another model or layer, or a state dict that does not fit.
    """
    sd, meta = read_trained_record(path, model, "cam", "student", "xaiface.explain.train_student")
    try:
        net = StudentNet(int(meta["channels"]))
        net.load_state_dict(sd)
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
        raise WeightsError(f"{path}: not a student state dict for {meta.get('channels')} channels ({e})") from None
    return net.eval(), meta


@register_explainer(
    "corrrise-student", "amortised", "this project: CorrRISE (Lu, Xu, Ebrahimi) distilled into a small network on "
    "clean training-fold LFW pairs (amortised explanation, as in Dabkowski & Gal, NeurIPS 2017)",
    "a trained student predicts CorrRISE's map from the stride-16 layer of one forward (white-box, 2 + 1 partial backward)",
    needs_gradients=True,
)
class CorrRISEStudent(LayerScoreExplainer):
    """Amortised CorrRISE.

    Args:
        verifier: model and threshold.
        weights: the student's ``.pt`` file (its ``.json`` record beside it), from :func:`train_student`.
    """

    default_layer = "cam"

    def __init__(self, verifier: Verifier | Any = "dlib-resnet", weights: str | None = None):
        super().__init__(verifier, layer="cam")
        if not weights:
            raise ConfigError("corrrise-student needs weights=PATH: a student trained by "
                              "`python -m xaiface.explain.train_student` for this model")
        self.student, meta = load_student(weights, self.verifier.model)
        for p in self.student.parameters():
            p.requires_grad_(False)
        self.params.update({"weights": str(weights), "weights_sha256": meta["sha256"], "trained_folds": meta.get("folds")})

    def _explain(self, xa: torch.Tensor, xb: torch.Tensor, which: tuple[int, ...], cost: Cost) -> MapResult:
        e, a, g = self._layer_gradients(xa, xb, which, cost)
        cells = (g * a).sum(dim=1)
        with torch.no_grad():
            pred = self.student(place_features(a, a.flip(0), cells))  # row i's partner is row 1 - i
        s = self.verifier.input_size
        up = F.interpolate(pred[:, None], size=(s, s), mode="bilinear", align_corners=False)[:, 0]
        out = [up[i].numpy() if i in which else None for i in (0, 1)]
        return MapResult((out[0], out[1]), embeddings=(e[0], e[1]), extra={"layer": self.layer, "cells": list(a.shape[2:])})


# ------------------------------------------------------------------------------------------ training

def training_pairs(folds: Sequence[int], per_fold: int = 8, first: int = 30, data: Any = None) -> list[Any]:
    """Clean LFW View 2 pairs of the given folds (1-based): ``per_fold`` genuine and impostor each, from index ``first``."""
    from ..datasets import LFW

    pairs = LFW(data).pairs()
    out = []
    for f in folds:
        if not 1 <= int(f) <= 10:
            raise ConfigError(f"folds are 1..10, got {f}")
        fold = [p for p in pairs if p.fold == int(f) - 1]
        for same in (True, False):
            cls = [p for p in fold if p.same == same]
            out += cls[first:first + per_fold]
    return out


def make_targets(model_name: str, pairs: Sequence[Any], out_dir: str | Path, progress: bool = True,
                 corrrise_params: dict[str, Any] | None = None) -> Path:
    """CorrRISE maps of both images of each pair (resumable: one ``.npz`` a pair, finished ones kept).

    ``corrrise_params``: CorrRISE's parameters (default: its defaults; tests use fewer masks).

    Each file holds the pair's crops and CorrRISE's two combined maps. Faces are found by the one
    batch face stage (:func:`xaiface.pipeline.batch.locate_faces`, dlib-hog, centre face, median
    fallback box) and aligned in the model's geometry.
    """
    from tqdm import tqdm

    from ..models import get_model
    from ..pipeline.batch import align_faces, locate_faces
    from . import get_explainer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = get_model(model_name)
    todo = [p for p in pairs if not (out / f"pair-{p.index:04d}.npz").is_file()]
    if not todo:
        return out
    paths = sorted({str(q) for p in todo for q in (p.path_a, p.path_b)})
    batch = locate_faces(paths, workers=0, progress=progress)
    crops = align_faces(batch.faces, model.spec.preprocessing.geometry, progress=progress)
    ex = get_explainer("corrrise", Verifier(model), **(corrrise_params or {}))
    for p in tqdm(todo, desc=f"corrrise targets ({model_name})", disable=not progress, unit="pair"):
        a, b = crops.get(str(p.path_a)), crops.get(str(p.path_b))
        if a is None or b is None:
            continue  # an unreadable photo: recorded by the face stage, skipped here
        r = ex.explain((a, b))
        tmp = out / f"pair-{p.index:04d}.tmp.npz"
        np.savez(tmp, a=a, b=b, map_a=r.combined_maps[0], map_b=r.combined_maps[1], same=p.same, index=p.index)
        tmp.replace(out / f"pair-{p.index:04d}.npz")
    return out


def _layer_data(model_name: str, target_dir: Path) -> tuple[torch.Tensor, torch.Tensor, str, str | None]:
    """Student inputs and standardised targets from the targets folder (both directions of each pair)."""
    from ..models import get_model
    from ..models.base import crops_to_tensor

    model = get_model(model_name)
    verifier = Verifier(model)
    ex = LayerScoreExplainer(verifier, layer="cam")
    feats, targets = [], []
    for f in sorted(target_dir.glob("pair-*.npz")):
        if f.name.endswith(".tmp.npz"):
            continue
        with np.load(f, allow_pickle=False) as z:
            a, b, ma, mb = z["a"], z["b"], z["map_a"], z["map_b"]
        x = crops_to_tensor([a, b])
        e, acts, g = ex._layer_gradients(x[0:1], x[1:2], (0, 1), Cost())
        cells = (g * acts).sum(dim=1)
        feats.append(place_features(acts, acts.flip(0), cells))
        t = torch.from_numpy(np.stack([ma, mb]))[:, None]
        t = F.adaptive_avg_pool2d(t, acts.shape[2:])[:, 0]
        targets.append(t / t.flatten(1).std(dim=1).clamp_min(1e-8).view(-1, 1, 1))
    if not feats:
        raise ConfigError(f"{target_dir}: no target maps (pair-*.npz)")
    return torch.cat(feats), torch.cat(targets), ex.layer, model.weights_sha256


def train_student(model_name: str, target_dir: str | Path, out_path: str | Path, *, folds: Sequence[int],
                  steps: int = 1500, batch: int = 32, lr: float = 1e-3, weight_decay: float = 1e-4, seed: int = 0,
                  progress: bool = True) -> dict[str, Any]:
    """Train a student on a targets folder (:func:`make_targets`) and save it with its record."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    x, y, layer, model_sha = _layer_data(model_name, Path(target_dir))
    net = StudentNet(x.shape[1] // 3)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    losses = []
    for _ in tqdm(range(steps), desc="train student", disable=not progress):
        idx = torch.randint(0, x.shape[0], (min(batch, x.shape[0]),), generator=gen)
        loss = F.mse_loss(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    net.eval()
    with torch.no_grad():
        final = float(F.mse_loss(net(x), y))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out)
    meta = {"model": model_name, "model_weights_sha256": model_sha, "layer": layer, "channels": net.channels,
            "folds": sorted(int(f) for f in folds), "samples": int(x.shape[0]), "places": list(x.shape[2:]),
            "steps": steps, "batch": batch, "lr": lr, "weight_decay": weight_decay, "seed": seed,
            "train_mse_first_100": float(np.mean(losses[:100])), "train_mse_last_100": float(np.mean(losses[-100:])),
            "train_mse_final": final, "seconds": round(time.perf_counter() - t0, 1), "sha256": _sha256(out)}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    return meta
