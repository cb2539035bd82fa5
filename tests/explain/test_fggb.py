"""FGGB against a one-dimension-at-a-time transcription of its definition, and its bookkeeping."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xaiface.errors import ConfigError
from xaiface.explain import Verifier, get_explainer
from xaiface.explain.base import gaussian_blur2d
from xaiface.models.base import FaceModel, ModelSpec, Preprocessing


class SmallConvNet(FaceModel):
    """A seeded conv net (conv, ReLU, conv, global mean, linear): nonlinear, so every g_k differs."""

    def __init__(self, size: int = 32, dim: int = 6, seed: int = 0):
        spec = ModelSpec(name="toy-conv", architecture="conv", embedding_size=dim,
                         preprocessing=Preprocessing(input_size=size, geometry=f"crop-{size}", mean=(127.5,) * 3,
                                                     std=(127.5,) * 3),
                         thresholds={"plain": {"eer": 0.3}})
        super().__init__(spec)
        g = torch.Generator().manual_seed(seed)
        self.c1, self.c2, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, stride=2), nn.Linear(8, dim)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.c2(F.relu(self.c1(x)))).mean(dim=(2, 3)))


def _pair(size=32, seed=1):
    r = np.random.default_rng(seed)
    return tuple(r.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(2))


def _transcription(model: FaceModel, crops, th: float, blur: bool = True) -> list[np.ndarray]:
    """FGGB as REFERENCES.md states it, one embedding dimension and one image at a time."""
    x = [torch.from_numpy(c).permute(2, 0, 1)[None].float() for c in crops]
    with torch.no_grad():
        e = [F.normalize(model(xi), dim=1)[0] for xi in x]
    n = e[0].shape[0]
    out = []
    for i in (0, 1):
        s = torch.zeros(x[i].shape[-2:])
        for k in range(n):
            xi = x[i].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(F.normalize(model(xi), dim=1)[0, k], xi)
            gk = g[0].abs().mean(dim=0)
            gk = gk / gk.norm() if gk.norm() > 0 else gk
            s += (e[0][k] * e[1][k] - th / n) * gk
        out.append((gaussian_blur2d(s, 25, 5.0) if blur else s).numpy())
    return out


@pytest.mark.parametrize("chunk", [1, 4, 32])
@pytest.mark.parametrize("blur", [True, False])
def test_fggb_equals_the_transcription(chunk, blur):
    model = SmallConvNet()
    crops = _pair()
    # the threshold at the pair's cosine: the weights e_a,k e_b,k - th/N sum to 0, so both signs occur
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        e = F.normalize(model(x), dim=1)
    th = float((e[0] * e[1]).sum())
    r = get_explainer("fggb", Verifier(model, threshold=th), chunk=chunk, blur=blur).explain(crops)
    want = _transcription(model, crops, th, blur=blur)
    for got, ref in zip(r.combined_maps, want):
        scale = np.abs(ref).max()
        assert scale > 0
        np.testing.assert_allclose(got, ref, atol=1e-5 * scale)
    # both signs occur, and the split is the positive / negative part
    assert (r.similarity_maps[0] > 0).any() and (r.dissimilarity_maps[0] > 0).any()
    np.testing.assert_allclose(r.similarity_maps[0], np.maximum(want[0], 0), atol=1e-5 * np.abs(want[0]).max())


def test_fggb_defaults_and_cost():
    model = SmallConvNet(dim=6)
    ex = get_explainer("fggb", Verifier(model, threshold=0.3))
    assert (ex.blur_size, ex.blur_sigma, ex.blur) == (25, 5.0, True)
    assert ex.params["tau"] == pytest.approx(0.3 / 6)
    r = ex.explain(_pair())
    assert (r.n_forward, r.n_backward) == (2 + 2 * 6, 2 * 6)  # 2 + N forwards (batched copies) + N backwards an image
    one = ex.explain(_pair(), images=(0,))
    assert one.combined_maps[1] is None and (one.n_forward, one.n_backward) == (2 + 6, 6)
    np.testing.assert_allclose(one.combined_maps[0], r.combined_maps[0], atol=1e-6 * np.abs(r.combined_maps[0]).max())
    assert r.extra["n_positive_arguments"] + r.extra["n_negative_arguments"] == 6


def test_fggb_dimensions_truncates_the_sum():
    model = SmallConvNet(dim=6)
    crops = _pair()
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        e = F.normalize(model(x), dim=1)
    v = Verifier(model, threshold=0.3)
    r = get_explainer("fggb", v, dimensions=2, blur=False).explain(crops, images=(0,))
    assert r.n_backward == 2 and r.params["dimensions"] == 2
    one = [get_explainer("fggb", Verifier(model, threshold=0.3), blur=False, dimensions=k).explain(crops, images=(0,))
           for k in (1, 2)]
    # the map of 2 dimensions is the map of 1 plus the second dimension's weighted g_2 (>= 0 scaled)
    g2 = one[1].combined_maps[0] - one[0].combined_maps[0]
    w2 = float(e[0, 1] * e[1, 1] - 0.3 / 6)
    assert np.all(np.sign(g2[np.abs(g2) > 1e-7]) == np.sign(w2))


@pytest.mark.parametrize("kw", [{"blur_size": 4}, {"blur_sigma": 0}, {"chunk": 0}, {"dimensions": 0}, {"dimensions": 7}])
def test_fggb_refuses_bad_parameters(kw):
    with pytest.raises(ConfigError):
        get_explainer("fggb", Verifier(SmallConvNet(), threshold=0.3), **kw)
