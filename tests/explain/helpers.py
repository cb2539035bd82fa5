"""Toy face models with hand-set weights, for exact tests of the explainers' mechanics.

:class:`RegionMeanModel`'s embedding dimension ``k`` is the mean intensity (over the three
channels) of the fixed square region ``k``, and one last dimension is a constant: occluding a
region lowers exactly its own dimension, and pixels outside every region change nothing.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
from torch import nn

from xaiface.models.base import FaceModel, ModelSpec, Preprocessing

#: (row0, row1, col0, col1) half-open squares of the default toy geometry at 32 px
REGIONS_32 = ((4, 10, 4, 10), (20, 28, 20, 28))


class RegionMeanModel(FaceModel):
    """Linear toy recogniser: ``e_k = mean of region k / 255``, ``e_K = bias``.

    Args:
        size: crop size ``S``. regions: ``(row0, row1, col0, col1)`` half-open squares.
        bias: the constant last dimension (keeps embeddings non-zero when regions are blacked out).
    """

    def __init__(self, size: int = 32, regions: Sequence[tuple[int, int, int, int]] = REGIONS_32, bias: float = 0.5):
        spec = ModelSpec(
            name=f"toy-regions-{size}", architecture="linear", embedding_size=len(regions) + 1,
            preprocessing=Preprocessing(input_size=size, geometry=f"crop-{size}", mean=(0.0, 0.0, 0.0),
                                        std=(1.0, 1.0, 1.0)),
            thresholds={"plain": {"eer": 0.5}},
        )
        super().__init__(spec)
        self.regions = tuple(tuple(r) for r in regions)
        self.linear = nn.Linear(3 * size * size, len(regions) + 1)
        w = torch.zeros(len(regions) + 1, 3, size, size)
        for k, (r0, r1, c0, c1) in enumerate(self.regions):
            w[k, :, r0:r1, c0:c1] = 1.0 / (3 * (r1 - r0) * (c1 - c0) * 255.0)
        with torch.no_grad():
            self.linear.weight.copy_(w.reshape(len(regions) + 1, -1))
            self.linear.bias.zero_()
            self.linear.bias[-1] = bias

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def region_mask(self, k: int) -> np.ndarray:
        r0, r1, c0, c1 = self.regions[k]
        m = np.zeros((self.input_size, self.input_size), bool)
        m[r0:r1, c0:c1] = True
        return m


def toy_pair(size: int = 32, regions: Sequence[tuple[int, int, int, int]] = REGIONS_32,
             a: Sequence[float] = (200, 200), b: Sequence[float] = (200, 0), background: float = 90.0
             ) -> tuple[np.ndarray, np.ndarray]:
    """Two uint8 crops whose region ``k`` has the grey level ``a[k]`` / ``b[k]``.

    The default makes region 0 shared (occluding it lowers the similarity) and region 1 bright in
    the first image only (occluding it in the first image raises the similarity).
    """
    out = []
    for levels in (a, b):
        im = np.full((size, size, 3), background, np.uint8)
        for (r0, r1, c0, c1), v in zip(regions, levels):
            im[r0:r1, c0:c1] = v
        out.append(im)
    return out[0], out[1]


def embed_np(model: FaceModel, images: np.ndarray) -> np.ndarray:
    """L2-normalised float64 embeddings of float images ``(B, S, S, 3)`` in 0..255."""
    with torch.no_grad():
        e = model(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).permute(0, 3, 1, 2)).double().numpy()
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Square dilation of a boolean map by ``radius`` pixels (Chebyshev distance)."""
    from scipy.ndimage import binary_dilation

    return binary_dilation(mask, structure=np.ones((2 * radius + 1, 2 * radius + 1), bool))


@lru_cache(maxsize=1)
def real_pair() -> tuple[np.ndarray, np.ndarray]:
    """Two aligned 150 px dlib chips of one LFW identity (Abel_Pacheco 1 and 4)."""
    from xaiface.datasets import LFW
    from xaiface.pipeline import FacePipeline

    lfw = LFW()
    pipe = FacePipeline(threshold=0.9)
    return pipe.align(lfw.image_path("Abel_Pacheco", 1)).image, pipe.align(lfw.image_path("Abel_Pacheco", 4)).image
