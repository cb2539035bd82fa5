"""The replace-and-score stage: every protocol image of one pair, built in memory and scored in one forward.

For one Patch-LFW pair and one map, :class:`PairScorer` builds the DPR steps (patched image with
the selected pixels put back to the original), the deletion steps (top pixels zeroed) and the
insertion steps (only the top pixels on black), as tensors, and embeds them in a single batched
forward; each is compared with the partner's embedding, computed once per pair (or passed in).
Steps whose image is already known are not recomputed: a DPR step that replaces nothing is the
patched image, one that replaces everything the clean image, deletion at 0% and insertion at
100% are the patched image, deletion at 100% and insertion at 0% the black image (embedded once
per scorer).

``jpeg=True`` reproduces the reference's JPEG re-encoding (``cv2.imwrite`` defaults: quality 95,
4:2:0 chroma) of every DPR step and of the partner; deletion and insertion stay lossless.
``reference_steps=True`` computes the DPR steps' indices as the reference does (float fractions,
see :mod:`.protocol`); deletion and insertion, which the reference does not have, keep the exact
counts.
"""
from __future__ import annotations

import copy
import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, NumericalError
from ..models.base import FaceModel
from ..verify.similarity import pair_similarity
from .protocol import (
    DELETION_PERCENTS, DPR_PERCENTS, DPR_RULES, check_percents, compose, dpr_masks, label_evidence, ranked_masks,
)


@dataclass
class ScoredPair:
    """Scores of one pair's protocol images against the partner.

    Attributes:
        dpr: ``(T,)`` similarity at each DPR step. restored: ``(T,)`` fraction of the planted
            pixels put back at each step (needs the mask; NaN without).
        deletion, insertion: ``(T_d,)`` similarities at each deletion / insertion step.
        n_forward: images this call passed through the network.
    """

    dpr: np.ndarray
    restored: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    n_forward: int


def _to_pixels(crop: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(crop, torch.Tensor):
        t = crop.float()
        return t if t.shape[0] == 3 else t.permute(2, 0, 1)
    a = np.asarray(crop)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ConfigError(f"crops must be (S, S, 3) uint8, got {a.shape} {a.dtype}")
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float()


def jpeg_roundtrip(pixels: torch.Tensor, quality: int = 95) -> torch.Tensor:
    """Encode ``(B, 3, S, S)`` pixels (0..255) as JPEG and decode them again (PIL, 4:2:0)."""
    from PIL import Image

    out = []
    for img in pixels.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy():
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=int(quality), subsampling="4:2:0")
        buf.seek(0)
        with Image.open(buf) as im:
            out.append(np.asarray(im.convert("RGB")))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float()


class _Batch:
    """Images collected for one forward; ``add`` returns where they land."""

    def __init__(self) -> None:
        self.parts: list[torch.Tensor] = []
        self.n = 0

    def add(self, images: torch.Tensor) -> slice:
        s = slice(self.n, self.n + images.shape[0])
        if images.shape[0]:
            self.parts.append(images)
        self.n += images.shape[0]
        return s


