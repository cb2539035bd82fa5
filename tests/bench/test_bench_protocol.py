"""DPR, deletion/insertion and localisation maths on exact toy maps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from xaiface.bench import (
    DPR_PERCENTS, accuracy, curve_auc, dpr_masks, error_rates, label_evidence, patch_evidence, pixel_auroc,
    pointing_game, ranked_masks,
)
from xaiface.bench.protocol import compose
from xaiface.errors import ConfigError, NumericalError


@pytest.fixture
def toy():
    """A 10x10 image with 20 planted pixels (20%), and a map ranking exactly them first."""
    rng = np.random.default_rng(0)
    mask = np.zeros((10, 10), bool)
    mask.ravel()[rng.permutation(100)[:20]] = True
    ranks = rng.permutation(100).astype(np.float32).reshape(10, 10)  # distinct values: no ties
    similar = np.where(mask, 1000 + ranks, ranks)  # planted pixels the most similar
    return mask, similar


def test_a_map_that_ranks_the_patches_first_restores_the_original(toy):
    mask, similar = toy
    original = torch.zeros(3, 10, 10)
    patched = torch.where(torch.from_numpy(mask), torch.tensor(255.0), original)
    step20 = DPR_PERCENTS.index(20)
    # rank rule: exactly 20% = the 20 planted pixels, for a match (most similar first) ...
    m = dpr_masks(similar, match=True, rule="rank")
    assert np.array_equal(m[step20], mask)
    assert torch.equal(compose(patched, original, torch.from_numpy(m))[step20], original)
    # ... and for a non-match (least similar first) when the planted pixels are the least similar
    assert np.array_equal(dpr_masks(-similar, match=False, rule="rank")[step20], mask)
    # the reference's strict bound: a non-match replaces all 20, a match one fewer (strictly above v[80])
    assert np.array_equal(dpr_masks(-similar, match=False, rule="bound")[step20], mask)
    b = dpr_masks(similar, match=True, rule="bound")[step20]
    assert b.sum() == 19 and not (b & ~mask).any()


@pytest.mark.parametrize("rule", ["bound", "rank"])
def test_dpr_steps_are_nested_and_span_nothing_to_everything(toy, rule):
    _, similar = toy
    for match in (True, False):
        m = dpr_masks(similar, match, rule=rule)
        assert m.shape == (21, 10, 10)
        assert not m[0].any() and m[-1].all()
        counts = m.reshape(21, -1).sum(1)
        assert (np.diff(counts) >= 0).all() and (m[1:] >= m[:-1]).all()
        if rule == "rank":
            assert list(counts) == [p for p in DPR_PERCENTS]  # 100 pixels: k = p


def test_bound_rule_leaves_ties_at_the_bound():
    flat = np.zeros((10, 10), np.float32)  # a map without information
    assert not dpr_masks(flat, True, rule="bound")[1:-1].any()
    assert (dpr_masks(flat, True, rule="rank").reshape(21, -1).sum(1) == np.array(DPR_PERCENTS)).all()


def test_bad_maps_and_steps_are_refused():
    with pytest.raises(NumericalError):
        dpr_masks(np.full((4, 4), np.nan), True)
    with pytest.raises(ConfigError):
        dpr_masks(np.zeros((4, 4)), True, rule="best")
    with pytest.raises(ConfigError):
        ranked_masks(np.zeros((4, 4)), [0, 50, 40])


def test_deletion_ranking_follows_the_true_label():
    m = np.array([[3.0, -2.0], [1.0, -5.0]])
    assert np.array_equal(ranked_masks(label_evidence(m, True), [25])[0], [[True, False], [False, False]])
    assert np.array_equal(ranked_masks(label_evidence(m, False), [25])[0], [[False, False], [False, True]])
    assert np.array_equal(patch_evidence(m, True), -m) and np.array_equal(patch_evidence(m, False), m)


def test_compose_with_a_constant_fill():
    base = torch.full((3, 2, 2), 7.0)
    masks = torch.tensor([[[True, False], [False, False]], [[True, True], [True, True]]])
    out = compose(base, 0.0, masks)
    assert out.shape == (2, 3, 2, 2) and out[0, :, 0, 0].eq(0).all() and out[0, :, 1, 1].eq(7).all() and out[1].eq(0).all()


def test_rates_and_accuracy():
    scores = np.array([[0.9, 0.2], [0.4, 0.8], [0.7, 0.1], [0.3, 0.6]])  # 4 pairs x 2 steps
    same = np.array([True, True, False, False])
    fmr, fnmr = error_rates(scores, same, 0.5)
    assert fmr.tolist() == [0.5, 0.5] and fnmr.tolist() == [0.5, 0.5]
    assert accuracy(scores, same, 0.5).tolist() == [0.5, 0.5]


def test_auc_is_in_percentage_step_units():
    x = list(DPR_PERCENTS)
    assert curve_auc(x, np.ones(21)) == pytest.approx(100.0)
    assert curve_auc(x, np.linspace(1, 0, 21)) == pytest.approx(50.0)
    # an error that vanishes after the first step: half a 5% step at rate 1
    assert curve_auc(x, np.r_[1.0, np.zeros(20)]) == pytest.approx(2.5)
    # FAME's "trapezoid over P/100, x100" is the same number
    p = np.arange(0, 101, 10)
    acc = np.linspace(0.2, 0.9, 11) ** 2
    assert curve_auc(p, acc) == pytest.approx(100 * np.trapezoid(acc, p / 100))


def test_localisation_scores():
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    good = mask.astype(float) + np.linspace(0, 0.1, 16).reshape(4, 4)
    assert pixel_auroc(good, mask) == 1.0 and pixel_auroc(-good, mask) == 0.0
    assert pixel_auroc(np.zeros((4, 4)), mask) == 0.5
    assert np.isnan(pixel_auroc(good, np.ones((4, 4), bool)))
    assert pointing_game(good, mask) == 1.0 and pointing_game(-good, mask) == 0.0
    assert pointing_game(np.zeros((4, 4)), mask) == 0.5  # tied maxima: the expected hit
