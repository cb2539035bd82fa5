"""The layer-wise similarity maps (simcam, hirescam, gradcam): exact values on a hand-set toy
network, the decomposition of the cosine on real faces, and refusals."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from xaiface.errors import ConfigError
from xaiface.explain import Verifier, get_explainer
from xaiface.models.base import FaceModel, ModelSpec, Preprocessing

sys.path.insert(0, str(Path(__file__).parent))
from helpers import RegionMeanModel  # noqa: E402


class CellModel(FaceModel):
    """Toy with hand-set weights: ``cells`` = 4 x 4 mean pooling of the RGB pixels / 255 (a 2 x 2
    map of 3 channels), then either the global mean and a 3 x 3 linear map ``W`` (``head="gap"``)
    or the flattened 12 values and a linear map (``head="flat"``: a weight per place)."""

    def __init__(self, head: str = "gap"):
        spec = ModelSpec(name=f"toy-cells-{head}", architecture="linear", embedding_size=3,
                         preprocessing=Preprocessing(input_size=8, geometry="crop-8", mean=(0.0,) * 3, std=(255.0,) * 3),
                         thresholds={"plain": {"eer": 0.5}}, layers={"last": "cells", "cam": "cells"})
        super().__init__(spec)
        self.head = head
        self.cells = nn.AvgPool2d(4)
        self.w = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, -1.0], [0.0, 0.0, 1.0]])  # green against blue
        #: flat head: place (0, 0) counts 3x, the others 1x
        self.place = torch.tensor([[3.0, 1.0], [1.0, 1.0]])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        a = self.cells(x)  # (B, 3, 2, 2)
        if self.head == "gap":
            return a.mean(dim=(2, 3)) @ self.w.T
        return (a * self.place).sum(dim=(2, 3)) @ self.w.T


def _crops():
    """Image a: red top-left, green bottom-right; image b: red top-left, blue bottom-right."""
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.zeros((8, 8, 3), np.uint8)
    a[:4, :4, 0] = b[:4, :4, 0] = 255
    a[4:, 4:, 1] = 255
    b[4:, 4:, 2] = 255
    return a, b


def _expected_cells(model: CellModel, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """By hand: s_a = <f_a, e_b> / |f_a| is linear in the cells; place (i, j) contributes its share."""
    ca = a.reshape(2, 4, 2, 4, 3).mean(axis=(1, 3)) / 255.0  # (2, 2, 3)
    cb = b.reshape(2, 4, 2, 4, 3).mean(axis=(1, 3)) / 255.0
    w = model.w.numpy().astype(np.float64)
    weight = np.full((2, 2), 0.25) if model.head == "gap" else model.place.numpy()
    fa = np.einsum("ij,ijc->c", weight, ca) @ w.T
    fb = np.einsum("ij,ijc->c", weight, cb) @ w.T
    eb = fb / np.linalg.norm(fb)
    return np.einsum("ij,ijc->ij", weight, ca @ w.T * eb) / np.linalg.norm(fa)


@pytest.mark.parametrize("head", ["gap", "flat"])
def test_simcam_is_the_exact_decomposition(head):
    model = CellModel(head)
    a, b = _crops()
    r = get_explainer("simcam", Verifier(model, threshold=0.5)).explain((a, b))
    want = _expected_cells(model, a, b)
    m = r.combined_maps[0]
    # bilinear up-sampling x4 with align_corners=False keeps each corner pixel at its cell's value
    for (i, j), (y, x) in {(0, 0): (0, 0), (0, 1): (0, 7), (1, 0): (7, 0), (1, 1): (7, 7)}.items():
        assert m[y, x] == pytest.approx(want[i, j], abs=1e-6)
    # the shared red place argues for the match, the green-against-blue place against it
    assert want[0, 0] > 0 and want[1, 1] < 0 and want[0, 1] == 0
    assert r.similarity_maps[0][0, 0] > 0 and r.dissimilarity_maps[0][7, 7] > 0
    # bias-free head: the places sum to the cosine
    assert r.extra["cell_sum"][0] == pytest.approx(r.score, abs=1e-6)
    assert r.extra["cell_sum"][0] == pytest.approx(want.sum(), abs=1e-6)
    assert (r.n_forward, r.n_backward) == (2, 2)


def test_gradcam_averages_the_gradient_over_places():
    """On a head with a weight per place, Grad-CAM's channel weights are the mean of the places'
    gradients, so its map differs from the exact one by the place weights' mean."""
    model = CellModel("flat")
    a, b = _crops()
    v = Verifier(model, threshold=0.5)
    exact = get_explainer("hirescam", v).explain((a, b)).combined_maps[0]
    gc = get_explainer("gradcam", v).explain((a, b)).combined_maps[0]
    ca = a.reshape(2, 4, 2, 4, 3).mean(axis=(1, 3)) / 255.0
    w = model.w.numpy().astype(np.float64)
    fa = np.einsum("ij,ijc->c", model.place.numpy(), ca) @ w.T
    cb = b.reshape(2, 4, 2, 4, 3).mean(axis=(1, 3)) / 255.0
    fb = np.einsum("ij,ijc->c", model.place.numpy(), cb) @ w.T
    eb = fb / np.linalg.norm(fb)
    mean_place = model.place.numpy().mean()
    want = (ca @ w.T * eb).sum(axis=2) * mean_place / np.linalg.norm(fa)
    assert gc[0, 0] == pytest.approx(want[0, 0], abs=1e-6) and gc[7, 7] == pytest.approx(want[1, 1], abs=1e-6)
    assert abs(exact[0, 0] - gc[0, 0]) > 1e-3  # place (0, 0) weighs 3x: the exact map says so, Grad-CAM does not


