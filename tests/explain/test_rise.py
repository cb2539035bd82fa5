"""RISE for pairs: its masks against RISE's own sampling, the centred saliency, and counts."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from xaiface.errors import ConfigError
from xaiface.explain import Verifier, get_explainer
from xaiface.explain.rise import RiseMasks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import RegionMeanModel, embed_np, real_pair, toy_pair  # noqa: E402

SMALL = dict(n_masks=300, grid_size=6, p_keep=0.5)


@pytest.fixture(scope="module")
def toy():
    return Verifier(RegionMeanModel(), threshold=0.5)


def rise_mask(grid: np.ndarray, shift: tuple[int, int], size: int) -> np.ndarray:
    """RISE's ``generate_masks`` for one grid: ``skimage.transform.resize(grid, up, order=1,
    mode='reflect', anti_aliasing=False)`` (= the ndimage zoom below), then the shifted crop."""
    s = grid.shape[0]
    up = (s + 1) * int(np.ceil(size / s))
    big = ndimage.zoom(grid.astype(np.float32), up / s, order=1, mode="mirror", grid_mode=True)
    assert big.shape == (up, up)
    x, y = shift
    return big[x:x + size, y:y + size]


@pytest.mark.parametrize("size, grid_size", [(32, 6), (150, 12), (112, 12)])
def test_masks_equal_rise_sampling(size, grid_size):
    m = RiseMasks(size, 40, grid_size, 0.9, seed=0)
    got = m(0, 40)[:, 0].numpy()
    assert got.shape == (40, size, size) and got.min() >= 0 and got.max() <= 1 + 1e-6
    assert m.shifts.min() >= 0 and m.shifts.max() < int(np.ceil(size / grid_size))
    for n in range(0, 40, 3):
        np.testing.assert_allclose(got[n], rise_mask(m.grids[n].numpy(), tuple(m.shifts[n].tolist()), size), atol=1e-6)
    # batches are slices of one deterministic set
    np.testing.assert_array_equal(m(10, 17).numpy(), RiseMasks(size, 40, grid_size, 0.9, seed=0)(10, 17).numpy())
    assert not torch.equal(RiseMasks(size, 40, grid_size, 0.9, seed=1)(0, 5), m(0, 5))


def test_keep_probability():
    m = RiseMasks(112, 2000, 12, 0.9, seed=0)
    assert float(m.grids.mean()) == pytest.approx(0.9, abs=0.01)
    assert float(m(0, 200).mean()) == pytest.approx(0.9, abs=0.02)


def test_saliency_equals_formula_and_centring_sign(toy):
    a, b = toy_pair()
    centred = get_explainer("rise", toy, **SMALL).explain((a, b))
    raw = get_explainer("rise", toy, centre=False, **SMALL).explain((a, b))
    assert centred.n_forward == raw.n_forward == 2 + 2 * 300
    masks = RiseMasks(32, 300, 6, 0.5, seed=0)(0, 300)[:, 0].numpy().astype(np.float64)
    ea, eb = embed_np(toy.model, a[None].astype(np.float64)), embed_np(toy.model, b[None].astype(np.float64))
    for i, (x, partner) in enumerate(((a, eb), (b, ea))):
        s = embed_np(toy.model, x[None].astype(np.float64) * masks[..., None]) @ partner[0]
        want_raw = np.tensordot(s, masks, 1) / (300 * 0.5)  # RISE: sum_n s_n M_n / (N p1)
        want = np.tensordot(s - s.mean(), masks, 1) / (300 * 0.5)
        np.testing.assert_allclose(raw.combined_maps[i], want_raw, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(centred.combined_maps[i], want, atol=1e-5 * np.abs(want).max())
        # centring shifts the raw map by mean(s) * sum_n M_n / (N p1)
        np.testing.assert_allclose(raw.combined_maps[i] - centred.combined_maps[i],
                                   s.mean() * masks.sum(0) / 150, rtol=1e-4, atol=1e-5)
        assert centred.extra["mean_masked_similarity"][i] == pytest.approx(s.mean(), abs=1e-6)
    # keeping the shared region raises the similarity: positive; keeping a's extra region lowers it
    m0, m1 = toy.model.region_mask(0), toy.model.region_mask(1)
    c = centred.combined_maps[0]
    assert c[m0].min() > 0 and c[m1].max() < 0 and c.max() == c[m0].max()
    assert (raw.combined_maps[0] > 0).all()  # RISE's raw map cannot argue against a match
    np.testing.assert_array_equal(centred.similarity_maps[0] - centred.dissimilarity_maps[0], c)


def test_images_and_determinism(toy):
    ex = get_explainer("rise", toy, **SMALL)
    one = ex.explain(toy_pair(), images=(1,))
    assert one.n_forward == 2 + 300 and one.combined_maps[0] is None
    again = get_explainer("rise", toy, **SMALL).explain(toy_pair())
    np.testing.assert_array_equal(again.combined_maps[1], one.combined_maps[1])
    assert ex.mask_set(32) is ex.mask_set(32)
    p = get_explainer("rise", Verifier(RegionMeanModel(150, ((20, 40, 20, 40),)), threshold=0.5)).params
    assert (p["n_masks"], p["grid_size"], p["p_keep"], p["cell_px"], p["upsampled_px"]) == (5000, 12, 0.9, 13, 169)


def test_bad_settings(toy):
    with pytest.raises(ConfigError, match="p_keep"):
        get_explainer("rise", toy, p_keep=0)
    with pytest.raises(ConfigError, match="grid_size"):
        get_explainer("rise", toy, grid_size=64)


def test_real_pair_smoke(dlib_model):
    r = get_explainer("rise", Verifier(dlib_model, threshold=0.9), n_masks=20).explain(real_pair())
    assert r.n_forward == 2 + 2 * 20 and r.params["upsampled_px"] == 169
    for i in (0, 1):
        c = r.combined_maps[i]
        assert c.shape == (150, 150) and np.isfinite(c).all() and c.any()
