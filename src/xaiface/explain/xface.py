"""xFace: systematic occlusion maps (Knoche, Teepe, Hörmann, Rigoll, WACVW 2023).

Transcribed from the authors' ``MapGenerator`` (github.com/Martlgap/x-face-verification,
``src/generate_maps.py``), at the reference's 112 px geometry scaled to the crop size ``S``:

* patch sizes ``p`` in (7, 14, 28) and stride 5 at 112 px, each scaled as ``round(v * S / 112)``
  (Python's ``round``); patch origins ``arange(0, S - p, stride)`` in both axes (row-major, as
  the reference's ``for y: for x:``), fill 0 (black) -- 441 + 400 + 289 = 1,130 occluded images
  per image at 112 px, 441 + 361 + 256 = 1,058 at 150 px (p = 9, 19, 38, stride 7);
* the occluder is the reference's ``cv2.rectangle(mask, (x, y), (x + p, y + p), 0, -1)``, whose
  filled rectangle includes both corners: it blanks ``(p + 1) x (p + 1)`` pixels
  (``inclusive_corners=True``; ``False`` blanks exactly ``p x p``);
* cosine distance ``d = 1 - cos``; for mask ``m`` of image ``i`` the deviation is
  ``(d_m - d_clean) / p**2`` (divided by the nominal ``p**2``, as the reference does, whatever
  the occluder's extent);
* per patch size ``map = mean over the M masks of (occluded-area indicator x deviation)``: the
  deviation is summed over the pixels each mask occludes and divided by the number of masks M
  (``np.mean(..., axis=0)`` in the reference), not by how many masks covered the pixel;
* each size's map is blurred by the reference's ``cv2.GaussianBlur(map, (stride, stride), stride)``:
  the kernel size and sigma are the stride, i.e. 5x5 with sigma 5 at 112 px. The scaled stride
  is used here (7x7, sigma 7 at 150 px); cv2 accepts odd sizes only, so an even scaled stride
  gets the next odd size. Borders are reflected without repeating the edge (cv2's default
  ``BORDER_REFLECT_101``). ``blur_size`` / ``blur_sigma`` override this;
* the maps of the sizes are averaged and divided by their largest absolute value (per image, as
  the reference's ``normalize`` before its colour map).

Variants (the reference's ``method_1..3``), for image ``i`` with partner ``j``:

1. ``d_m`` = mean over the partner's occluded images *of the same patch size* of
   ``d(i occluded by m, j occluded by m')`` (``cdist(...).mean(axis=1)``): occluded-vs-occluded;
2. ``d_m = d(i occluded by m, clean j)``;
3. ``d_m = d(i occluded by m, j occluded by m)``: paired occlusion at the same place, one map
   shared by both images.

Sign: a positive value means occluding the region raised the distance, i.e. the region made the
faces similar (green in the reference's PiYG colour map). ``combined`` is the normalised map,
``similarity = max(combined, 0)``, ``dissimilarity = max(-combined, 0)``.

Cost per pair (the 2 clean forwards included): variants 1 and 3 need both images' occluded sets
(2 + 2 x 1,130 = 2,262 at 112 px, 2,118 at 150 px) even when only one image is explained;
variant 2 needs the explained images' only (1,132 / 1,060 for one image).

Not transcribed: the reference's ``shape="circle"``, ``smooth=True`` and ``fill_value="random"``
options (its defaults are the rectangle, sharp edges and fill 0 used here), and its confidence
score (a separate sigmoid fit, not a map). Deviations from the reference's code are
computational only: the variant-1 mean of cosine distances is computed as ``1 - e_i . mean(e_j)``
(equal, embeddings being normalised), the masks' weighted sum as one matrix product over the
occluders' row and column indicators, and the occluded images in batches.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConfigError
from .base import Cost, MapResult, PerturbationExplainer, Verifier, gaussian_blur2d, register_explainer

_REFERENCE = ("Knoche, Teepe, Hörmann, Rigoll: Explainable Model-Agnostic Similarity and Confidence in Face "
              "Verification, WACV Workshops 2023 (code: Martlgap/x-face-verification)")


@lru_cache(maxsize=64)
def occlusion_origins(size: int, patch_size: int, stride: int) -> np.ndarray:
    """Top-left corners ``(M, 2)`` (row, column) of the reference's systematic occlusion.

    ``arange(0, size - patch_size, stride)`` in both axes, rows outer (as the reference's
    ``for y in ys: for x in xs``). Cached per ``(size, patch_size, stride)``; read-only.
    """
    ys = np.arange(0, size - patch_size, stride)
    grid = np.stack(np.meshgrid(ys, ys, indexing="ij"), -1).reshape(-1, 2)
    grid.setflags(write=False)
    return grid


class _OcclusionSet:
    """The occluders of every patch size at one crop size, built once (cached).

    A mask is ``1 - rows (x) cols`` with ``rows``, ``cols`` the ``(S,)`` indicators of the
    occluded rows and columns: the masks' weighted sum is one product of the factors, and the
    ``(M, 1, S, S)`` masks themselves (57 MB at 112 px, 95 MB at 150 px) are made once, on first use.
    """

    def __init__(self, size: int, patch_sizes: Sequence[int], stride: int, extents: Sequence[int]):
        self.size = size
        ar = torch.arange(size)
        rows, cols, self.slices = [], [], []
        start = 0
        for p, ext in zip(patch_sizes, extents):
            o = torch.from_numpy(np.array(occlusion_origins(size, p, stride)))
            rows.append((ar >= o[:, :1]) & (ar < o[:, :1] + ext))
            cols.append((ar >= o[:, 1:]) & (ar < o[:, 1:] + ext))
            self.slices.append(slice(start, start + len(o)))
            start += len(o)
        self.rows = torch.cat(rows).float()  # (M_total, S)
        self.cols = torch.cat(cols).float()
        self.n = start
        self._masks: torch.Tensor | None = None

    @property
    def masks(self) -> torch.Tensor:
        """Masks ``(M, 1, S, S)``: 0 on the occluder, 1 elsewhere."""
        if self._masks is None:
            self._masks = (1.0 - self.rows[:, :, None] * self.cols[:, None, :])[:, None]
        return self._masks

    def accumulate(self, k: int, weights: torch.Tensor) -> torch.Tensor:
        """``sum_m weights_m x occluded-area_m`` over patch size ``k``'s masks: ``(S, S)``."""
        sl = self.slices[k]
        return (self.rows[sl].double().T * weights.double()) @ self.cols[sl].double()