def test_one_image_and_refusals():
    model = CellModel()
    r = get_explainer("gradcam", Verifier(model, threshold=0.5)).explain(_crops(), images=(0,))
    assert r.combined_maps[1] is None and (r.n_forward, r.n_backward) == (2, 1)
    with pytest.raises(ConfigError, match="declares no 'last' layer"):
        get_explainer("simcam", Verifier(RegionMeanModel(), threshold=0.5))
    with pytest.raises(ConfigError, match="no layer 'nowhere'"):
        get_explainer("simcam", Verifier(model, threshold=0.5), layer="nowhere").explain(_crops())


@pytest.mark.parametrize("model_name", ["dlib-resnet", "faceres"])
def test_simcam_places_sum_to_the_cosine_on_real_faces(model_name, dlib_model, lfw, request):
    """dlib (global mean, bias-free fc) and FaceRes (global mean): the last maps' places sum to the
    cosine of the clean pair, genuine and impostor, up to float32 rounding of a sum of 4-49 places."""
    from xaiface.models import get_model
    from xaiface.pipeline import FacePipeline

    if model_name == "faceres":
        request.getfixturevalue("tfjs_weights")
    model = dlib_model if model_name == "dlib-resnet" else get_model(model_name)
    pipe = FacePipeline(model=model, threshold=0.5)
    a, b = (pipe.align(lfw.image_path("Abel_Pacheco", i)).image for i in (1, 4))
    c = pipe.align(lfw.image_path("Aaron_Peirsol", 1)).image
    ex = get_explainer("simcam", Verifier(model))
    for pair in ((a, b), (a, c)):
        r = ex.explain(pair)
        for i in (0, 1):
            assert r.extra["cell_sum"][i] == pytest.approx(r.score, abs=2e-5)
        assert (r.combined_maps[0] > 0).any()
    assert r.extra["cells"] == ([2, 2] if model_name == "dlib-resnet" else [7, 7])


def test_integrated_gradients_completeness_and_cost():
    """IG's attributions sum to s(x) - s(baseline) as the steps grow (the completeness axiom);
    with the default 2 steps the gap is reported, and the cost is 2 + 2 forwards, 2 backwards."""
    from test_fggb import SmallConvNet

    model = SmallConvNet()
    r = np.random.default_rng(3)
    crops = tuple(r.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(2))
    v = Verifier(model, threshold=0.3)
    gaps = [abs(get_explainer("ig", v, steps=n).explain(crops).extra["completeness_gap"][0]) for n in (1, 4, 64)]
    assert gaps[2] < gaps[0] and gaps[2] < 0.01 * max(gaps[0], 1e-3) + 1e-4
    d = get_explainer("ig", v).explain(crops, images=(0,))
    assert (d.n_forward, d.n_backward) == (4, 2) and d.params["steps"] == 2 and d.params["baseline"] == 0.0
    assert d.combined_maps[1] is None
    with pytest.raises(ConfigError):
        get_explainer("ig", v, steps=0)
    with pytest.raises(ConfigError):
        get_explainer("ig", v, baseline=300)
