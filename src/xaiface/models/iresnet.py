"""insightface's IResNet (``arcface_torch``) recognisers: ``iresnet18/34/50/100``.

The architecture is insightface ``recognition/arcface_torch/backbones/iresnet.py``: a 3x3 stem
(conv 64, BN, PReLU), four stages of :class:`IBasicBlock` (BN, conv3x3, BN, PReLU, conv3x3 with
the stage's stride, BN; a 1x1 conv + BN shortcut where the shape changes), then BN, dropout,
``fc`` (512*7*7 -> 512) and the ``features`` BatchNorm1d. ``forward`` returns that raw 512-d
embedding; arcface_torch's ``fp16`` autocast flag is not reproduced (inference runs in float32).

There is no packaged weight file: ``get_model("iresnet100", weights=PATH)`` reads the user's
checkpoint with ``torch.load(..., weights_only=True)`` (never a full unpickle) and maps the key
names of the checkpoint families that publish IResNets:

* ``"arcface_torch"``: insightface arcface_torch and ElasticFace ``backbone.pth`` (a plain state
  dict, possibly with DataParallel's ``module.`` prefix);
* ``"magface"``: MagFace ``magface_epoch_*.pth`` (``{"state_dict": ...}`` with
  ``features.module.`` or ``module.features.`` keys and the MagLinear head ``fc.weight``, which is
  dropped); MagFace's IResNet uses BatchNorm ``eps=2e-5`` where arcface_torch uses ``1e-5``, and
  the model is built with MagFace's value (also for a MagFace backbone re-saved with plain keys,
  which only an explicit ``checkpoint_format="magface"`` can tell apart);
* ``"tface"`` (alias ``"curricularface"``): the TFace / face.evoLVe ``IR_*`` layout of
  CurricularFace (``input_layer.*``, ``body.N.res_layer.*``, ``body.N.shortcut_layer.*``,
  ``output_layer.*``). It maps exactly onto an IResNet variant: TFace's first block of stage 1
  keeps 64 channels and uses a ``MaxPool2d(1, 2)`` (sub-sampling) shortcut instead of a 1x1 conv,
  and its output BatchNorm1d has no affine parameters (loaded as weight 1, bias 0). Both TFace
  block layouts load: the current one (BN, conv, BN, PReLU, conv, BN, as arcface_torch) and the
  original CurricularFace one without the middle BN (BN, conv, PReLU, conv, BN). The IR-SE
  variants (squeeze-excitation blocks) are not supported.

``checkpoint_format="auto"`` (the default) detects the family from the keys.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, WeightsError
from .base import FaceModel, ModelSpec, Preprocessing
from .integrity import weights_sha256
from .catalog import IRESNET_ARCHITECTURES as ARCHITECTURES, IRESNET_SPECS as SPECS  # noqa: F401
from .registry import register_model

#: Accepted ``checkpoint_format`` values (aliases map onto these).
CHECKPOINT_FORMATS = ("auto", "arcface_torch", "magface", "tface")
_FORMAT_ALIASES = {"insightface": "arcface_torch", "elasticface": "arcface_torch", "curricularface": "tface"}

_STAGE_WIDTHS = (64, 128, 256, 512)
_EMBEDDING_SIZE = 512
_INPUT_SIZE = 112
# keys under which training scripts wrap the state dict (checked in this order)
_WRAPPER_KEYS = ("state_dict", "model", "backbone", "model_state_dict", "net")
# prefixes added by DataParallel / wrappers around the whole network
_WRAPPER_PREFIXES = ("module.", "backbone.", "model.")
_MAGFACE_PREFIXES = ("features.module.", "module.features.", "features.")


@dataclass(frozen=True)
class IResNetVariant:
    """Architecture details that differ between checkpoint families.

    Attributes:
        bn_eps: BatchNorm epsilon (arcface_torch, ElasticFace, TFace ``1e-5``; MagFace ``2e-5``).
        mid_bn: the BatchNorm between a block's first conv and its PReLU (absent in the original
            CurricularFace ``bottleneck_IR``).
        pool_shortcut: a stride-2 block that keeps its channel count sub-samples its input with
            ``MaxPool2d(1, 2)`` for the shortcut (TFace) instead of a 1x1 conv + BN (arcface_torch).
    """

    bn_eps: float = 1e-5
    mid_bn: bool = True
    pool_shortcut: bool = False


class IBasicBlock(nn.Module):
    """Pre-activation residual block ``x + bn3(conv2(prelu(bn2(conv1(bn1(x))))))``.

    Shape: ``(B, inplanes, H, W) -> (B, planes, H / stride, W / stride)``.
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1, variant: IResNetVariant = IResNetVariant()):
        super().__init__()
        eps = variant.bn_eps
        self.bn1 = nn.BatchNorm2d(inplanes, eps=eps)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2: nn.Module = nn.BatchNorm2d(planes, eps=eps) if variant.mid_bn else nn.Identity()
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=eps)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            if variant.pool_shortcut and inplanes == planes:
                self.downsample = nn.MaxPool2d(1, stride)
            else:
                self.downsample = nn.Sequential(
                    nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes, eps=eps)
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class IResNet(nn.Module):
    """The IResNet backbone with arcface_torch's module names (so its state dicts load as-is).

    Args:
        layers: blocks per stage, e.g. ``(3, 13, 30, 3)`` for iresnet100.
        num_features: embedding size ``D``.
        dropout: dropout before ``fc`` (training only; arcface_torch's default is 0).
        variant: see :class:`IResNetVariant`.

    Shape: ``(B, 3, 112, 112)`` normalised pixels -> ``(B, D)`` raw embeddings.
    """

    fc_scale = 7 * 7

    def __init__(
        self,
        layers: tuple[int, int, int, int] | list[int],
        num_features: int = _EMBEDDING_SIZE,
        dropout: float = 0.0,
        variant: IResNetVariant = IResNetVariant(),
    ):
        super().__init__()
        if len(layers) != 4:
            raise ConfigError(f"IResNet needs 4 stage depths, got {list(layers)}")
        self.layers_per_stage = tuple(int(n) for n in layers)
        self.variant = variant
        eps = variant.bn_eps
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=eps)
        self.prelu = nn.PReLU(64)
        inplanes = 64
        for i, (planes, n) in enumerate(zip(_STAGE_WIDTHS, self.layers_per_stage)):
            blocks = [IBasicBlock(inplanes, planes, 2, variant)]
            blocks += [IBasicBlock(planes, planes, 1, variant) for _ in range(1, n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            inplanes = planes
        self.bn2 = nn.BatchNorm2d(512, eps=eps)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(512 * self.fc_scale, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def init_random_(net: IResNet, seed: int = 0) -> IResNet:
    """Seeded random initialisation that keeps a deep untrained net's activations finite.

    arcface_torch's own training init (conv weights ``N(0, 0.1)``) makes an untrained iresnet100
    overflow float32 in eval mode, so convs and ``fc`` get He-normal weights (fan-in), and each
    block's last BatchNorm is scaled by ``1/sqrt(blocks)`` so the residual sum stays O(1).
    BatchNorm running statistics stay at (0, 1). Does not touch the global RNG.
    """
    g = torch.Generator().manual_seed(int(seed))
    n_blocks = sum(net.layers_per_stage)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=g)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                if m.affine:
                    m.weight.fill_(1.0)
                    m.bias.zero_()
            elif isinstance(m, nn.PReLU):
                m.weight.fill_(0.25)
        for m in net.modules():
            if isinstance(m, IBasicBlock):
                m.bn3.weight.fill_(n_blocks**-0.5)
    return net


class IResNetModel(FaceModel):
    """An IResNet recogniser: RGB pixels ``(B, 3, 112, 112)`` in 0..255 -> raw ``(B, 512)``.

    The network (arcface_torch naming) is ``self.backbone``; its state dict is an arcface_torch
    state dict.
    """

    def __init__(self, spec: ModelSpec, backbone: IResNet):
        super().__init__(spec)
        self.backbone = backbone

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised input ``(B, 3, 112, 112)`` -> raw embedding ``(B, 512)``."""
        return self.backbone(x)


# ----------------------------------------------------------------------------------------------
# reading checkpoints


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a PyTorch checkpoint's state dict without unpickling arbitrary objects.

    The file is read with ``torch.load(path, map_location="cpu", weights_only=True)``. A plain
    state dict is returned as is; a dict wrapping one under ``"state_dict"``, ``"model"``,
    ``"backbone"``, ``"model_state_dict"`` or ``"net"`` (training checkpoints, also nested) is
    unwrapped. Non-tensor entries are dropped.

    Returns:
        ``{key: tensor}`` with the checkpoint's own key names.
    Raises:
        WeightsError: missing file, truncated or corrupt file, a pickle holding objects other
            than tensors and containers (refused, never executed), or no state dict inside.
            The message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: weight file not found (expected a PyTorch checkpoint, .pth/.pt)")
    if not path.is_file():
        raise WeightsError(f"{path}: not a file (expected a PyTorch checkpoint, .pth/.pt)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad files; all mean "unreadable"
        raise _load_error(path, e) from None
    state = _unwrap_state_dict(obj)
    if state is None:
        found = f"a dict with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, Mapping) else type(obj).__name__
        raise WeightsError(
            f"{path}: no state dict found (expected a {{name: tensor}} dict, possibly under "
            f"{', '.join(repr(k) for k in _WRAPPER_KEYS)}); found {found}"
        )
    return state


def _load_error(path: Path, e: Exception) -> WeightsError:
    msg = str(e)
    refused = re.search(r"Unsupported global: GLOBAL (\S+)", msg)
    if refused and not refused[1].startswith("torch."):  # torch.* globals there mean a cut-off file
        return WeightsError(
            f"{path}: refused to load: the pickle references the Python object {refused[1]}, not only "
            "tensors and plain containers, and xaiface never unpickles arbitrary objects (torch.load "
            "weights_only=True). If the file is trusted, re-save it with torch.save(model.state_dict(), path)."
        )
    detail = re.search(r"WeightsUnpickler error: \s*(.+)", msg)
    first = detail[1] if detail else (msg.strip().splitlines() or [""])[0]
    return WeightsError(
        f"{path}: cannot read it as a PyTorch checkpoint (truncated, corrupt or not a torch.save file): "
        f"{type(e).__name__}: {first.strip()}"
    )


def _unwrap_state_dict(obj: Any, depth: int = 0) -> dict[str, torch.Tensor] | None:
    if not isinstance(obj, Mapping) or depth > 3:
        return None
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    for key in _WRAPPER_KEYS:
        if key in obj and isinstance(obj[key], Mapping):
            inner = _unwrap_state_dict(obj[key], depth + 1)
            # a wrapper key wins unless the outer dict is itself clearly the state dict
            if inner and len(inner) >= len(tensors):
                return inner
    return tensors or None


def normalize_checkpoint_format(checkpoint_format: str) -> str:
    """Canonical format name (``"auto"``, ``"arcface_torch"``, ``"magface"``, ``"tface"``)."""
    fmt = _FORMAT_ALIASES.get(str(checkpoint_format).lower(), str(checkpoint_format).lower())
    if fmt not in CHECKPOINT_FORMATS:
        accepted = sorted(set(CHECKPOINT_FORMATS) | set(_FORMAT_ALIASES))
        raise ConfigError(f"checkpoint_format must be one of {accepted}, got {checkpoint_format!r}")
    return fmt


def detect_checkpoint_format(state_dict: Mapping[str, torch.Tensor]) -> str:
    """``"tface"``, ``"magface"`` or ``"arcface_torch"`` from a state dict's key names."""
    keys = list(state_dict)
    if any(k.startswith("input_layer.") or ".res_layer." in k or ".shortcut_layer." in k for k in keys):
        return "tface"
    if any(k.startswith(("features.module.", "module.features.")) for k in keys) or "features.conv1.weight" in state_dict:
        return "magface"
    return "arcface_torch"


def _strip_wrapper_prefixes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sd = dict(state_dict)
    while sd:
        prefix = next((p for p in _WRAPPER_PREFIXES if all(k.startswith(p) for k in sd)), None)
        if prefix is None:
            break
        sd = {k[len(prefix) :]: v for k, v in sd.items()}
    return sd


def _from_magface(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # the backbone lives under one of the prefixes (or none, when re-saved on its own);
    # everything else (the MagLinear head) is dropped
    for prefix in _MAGFACE_PREFIXES + ("",):
        sd = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if "conv1.weight" in sd:
            return sd
    return dict(state_dict)  # reported as mismatched keys by the caller


_TFACE_RES_LAYER = {
    True: ("bn1", "conv1", "bn2", "prelu", "conv2", "bn3"),  # TFace BasicBlockIR
    False: ("bn1", "conv1", "prelu", "conv2", "bn3"),  # original CurricularFace bottleneck_IR
}
_TFACE_FIXED = {"input_layer.0": "conv1", "input_layer.1": "bn1", "input_layer.2": "prelu",
                "output_layer.0": "bn2", "output_layer.3": "fc", "output_layer.4": "features"}
_TFACE_BODY = re.compile(r"body\.(\d+)\.(res_layer|shortcut_layer)\.(\d+)\.(.+)")


def _tface_has_mid_bn(state_dict: Mapping[str, torch.Tensor]) -> bool:
    # in the 6-module layout res_layer.2 is a BatchNorm (has running stats); in the 5-module one a PReLU
    return any(re.fullmatch(r"body\.\d+\.res_layer\.2\.running_var", k) for k in state_dict)


def _from_tface(state_dict: Mapping[str, torch.Tensor], layers: tuple[int, ...]) -> dict[str, torch.Tensor]:
    mid_bn = _tface_has_mid_bn(state_dict)
    stage_of: list[tuple[int, int]] = [(s + 1, i) for s, n in enumerate(layers) for i in range(n)]
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        new = key  # unmapped keys keep their name and are reported as unexpected
        m = _TFACE_BODY.fullmatch(key)
        if m is not None:
            block, part, idx, rest = int(m[1]), m[2], int(m[3]), m[4]
            names = _TFACE_RES_LAYER[mid_bn] if part == "res_layer" else ("downsample.0", "downsample.1")
            if block < len(stage_of) and idx < len(names):
                s, i = stage_of[block]
                new = f"layer{s}.{i}.{names[idx]}.{rest}"
        else:
            head, _, rest = key.rpartition(".")
            if head in _TFACE_FIXED:
                new = f"{_TFACE_FIXED[head]}.{rest}"
        out[new] = value
    # TFace's output BatchNorm1d(affine=False) is the affine one with weight 1, bias 0
    if "features.running_mean" in out and "features.weight" not in out and "features.bias" not in out:
        out["features.weight"] = torch.ones_like(out["features.running_mean"])
        out["features.bias"] = torch.zeros_like(out["features.running_mean"])
    return out


def convert_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    layers: tuple[int, int, int, int],
    checkpoint_format: str = "auto",
) -> tuple[dict[str, torch.Tensor], IResNetVariant, str]:
    """Map a checkpoint's keys onto :class:`IResNet`'s (arcface_torch) names.

    Args:
        state_dict: from :func:`load_state_dict_file`.
        layers: blocks per stage of the architecture being loaded (TFace numbers its blocks
            ``body.0..body.N-1`` across stages).
        checkpoint_format: ``"auto"`` or one of :data:`CHECKPOINT_FORMATS` / its aliases.
    Returns:
        ``(state_dict, variant, format)``: the renamed state dict, the :class:`IResNetVariant`
        the checkpoint needs, and the (detected) format name.
    """
    fmt = normalize_checkpoint_format(checkpoint_format)
    sd = _strip_wrapper_prefixes(state_dict)
    if fmt == "auto":
        fmt = detect_checkpoint_format(sd)
    if fmt == "magface":
        return _from_magface(sd), IResNetVariant(bn_eps=2e-5), fmt
    if fmt == "tface":
        variant = IResNetVariant(mid_bn=_tface_has_mid_bn(sd), pool_shortcut=True)
        return _from_tface(sd, tuple(layers)), variant, fmt
    return sd, IResNetVariant(), fmt


def _guess_architecture(keys: set[str]) -> str | None:
    """The registered architecture whose block counts the keys show (arcface_torch or TFace names)."""
    depth = [0, 0, 0, 0]
    tface_blocks: set[str] = set()
    for k in keys:
        m = re.match(r"layer([1-4])\.(\d+)\.", k)
        if m:
            depth[int(m[1]) - 1] = max(depth[int(m[1]) - 1], int(m[2]) + 1)
        m = re.match(r"body\.(\d+)\.", k)
        if m:
            tface_blocks.add(m[1])
    if tface_blocks:  # a TFace checkpoint of another depth: blocks mapped into stages + unmapped body.N
        total = sum(depth) + len(tface_blocks)
        return next((name for name, layers in ARCHITECTURES.items() if sum(layers) == total), None)
    return next((name for name, layers in ARCHITECTURES.items() if tuple(depth) == layers), None)


def _check_keys(net: IResNet, sd: dict[str, torch.Tensor], path: str, arch: str, fmt: str) -> None:
    expected = net.state_dict()
    # checkpoints from PyTorch < 0.4.1 have no BatchNorm batch counters; they do not affect inference
    missing = [k for k in expected if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in expected]
    shapes = [
        f"{k} {tuple(sd[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in sd and tuple(sd[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or shapes):
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (first: {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (first: {', '.join(unexpected[:3])})")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches (first: {'; '.join(shapes[:3])})")
    if any("se_block" in k or re.search(r"res_layer\.5\.fc\d", k) for k in unexpected):
        problems.append("squeeze-excitation (IR-SE) blocks are not supported")
    guess = _guess_architecture(set(sd))
    hint = f"; the blocks look like {guess}" if guess and guess != arch else ""
    raise WeightsError(f"{path}: not an {arch} checkpoint in {fmt} layout: {'; '.join(problems)}{hint}")


def load_iresnet(
    weights: str | os.PathLike | Mapping[str, torch.Tensor],
    arch: str = "iresnet100",
    checkpoint_format: str = "auto",
    spec: ModelSpec | None = None,
) -> IResNetModel:
    """Build an :class:`IResNetModel` from a checkpoint file (or an in-memory state dict).

    Args:
        weights: path of a ``torch.save`` checkpoint, or a ``{name: tensor}`` mapping.
        arch: one of :data:`ARCHITECTURES`.
        checkpoint_format: ``"auto"``, ``"arcface_torch"`` (``"insightface"``, ``"elasticface"``),
            ``"magface"``, ``"tface"`` (``"curricularface"``).
        spec: the registered spec (default: the one registered under ``arch``).
    Returns:
        the model in eval mode; its spec's ``weights_sha256`` is the file's SHA-256.
    Raises:
        WeightsError: unreadable file, or a checkpoint of another architecture / layout (the
            message names the file, the architecture expected and the first offending keys).
        ConfigError: unknown ``arch`` or ``checkpoint_format``.
    """
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown IResNet architecture {arch!r}; expected one of {sorted(ARCHITECTURES)}")
    spec = spec or SPECS[arch]
    if isinstance(weights, Mapping):
        raw, source, sha = dict(weights), "<state dict>", None
    else:
        path = Path(weights)
        raw, source = load_state_dict_file(path), str(path)
        sha = weights_sha256(path)
    layers = ARCHITECTURES[arch]
    sd, variant, fmt = convert_state_dict(raw, layers, checkpoint_format)
    net = IResNet(layers, num_features=spec.embedding_size, variant=variant)
    _check_keys(net, sd, source, arch, fmt)
    net.load_state_dict(sd, strict=False)  # strictness checked above, minus batch counters
    return IResNetModel(replace(spec, weights_sha256=sha), net).eval()


# ----------------------------------------------------------------------------------------------
# registration


def _build(spec: ModelSpec, weights: Any = None, **kwargs: Any) -> IResNetModel:
    """Registry builder: ``weights`` is a checkpoint path, a state dict, or ``"random"``.

    Keyword arguments: ``checkpoint_format`` (default ``"auto"``), ``seed`` (``"random"`` only,
    default 0).
    """
    unknown = set(kwargs) - {"checkpoint_format", "seed"}
    if unknown:
        raise ConfigError(f"model {spec.name}: unknown arguments {sorted(unknown)}; accepted: checkpoint_format, seed")
    checkpoint_format = kwargs.get("checkpoint_format", "auto")
    arch = spec.architecture
    if weights is None:
        raise WeightsError(
            f"model {spec.name} has no packaged weights: pass weights=PATH to an {arch} checkpoint "
            "(insightface arcface_torch backbone.pth, ElasticFace, MagFace or CurricularFace), "
            "or weights='random' for an untrained network"
        )
    if isinstance(weights, str) and weights == "random":
        fmt = normalize_checkpoint_format(checkpoint_format)
        if fmt == "tface":
            variant = IResNetVariant(mid_bn=True, pool_shortcut=True)
        else:
            variant = IResNetVariant(bn_eps=2e-5 if fmt == "magface" else 1e-5)
        net = init_random_(IResNet(ARCHITECTURES[arch], spec.embedding_size, variant=variant), kwargs.get("seed", 0))
        return IResNetModel(spec, net).eval()
    return load_iresnet(weights, arch, checkpoint_format, spec)


for _arch in ARCHITECTURES:
    register_model(SPECS[_arch])(_build)