@lru_cache(maxsize=4)  # up to ~95 MB of masks each
def _occlusion_set(size: int, patch_sizes: tuple[int, ...], stride: int, extents: tuple[int, ...]) -> _OcclusionSet:
    return _OcclusionSet(size, patch_sizes, stride, extents)


class XFaceExplainer(PerturbationExplainer):
    """xFace occlusion maps; the registered classes ``xface1..3`` pick the variant.

    Args:
        verifier: model and threshold (the threshold only gives the verdict).
        patch_sizes: occluder sizes at ``reference_size`` px (default (7, 14, 28), the reference's).
        stride: occluder stride at ``reference_size`` px (default 5, the reference's).
        reference_size: crop size the above are given for (default 112, the reference's); they
            are scaled to the model's crop size ``S`` as ``round(v * S / reference_size)``.
        fill: value of occluded pixels, RGB 0..255 (default 0: black, the reference's).
        inclusive_corners: occlude ``(p + 1)^2`` pixels as the reference's ``cv2.rectangle``
            does (default True); False occludes ``p x p``.
        blur_size, blur_sigma: the per-size Gaussian blur; default None: the scaled stride (made
            odd) and the scaled stride, as the reference's ``GaussianBlur(m, (stride, stride), stride)``.
        batch_size: images per forward batch (default 64). progress: show a progress bar.
    """

    variant = 0

    def __init__(self, verifier: Verifier | Any = "dlib-resnet", patch_sizes: Sequence[int] = (7, 14, 28),
                 stride: int = 5, reference_size: int = 112, fill: float = 0.0, inclusive_corners: bool = True,
                 blur_size: int | None = None, blur_sigma: float | None = None, batch_size: int = 64,
                 progress: bool = False):
        super().__init__(verifier, batch_size=batch_size, progress=progress)
        if self.variant not in (1, 2, 3):
            raise ConfigError(f"xFace variant must be 1, 2 or 3, got {self.variant!r}")
        s = self.verifier.input_size
        if not patch_sizes or any(int(p) < 1 for p in patch_sizes) or int(stride) < 1 or int(reference_size) < 1:
            raise ConfigError(f"patch_sizes, stride and reference_size must be positive, got {patch_sizes}, {stride}, "
                              f"{reference_size}")
        self.patch_sizes_px = tuple(max(1, round(int(p) * s / reference_size)) for p in patch_sizes)
        self.stride_px = max(1, round(int(stride) * s / reference_size))
        if max(self.patch_sizes_px) >= s:
            raise ConfigError(f"patch sizes {self.patch_sizes_px} px leave no occluder position in a {s} px crop")
        self.blur_size = int(blur_size) if blur_size is not None else self.stride_px | 1
        self.blur_sigma = float(blur_sigma) if blur_sigma is not None else float(self.stride_px)
        if self.blur_size < 1 or self.blur_size % 2 == 0 or self.blur_sigma <= 0 or self.blur_size // 2 >= s:
            raise ConfigError(f"blur_size must be odd, positive and below the crop size and blur_sigma positive, "
                              f"got {self.blur_size}, {self.blur_sigma}")
        self.fill = float(fill)
        self.inclusive_corners = bool(inclusive_corners)
        extents = tuple(p + 1 if self.inclusive_corners else p for p in self.patch_sizes_px)
        self._occlusion = _occlusion_set(s, self.patch_sizes_px, self.stride_px, extents)
        n_masks = [sl.stop - sl.start for sl in self._occlusion.slices]
        self.params = {
            "variant": self.variant, "patch_sizes": tuple(int(p) for p in patch_sizes), "stride": int(stride),
            "reference_size": int(reference_size), "crop_size": s, "patch_sizes_px": self.patch_sizes_px,
            "stride_px": self.stride_px, "occluder_px": extents, "inclusive_corners": self.inclusive_corners,
            "n_masks": tuple(n_masks), "fill": self.fill, "blur_size": self.blur_size, "blur_sigma": self.blur_sigma,
            "distance": "cosine", "batch_size": self.batch_size,
        }

    def _explain(self, xa: torch.Tensor, xb: torch.Tensor, which: tuple[int, ...], cost: Cost) -> MapResult:
        ea, eb = self._clean(xa, xb, cost)
        clean = (ea[0], eb[0])
        d_clean = 1.0 - float(ea[0] @ eb[0])
        occ = self._occlusion
        # variants 1 and 3 compare with the partner's occluded images; variant 2 only its clean one
        needed = (0, 1) if self.variant in (1, 3) else which
        occluded = {i: self._embed_perturbed(x, occ.masks, occ.n, cost, fill=self.fill)
                    for i, x in ((0, xa), (1, xb)) if i in needed}
        maps: list[np.ndarray | None] = [None, None]
        for i in ((which[0],) if self.variant == 3 else which):
            j = 1 - i
            per_size = []
            for k, (p, sl) in enumerate(zip(self.patch_sizes_px, occ.slices)):
                mine = occluded[i][sl]
                if self.variant == 1:  # mean over the partner's masks of 1 - cos
                    dist = 1.0 - mine @ occluded[j][sl].mean(0)
                elif self.variant == 2:
                    dist = 1.0 - mine @ clean[j]
                else:
                    dist = 1.0 - (mine * occluded[j][sl]).sum(1)
                deviation = (dist.double() - d_clean) / p**2
                m = occ.accumulate(k, deviation) / (sl.stop - sl.start)
                per_size.append(gaussian_blur2d(m[None, None], self.blur_size, self.blur_sigma)[0, 0])
            mean = torch.stack(per_size).mean(0)
            peak = float(mean.abs().max())
            maps[i] = (mean / peak if peak > 0 else mean).float().numpy()
        if self.variant == 3:
            maps = [maps[which[0]], maps[which[0]].copy()]
        return MapResult((maps[0], maps[1]), embeddings=(ea[0], eb[0]),
                         extra={"n_masks_per_image": occ.n, "clean_distance": d_clean})


@register_explainer("xface1", "perturbation", _REFERENCE,
                    "xFace variant 1: occluded vs all of the partner's occluded images (2 + 2 x 1,130 forwards at 112 px)")
class XFace1(XFaceExplainer):
    __doc__ = XFaceExplainer.__doc__
    variant = 1


@register_explainer("xface2", "perturbation", _REFERENCE,
                    "xFace variant 2: occluded vs the clean partner (2 + 1,130 forwards per explained image at 112 px)")
class XFace2(XFaceExplainer):
    __doc__ = XFaceExplainer.__doc__
    variant = 2


@register_explainer("xface3", "perturbation", _REFERENCE,
                    "xFace variant 3: paired occlusion at the same place, one map for both images "
                    "(2 + 2 x 1,130 forwards at 112 px)")
class XFace3(XFaceExplainer):
    __doc__ = XFaceExplainer.__doc__
    variant = 3
