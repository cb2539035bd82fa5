"""CorrRISE: its masks, its vectorised Spearman against scipy, and its maps on a toy model."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from xaiface.errors import ConfigError
from xaiface.explain import Cost, Verifier, get_explainer
from xaiface.explain.corrrise import _MaskSet, corrrise_masks, spearman_map

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import RegionMeanModel, real_pair, toy_pair  # noqa: E402

SMALL = dict(n_masks=200, patch_size=8, reference_size=32)


@pytest.fixture(scope="module")
def toy():
    return Verifier(RegionMeanModel(), threshold=0.5)


def _spearman(x, y):
    with warnings.catch_warnings():  # a constant column gives NaN with a warning
        warnings.simplefilter("ignore")
        return np.nan_to_num(spearmanr(x, y).statistic, nan=0.0)


def test_masks_at_112():
    m = corrrise_masks(112, 500, 3, 30, seed=0)
    assert m.shape == (500, 1, 112, 112) and set(torch.unique(m).tolist()) == {0.0, 1.0}
    occluded = (1 - m).sum((1, 2, 3))
    assert occluded.min() >= 30 * 30 and occluded.max() <= 3 * 30 * 30  # 3 squares, overlaps allowed
    # FAME's random_masks, one square at a time: corners in [0, 112 - 30], squares fully inside
    corners = np.random.default_rng(0).integers(0, 112 - 30 + 1, (500, 3, 2))
    assert corners.max() == 82
    for k in range(0, 500, 7):
        want = np.ones((112, 112), np.float32)
        for r, c in corners[k]:
            want[r:r + 30, c:c + 30] = 0
        np.testing.assert_array_equal(m[k, 0].numpy(), want)
    torch.testing.assert_close(corrrise_masks(112, 500, 3, 30, seed=0), m, rtol=0, atol=0)
    assert not torch.equal(corrrise_masks(112, 500, 3, 30, seed=1), m)
    # origins uniform over [0, 112 - 30]: the first and the last row are each occluded by some mask
    assert (m[:, 0, 0, :] == 0).any() and (m[:, 0, -1, :] == 0).any()


def test_vectorised_spearman_equals_scipy():
    rng = np.random.default_rng(1)
    masks = corrrise_masks(24, 120, 3, 6, seed=2)
    ms = _MaskSet(masks)
    flat = masks.reshape(120, -1).numpy()
    for scores in (rng.normal(size=120), np.round(rng.normal(size=120), 1)):  # the second with many ties
        rho = spearman_map(ms, scores)
        never = flat.min(0) == 1
        assert never.any() and (rho[never] == 0).all()  # a pixel never occluded: NaN -> 0
        for p in list(rng.choice(24 * 24, 12, replace=False)) + list(np.nonzero(never)[0][:2]):
            assert rho[p] == pytest.approx(_spearman(flat[:, p], scores), abs=1e-5)


def test_maps_on_the_toy(toy):
    a, b = toy_pair()
    ex = get_explainer("corrrise", toy, **SMALL)
    r = ex.explain((a, b))
    assert r.n_forward == 2 + 2 * 200 and r.params["patch_size_px"] == 8
    m0, m1 = toy.model.region_mask(0), toy.model.region_mask(1)
    for i in (0, 1):
        c = r.combined_maps[i]
        assert c.shape == (32, 32) and np.abs(c).max() <= 1
        assert c[m0].mean() > 0.5  # keeping the shared region keeps the similarity
        np.testing.assert_array_equal(r.similarity_maps[i] - r.dissimilarity_maps[i], c)
        assert (r.similarity_maps[i] >= 0).all() and (r.dissimilarity_maps[i] >= 0).all()
    assert r.combined_maps[0][m1].mean() < -0.3  # region 1 of a, absent from b, argues against the match
    # the maps are exactly the rank correlation of the masks with the similarities. Ranks are
    # compared on the same scores (the explainer's own batches): the toy's many exactly tied
    # similarities are broken by float rounding, which differs with the batch shape and the CPU
    ms = ex.mask_set(32)
    xa, xb = (torch.from_numpy(x).permute(2, 0, 1)[None].float() for x in (a, b))
    s = (ex._embed_perturbed(xa, ms.masks, 200, Cost()) @ toy.embed(xb)[0]).double().numpy()
    single = (toy.embed(xa * ms.masks) @ toy.embed(xb)[0]).double().numpy()  # one batch of 200
    np.testing.assert_allclose(s, single, rtol=0, atol=64 * np.finfo(np.float32).eps)  # same scores up to rounding
    flat = ms.masks.reshape(200, -1).numpy()
    for p in (5 * 32 + 5, 24 * 32 + 24, 16 * 32 + 3, 0):
        assert r.combined_maps[0].ravel()[p] == pytest.approx(_spearman(flat[:, p], s), abs=1e-6)


def test_one_mask_set_for_every_pair(toy):
    ex = get_explainer("corrrise", toy, **SMALL)
    r1 = ex.explain(toy_pair(), images=(0,))
    first = ex.mask_set(32)
    r2 = ex.explain(toy_pair(b=(200, 100)), images=(0,))
    assert ex.mask_set(32) is first and r1.n_forward == r2.n_forward == 2 + 200 and r1.combined_maps[1] is None
    again = get_explainer("corrrise", toy, **SMALL).explain(toy_pair(), images=(0,))
    np.testing.assert_array_equal(again.combined_maps[0], r1.combined_maps[0])  # same seed, same maps
    other = get_explainer("corrrise", toy, seed=5, **SMALL).explain(toy_pair(), images=(0,))
    assert not np.array_equal(other.combined_maps[0], r1.combined_maps[0])


def test_bad_settings(toy):
    with pytest.raises(ConfigError, match="does not fit"):
        get_explainer("corrrise", toy, patch_size=40, reference_size=32)
    with pytest.raises(ConfigError, match="n_masks"):
        get_explainer("corrrise", toy, n_masks=1)


def test_real_pair_smoke(dlib_model):
    r = get_explainer("corrrise", Verifier(dlib_model, threshold=0.9), n_masks=20).explain(real_pair())
    assert r.n_forward == 2 + 2 * 20 and r.params["patch_size_px"] == 40 and r.extra["n_masks"] == 20
    for i in (0, 1):
        c = r.combined_maps[i]
        assert c.shape == (150, 150) and np.isfinite(c).all() and np.abs(c).max() <= 1 + 1e-6 and c.any()
