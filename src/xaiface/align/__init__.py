"""Alignment: five-point similarity transforms, dlib chips, differentiable warps."""
from __future__ import annotations

from .aligner import DLIB150_TEMPLATE, align_face, alignment_matrix  # noqa: F401
from .geometry import (  # noqa: F401
    ARCFACE_TEMPLATE_112, apply_affine, invert_affine, similarity_transform, unwarp_map, warp_image, warp_tensor,
)
