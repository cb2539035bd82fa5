"""Shared helpers for the model tests, as fixtures (``tests`` is not a package):
``perturb`` (BatchNorm/PReLU randomisation), ``tface_backbone`` (a TFace reference network class)
and ``pixels`` (a seeded crop)."""
from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import nn


def _perturb(net: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm and PReLU distinct random parameters and statistics.

    Random-init networks have BatchNorm weight 1, bias 0, mean 0, var 1 everywhere, so a loader
    that swapped two BatchNorms would go unnoticed; after this it changes the output.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                if m.affine:  # scaled, not replaced: keeps a random net's activations O(1)
                    m.weight.mul_(0.5 + torch.rand(n, generator=g))
                    m.bias.copy_(0.1 * torch.randn(n, generator=g))
            elif isinstance(m, nn.PReLU):
                m.weight.copy_(0.5 * torch.rand(m.weight.shape, generator=g))
    return net


class _TFaceBlock(nn.Module):
    """TFace ``BasicBlockIR`` (``mid_bn=True``) / original CurricularFace ``bottleneck_IR``."""

    def __init__(self, cin: int, depth: int, stride: int, mid_bn: bool):
        super().__init__()
        if cin == depth:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        mid = [nn.BatchNorm2d(depth)] if mid_bn else []
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin), nn.Conv2d(cin, depth, 3, 1, 1, bias=False), *mid, nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class TFaceBackbone(nn.Module):
    """An independent transcription of TFace's ``Backbone(input_size=112, mode='ir')``.

    Key names are TFace's (``input_layer``, ``body.N``, ``output_layer``); ``mid_bn=False`` gives
    the original CurricularFace repository's block.
    """

    def __init__(self, layers: tuple[int, int, int, int], mid_bn: bool = True):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        blocks, cin = [], 64
        for depth, n in zip((64, 128, 256, 512), layers):
            blocks += [_TFaceBlock(cin, depth, 2, mid_bn)] + [_TFaceBlock(depth, depth, 1, mid_bn) for _ in range(n - 1)]
            cin = depth
        self.body = nn.Sequential(*blocks)
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(512), nn.Dropout(0.4), nn.Flatten(), nn.Linear(512 * 7 * 7, 512),
            nn.BatchNorm1d(512, affine=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.body(self.input_layer(x)))


@pytest.fixture(scope="session")
def pixels() -> torch.Tensor:
    """One seeded RGB "crop" ``(1, 3, 112, 112)`` in 0..255 (batch 1 keeps CPU tests fast)."""
    return torch.rand(1, 3, 112, 112, generator=torch.Generator().manual_seed(7)) * 255


@pytest.fixture(scope="session")
def perturb() -> Callable[[nn.Module, int], nn.Module]:
    """``perturb(net, seed)``: see :func:`_perturb`."""
    return _perturb


@pytest.fixture(scope="session")
def tface_backbone() -> type[TFaceBackbone]:
    """The :class:`TFaceBackbone` class."""
    return TFaceBackbone