class PairScorer:
    """Builds and scores the DPR, deletion and insertion images of Patch-LFW pairs for one model.

    Args:
        model: the face model (float pixels ``(B, 3, S, S)`` in 0..255 -> raw embeddings).
        dpr_percents, deletion_percents: the steps (default 0..100 by 5 and by 10).
        rule: DPR pixel rule, ``"bound"`` (default, the reference's strict bound), ``"rank"`` or
            ``"prefix"`` (the reference's random baseline; see :mod:`.protocol`).
        jpeg: re-encode each DPR step and the partner as JPEG (the reference's behaviour; default False).
        jpeg_quality: 95, as ``cv2.imwrite``'s default.
        reference_steps: the DPR steps' float index of the reference (default False: exact).
    """

    def __init__(self, model: FaceModel, *, dpr_percents: Sequence[int] = DPR_PERCENTS,
                 deletion_percents: Sequence[int] = DELETION_PERCENTS, rule: str = "bound", jpeg: bool = False,
                 jpeg_quality: int = 95, reference_steps: bool = False):
        self.model = model.eval()
        self.dpr_percents = check_percents(dpr_percents)
        self.deletion_percents = check_percents(deletion_percents)
        if rule not in DPR_RULES:
            raise ConfigError(f"DPR rule must be one of {DPR_RULES}, got {rule!r}")
        self.rule, self.jpeg, self.jpeg_quality = rule, bool(jpeg), int(jpeg_quality)
        self.reference_steps = bool(reference_steps)
        s = model.input_size
        self.size = s
        self._black = torch.zeros(3, s, s)
        self.black_embedding = self.embed(self._black[None])[0]

    def with_rule(self, rule: str) -> "PairScorer":
        """This scorer with another DPR rule (the model and the black image's embedding shared)."""
        if rule not in DPR_RULES:
            raise ConfigError(f"DPR rule must be one of {DPR_RULES}, got {rule!r}")
        other = copy.copy(self)
        other.rule = rule
        return other

    @torch.inference_mode()
    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings ``(B, D)`` of pixels ``(B, 3, S, S)``."""
        e = self.model(pixels)
        if not torch.isfinite(e).all():
            raise NumericalError(f"model {self.model.spec.name} produced NaN or infinite embeddings")
        return F.normalize(e, dim=1)

    def masks(self, combined_map: np.ndarray, same: bool, match: bool) -> tuple[np.ndarray, np.ndarray]:
        """``(dpr_masks (T, S, S), top_masks (T_d, S, S))``: DPR replacements and the deletion ranking."""
        return (dpr_masks(combined_map, match, self.dpr_percents, self.rule, self.reference_steps),
                ranked_masks(label_evidence(combined_map, same), self.deletion_percents))

    @torch.inference_mode()
    def score(self, patched: np.ndarray | torch.Tensor, original: np.ndarray | torch.Tensor, partner: np.ndarray | torch.Tensor,
              combined_map: np.ndarray, same: bool, match: bool, *, mask: np.ndarray | None = None,
              e_patched: torch.Tensor | np.ndarray | None = None, e_original: torch.Tensor | np.ndarray | None = None,
              e_partner: torch.Tensor | np.ndarray | None = None) -> ScoredPair:
        """Score every protocol image of one pair.

        Args:
            patched: the patched first image; original: its clean version; partner: the second
                image; each ``(S, S, 3)`` uint8 (or ``(3, S, S)`` float pixels).
            combined_map: ``(S, S)`` signed map of the patched image against the partner.
            same: genuine pair. match: the patched pair's decision at the threshold.
            mask: ``(S, S)`` planted pixels (for ``restored``).
            e_patched, e_original, e_partner: their normalised embeddings ``(D,)`` when already
                known (else they are embedded in the same forward).
        Returns:
            :class:`ScoredPair`.
        """
        xp, xo, xb = _to_pixels(patched), _to_pixels(original), _to_pixels(partner)
        if xp.shape[-1] != self.size or xp.shape != xo.shape or xp.shape != xb.shape:
            raise ConfigError(f"crops must all be {self.size} px for model {self.model.spec.name}, got "
                              f"{tuple(xp.shape)}, {tuple(xo.shape)}, {tuple(xb.shape)}")
        dmask, tmask = self.masks(combined_map, same, match)
        n_px = dmask[0].size
        batch = _Batch()
        known = {"patched": e_patched, "original": e_original, "partner": e_partner}
        where: dict[str, slice] = {}
        for name, img in (("patched", xp), ("original", xo), ("partner", xb)):
            if known[name] is None:
                where[name] = batch.add(img[None])
        # DPR steps
        counts = dmask.reshape(len(dmask), -1).sum(axis=1)
        if self.jpeg:
            dpr_todo = list(range(len(dmask)))
            jb = batch.add(jpeg_roundtrip(xb[None], self.jpeg_quality))
        else:
            dpr_todo = [t for t, c in enumerate(counts) if 0 < c < n_px]
        ms = torch.from_numpy(dmask[dpr_todo])
        dpr_imgs = compose(xp, xo, ms)
        if self.jpeg:
            dpr_imgs = jpeg_roundtrip(dpr_imgs, self.jpeg_quality)
        ds = batch.add(dpr_imgs)
        # deletion: top pixels zeroed; insertion: only the top pixels on black
        tcounts = tmask.reshape(len(tmask), -1).sum(axis=1)
        del_todo = [t for t, c in enumerate(tcounts) if 0 < c < n_px]
        tm = torch.from_numpy(tmask[del_todo])
        dl = batch.add(compose(xp, 0.0, tm))
        il = batch.add(compose(self._black, xp, tm))

        d = self.black_embedding.shape[0]
        emb = (self.embed(torch.cat(batch.parts)) if batch.parts else torch.zeros(0, d)).numpy()

        def got(name: str) -> np.ndarray:
            if known[name] is not None:
                return np.asarray(known[name].detach().numpy() if isinstance(known[name], torch.Tensor) else known[name])
            return emb[where[name]][0]

        # every similarity through pair_similarity, the benchmark's one scoring path: a step that
        # equals a known image gets exactly that image's score (the clean pair's at 100%)
        e_p, e_o, e_b = got("patched"), got("original"), got("partner")
        e_dpr_partner = emb[jb][0] if self.jpeg else e_b
        dpr = np.empty(len(dmask))
        if not self.jpeg:
            dpr[counts == 0] = pair_similarity(e_p, e_dpr_partner)
            dpr[counts == n_px] = pair_similarity(e_o, e_dpr_partner)
        if dpr_todo:
            dpr[dpr_todo] = pair_similarity(emb[ds], e_dpr_partner)
        black = pair_similarity(self.black_embedding.numpy(), e_b)
        clean_p = pair_similarity(e_p, e_b)
        deletion = np.empty(len(tmask))
        insertion = np.empty(len(tmask))
        deletion[tcounts == 0], insertion[tcounts == 0] = clean_p, black
        deletion[tcounts == n_px], insertion[tcounts == n_px] = black, clean_p
        if del_todo:
            deletion[del_todo] = pair_similarity(emb[dl], e_b)
            insertion[del_todo] = pair_similarity(emb[il], e_b)
        if mask is not None:
            m = np.asarray(mask, dtype=bool)
            restored = (dmask & m[None]).reshape(len(dmask), -1).sum(axis=1) / max(1, int(m.sum()))
        else:
            restored = np.full(len(dmask), np.nan)
        return ScoredPair(dpr, restored.astype(np.float64), deletion, insertion, batch.n)
