"""Weight-file integrity: SHA-256 digests (cached per file state) and the degenerate-model probe.

* :func:`weights_sha256` / :func:`read_weights` give a weight file's SHA-256, computed once per
  ``(resolved path, size, mtime_ns)`` in this process, so that building the same model again
  costs a ``stat``, not a re-hash of the file.
* :func:`check_sha256` refuses a packaged weight file whose digest is not the one recorded in
  the model's :class:`~xaiface.models.base.ModelSpec`.
* :func:`check_not_degenerate` runs a built-in probe (three synthetic, structured images at the
  model's input size: a colour gradient, a checkerboard and a drawn face-like pattern; no photos)
  through a model and refuses it when the embeddings are useless: not finite, of zero (or
  overflowing) norm, or all alike (every pair of probe embeddings with cosine similarity above
  :data:`PROBE_ALIKE_COSINE`). A one-bit error in a weight's exponent is typically one of these.

Where the bound sits: on the probe images, dlib's trained ResNet gives pairwise cosines of
0.90-0.93 (its embeddings of anything face-sized share a narrow cone), randomly initialised
dlib-ResNets ~0.98, and randomly initialised IResNet-18...100 (the test models) 0.17-0.50; a
network that maps every input to (nearly) the same direction gives > 0.9999.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import WeightsError
from ..io.hashing import file_sha256, read_weights, weights_sha256  # noqa: F401  (their home before io/hashing)

if TYPE_CHECKING:
    from .base import FaceModel

#: Probe embeddings with every pairwise cosine similarity above this are "all alike".
PROBE_ALIKE_COSINE = 0.9999

#: Allowed deviation from unit norm of a probe embedding after L2 normalisation (as ``embed`` does).
_UNIT_NORM_TOL = 1e-3

def check_sha256(path: str | os.PathLike, found: str, expected: str | None, hint: str = "") -> None:
    """Raise :class:`WeightsError` naming the file and both digests when ``found != expected``.

    ``expected=None`` (no recorded digest) accepts any file.
    """
    if expected is not None and found != expected:
        raise WeightsError(
            f"{path}: SHA-256 {found} differs from the expected {expected}: the weight file is corrupt "
            f"or was modified{'; ' + hint if hint else ''}"
        )


def probe_images(size: int) -> np.ndarray:
    """The probe: three deterministic ``(size, size, 3)`` uint8 RGB images, stacked ``(3, S, S, 3)``.

    A diagonal colour gradient, a checkerboard (8 squares a side) and a drawn face-like pattern
    (skin-toned oval on grey, dark eyes, nose, mouth).
    """
    y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    gradient = np.stack([x, y, 1 - x], -1) * 255
    k = max(2, size // 8)
    squares = (np.arange(size)[:, None] // k + np.arange(size)[None, :] // k) % 2
    checker = squares[..., None] * np.array([230.0, 200.0, 170.0]) + 20
    face = np.full((size, size, 3), 110.0)
    face[((x - 0.5) / 0.33) ** 2 + ((y - 0.52) / 0.43) ** 2 <= 1] = (205, 160, 130)
    for ex in (0.36, 0.64):
        face[((x - ex) / 0.07) ** 2 + ((y - 0.42) / 0.035) ** 2 <= 1] = (40, 30, 30)
    face[(np.abs(x - 0.5) < 0.025) & (y > 0.45) & (y < 0.62)] = (180, 130, 105)
    face[(np.abs(x - 0.5) < 0.13) & (np.abs(y - 0.72) < 0.02)] = (120, 50, 50)
    return np.stack([gradient, checker, face]).round().clip(0, 255).astype(np.uint8)


def check_not_degenerate(model: FaceModel, source: str) -> None:
    """Refuse a model whose probe embeddings are degenerate (see the module docstring).

    Args:
        model: the loaded model (put in eval mode; run eagerly, without gradients).
        source: what to name in the message (the weight file, or how the model was made).
    Raises:
        WeightsError: naming ``source``, the model and what is wrong.
    """
    from .base import crops_to_tensor

    model.eval()
    with torch.inference_mode():
        raw = model.features(model.normalize(crops_to_tensor(probe_images(model.input_size)))).float()
    what = f"{source}: model {model.spec.name} is degenerate on the built-in probe images"
    tail = "; the weight file is corrupt or not a trained network of this architecture"
    if not torch.isfinite(raw).all():
        raise WeightsError(f"{what}: its embeddings hold NaN or infinite values{tail}")
    unit = torch.nn.functional.normalize(raw, dim=1)  # exactly what FaceModel.embed does
    norms = torch.linalg.vector_norm(raw, dim=1)
    if (torch.linalg.vector_norm(unit, dim=1) - 1).abs().max() > _UNIT_NORM_TOL:
        raise WeightsError(
            f"{what}: embedding norms {[float(f'{v:.3g}') for v in norms.tolist()]} are zero or overflow "
            f"float32, so normalised embeddings are not unit vectors{tail}"
        )
    cos = (unit @ unit.T).double()
    pairs = cos[torch.triu_indices(len(cos), len(cos), 1).unbind()]
    if bool((pairs > PROBE_ALIKE_COSINE).all()):
        raise WeightsError(
            f"{what}: all probe embeddings are alike (pairwise cosine >= {float(pairs.min()):.6f} > "
            f"{PROBE_ALIKE_COSINE}){tail}"
        )
