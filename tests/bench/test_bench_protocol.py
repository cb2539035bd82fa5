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


# -- the reference rules (marcohuber/xSSAB, evaluation/replacement.py), against transcriptions ------


def _reference_bound_masks(flat: np.ndarray, match: bool) -> list[np.ndarray]:
    """A transcription of the reference's bound (get_bound_for_highest/lowest_XX_percent and the
    strict get_del_mask / get_ins_mask) at its 19 float steps."""
    order = np.argsort(flat)
    out = []
    for x in np.arange(0.05, 1., 0.05):
        if match:
            bound = flat[order[int(len(flat) * (1 - x))]]
            out.append(flat > bound)
        else:
            bound = flat[order[int(len(flat) * x)]]
            out.append(flat < bound)
    return out


@pytest.mark.parametrize("size, differing", [(150, [30, 35, 55, 60, 65, 70, 75, 80, 85, 90, 95]), (112, [75])])
def test_float_step_index_is_the_reference_formula(size, differing):
    from xaiface.bench import bound_index, step_count

    n = size * size
    steps = list(range(5, 100, 5))
    for x, p in zip(np.arange(0.05, 1., 0.05), steps):
        assert bound_index(n, p, True, reference_steps=True) == int(n * (1 - x))
        assert bound_index(n, p, False, reference_steps=True) == int(n * x)
        assert step_count(n, p, reference_steps=True) == int(x * n)
    # the float index is one lower than the exact one at these steps (match only), equal elsewhere
    diff = {p: bound_index(n, p, True) - bound_index(n, p, True, reference_steps=True) for p in steps}
    assert [p for p in steps if diff[p]] == differing and set(diff.values()) <= {0, 1}
    assert all(bound_index(n, p, False) == bound_index(n, p, False, reference_steps=True) for p in steps)


@pytest.mark.parametrize("size", [150, 112])
def test_reference_step_masks_equal_the_reference_code(size):
    rng = np.random.default_rng(size)
    m = rng.standard_normal((size, size)).astype(np.float32)
    m[::9, ::4] = 0.5  # some ties, which the strict bound keeps
    steps = list(range(5, 100, 5))
    for match in (True, False):
        ours = dpr_masks(m, match, steps, reference_steps=True)
        for t, ref in enumerate(_reference_bound_masks(m.ravel(), match)):
            assert np.array_equal(ours[t].ravel(), ref), (match, steps[t])
    # on a map without ties a differing step replaces exactly one more pixel than the default
    distinct = rng.permutation(size * size).astype(np.float32).reshape(size, size)
    gap = (dpr_masks(distinct, True, steps, reference_steps=True).reshape(19, -1).sum(1)
           - dpr_masks(distinct, True, steps).reshape(19, -1).sum(1))
    assert set(gap.tolist()) <= {0, 1} and gap.sum() == (11 if size == 150 else 1)


def test_prefix_rule_takes_the_same_prefix_for_matches_and_non_matches():
    m = np.array([[0.9, -0.8, 0.1, 0.5], [-0.2, 0.7, -0.6, 0.3]], dtype=np.float32)  # 8 distinct pixels
    steps = [0, 25, 50, 75, 100]
    a = dpr_masks(m, True, steps, rule="prefix")
    b = dpr_masks(m, False, steps, rule="prefix")
    assert np.array_equal(a, b)
    order = np.argsort(-m.ravel())
    for t, p in enumerate(steps):
        assert set(np.flatnonzero(a[t])) == set(order[: 8 * p // 100].tolist())
    # the bound rule, for comparison, takes the non-match's pixels from the other end
    assert not (dpr_masks(m, False, [25])[0] & a[1]).any()


def test_random_prefix_equals_the_reference_random_masks():
    """The reference's get_random_masks / insert_random_XX_percent, transcribed: np.random.seed(3),
    shuffle arange(N), the first int(X * N) pixels, row = pixel / width."""
    from xaiface.explain.random import permutation_map

    size = 150
    state = np.random.get_state()
    try:
        np.random.seed(3)
        pixs = np.arange(0, size * size)
        np.random.shuffle(pixs)
    finally:
        np.random.set_state(state)
    steps = list(range(5, 100, 5))
    ours = {match: dpr_masks(permutation_map(size, 3), match, steps, rule="prefix", reference_steps=True)
            for match in (True, False)}
    for t, x in enumerate(np.arange(0.05, 1., 0.05)):
        mask = pixs[: int(x * size * size)]
        rows = (mask / size).astype(int)
        cols = mask - rows * size
        ref = np.zeros((size, size), bool)
        ref[rows, cols] = True
        assert np.array_equal(ours[True][t], ref) and np.array_equal(ours[False][t], ref)


@pytest.mark.parametrize("rule, match, digest", [
    ("bound", True, "d2f9c6b97126a0378ab2706620c020390a08f0c2b941dea6a6255fb715eb02cc"),
    ("bound", False, "669eb6fb4d01a1f5f9e73efd8fd029eb694032d6ac065f4b73a45584709d2023"),
    ("rank", True, "03461836fa2a24b479c9ee492a05ed7e718e40d87d74175968dc7fddbb7cb306"),
    ("rank", False, "46674e59d809d8ee3c634eb6c39bc9c9f9e020c4abc2a1cb42dfce3ab27863b9"),
])
def test_default_rules_give_the_masks_they_gave_before_the_reference_rules(rule, match, digest):
    # digests of the masks computed by the code before the reference rules (commit 8ed23bc)
    import hashlib

    m = np.random.default_rng(7).standard_normal((150, 150)).astype(np.float32)
    m[::7, ::5] = 0.25  # ties
    got = dpr_masks(m, match, rule=rule)
    assert hashlib.sha256(np.packbits(got).tobytes()).hexdigest() == digest
    # and the exact integer index, transcribed
    v, flat = np.sort(m.ravel()), m.ravel()
    if rule == "bound":
        for t, p in enumerate(DPR_PERCENTS[1:-1], start=1):
            want = flat > v[22500 * (100 - p) // 100] if match else flat < v[22500 * p // 100]
            assert np.array_equal(got[t].ravel(), want)
