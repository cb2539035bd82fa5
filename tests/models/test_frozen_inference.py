"""The frozen TorchScript path that ``FaceModel.forward`` takes without autograd.

Real model and real LFW chips: the frozen path must give the eager network's embeddings, follow
a change of weights, never take a gradient call, and stay off for models that do not opt in.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from xaiface.models.registry import get_model
from xaiface.models.dlib_resnet import dlib_reference_chips


@pytest.fixture(scope="module")
def pixels(lfw) -> torch.Tensor:
    chips = dlib_reference_chips((p.path_a for p in lfw.pairs()[::301]), 6)
    return torch.from_numpy(np.ascontiguousarray(chips)).permute(0, 3, 1, 2).float()


@pytest.fixture()
def model():
    return get_model("dlib-resnet").eval()


def _eager(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.features(model.normalize(x))


def test_frozen_matches_eager_on_real_faces(model, pixels):
    with torch.inference_mode():
        fast = model(pixels)
    assert model.__dict__["_frozen_cache"].get("module") is not None  # the frozen path was taken
    ref = _eager(model, pixels)
    assert torch.allclose(fast, ref, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # another batch size through the same trace
        assert torch.allclose(model(pixels[:1]), ref[:1], rtol=1e-5, atol=1e-5)


def test_frozen_follows_weight_changes(model, pixels):
    with torch.no_grad():
        before = model(pixels)
        model.fc.weight.mul_(2.0)
        after = model(pixels)
    assert torch.allclose(after, 2.0 * before, rtol=1e-4, atol=1e-4)


def test_gradients_take_the_eager_path(model, pixels):
    x = pixels[:2].clone().requires_grad_(True)
    e = model(x)
    assert e.requires_grad
    e.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert "_frozen_cache" not in model.__dict__


def test_switched_off_by_environment(model, pixels, monkeypatch):
    monkeypatch.setenv("XAIFACE_FROZEN_INFERENCE", "0")
    with torch.no_grad():
        out = model(pixels[:2])
    assert "_frozen_cache" not in model.__dict__
    assert torch.allclose(out, _eager(model, pixels[:2]))


def test_models_that_do_not_opt_in_stay_eager(perturb):
    """iresnet keeps exact eager outputs (freezing would fold its BatchNorms and change rounding)."""
    m = perturb(get_model("iresnet18", weights="random", seed=3), 3).eval()
    x = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        out = m(x)
        ref = m.features(m.normalize(x))
    assert "_frozen_cache" not in m.__dict__
    assert torch.equal(out, ref)
