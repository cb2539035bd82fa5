from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_curve

from xaiface.errors import ConfigError
from xaiface.verify import (
    Calibration, calibrate, cosine_similarity, eer, fmr_fnmr, fmr_key, tar_at_far,
    threshold_at_fmr,
)

# A hand example: impostors 0.1 0.2 0.3 0.6, genuines 0.4 0.7 0.8 0.9.
HAND_SCORES = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
HAND_LABELS = np.array([0, 0, 0, 1, 0, 1, 1, 1])


def _random_pairs(seed: int, n: int = 400, decimals: int | None = 2) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping genuine/impostor scores; rounding makes ties, within and across classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = rng.normal(0.35 * y, 0.15)
    return (np.round(s, decimals) if decimals is not None else s), y


# --------------------------------------------------------------------------- cosine similarity


def test_cosine_numpy_single_and_batch():
    a = np.array([1.0, 0.0])
    assert cosine_similarity(a, np.array([3.0, 0.0])) == pytest.approx(1.0)
    assert np.ndim(cosine_similarity(a, a)) == 0
    batch_a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    batch_b = np.array([[-2.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    np.testing.assert_allclose(cosine_similarity(batch_a, batch_b), [-1.0, 1 / np.sqrt(2), 0.0])
    # a (D,) embedding against a batch
    np.testing.assert_allclose(cosine_similarity(a, batch_a), [1.0, 1 / np.sqrt(2), 0.0])


def test_cosine_zero_vector_is_zero_not_nan():
    assert cosine_similarity(np.zeros(3), np.ones(3)) == 0.0


def test_cosine_torch_matches_numpy_and_is_differentiable():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 8)), rng.normal(size=(4, 8))
    ta = torch.tensor(a, requires_grad=True)
    tb = torch.tensor(b)
    out = cosine_similarity(ta, tb)
    assert out.shape == (4,)
    np.testing.assert_allclose(out.detach().numpy(), cosine_similarity(a, b), rtol=1e-12)
    assert cosine_similarity(ta[0], tb[0]).shape == ()
    assert torch.autograd.gradcheck(lambda x: cosine_similarity(x, tb), (ta,))
    out.sum().backward()
    assert ta.grad is not None and torch.isfinite(ta.grad).all()


@pytest.mark.parametrize(
    "a, b",
    [
        (np.ones(3), np.ones(4)),
        (np.ones((2, 3)), np.ones((3, 3))),
        (np.ones((1, 2, 3)), np.ones((1, 2, 3))),
        (torch.ones(3), np.ones(3)),
    ],
)
def test_cosine_bad_shapes(a, b):
    with pytest.raises(ConfigError):
        cosine_similarity(a, b)


# --------------------------------------------------------------------------- EER


def test_eer_separable_is_zero_at_lowest_genuine():
    value, threshold = eer([0.1, 0.2, 0.5, 0.6], [0, 0, 1, 1])
    assert value == 0.0
    assert threshold == 0.5


def test_eer_hand_example():
    # at t = 0.6: one impostor (0.6) of 4 matches, one genuine (0.4) of 4 is rejected
    value, threshold = eer(HAND_SCORES, HAND_LABELS)
    assert value == 0.25
    assert threshold == 0.6
    assert fmr_fnmr(HAND_SCORES, HAND_LABELS, threshold) == (0.25, 0.25)


def test_eer_all_ties_never_returns_inf():
    # sklearn's curve is [inf, 0.5]; both ends are equally far from the crossing, the first wins
    value, threshold = eer([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1])
    assert value == 0.5
    assert threshold == np.nextafter(0.5, 1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eer_is_the_reference_rule_on_sklearn_roc(seed):
    s, y = _random_pairs(seed)
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    i = np.nanargmin(np.abs((1 - tpr) - fpr))
    value, threshold = eer(s, y)
    assert threshold == thr[i]
    assert value == pytest.approx((fpr[i] + 1 - tpr[i]) / 2)
    fmr, fnmr = fmr_fnmr(s, y, threshold)
    assert value == pytest.approx((fmr + fnmr) / 2)
    # the two rates can differ by at most a few pairs' worth at the crossing
    assert abs(fmr - fnmr) < 0.05


def test_eer_accepts_torch_and_bool_labels():
    s = torch.tensor(HAND_SCORES, requires_grad=True)
    assert eer(s, HAND_LABELS.astype(bool)) == (0.25, 0.6)


# --------------------------------------------------------------------------- thresholds at a FMR


def test_threshold_at_fmr_hand_example():
    imp = np.arange(1, 11) / 10  # 0.1 .. 1.0, ten impostors
    gen = np.array([0.75, 0.85, 0.95, 1.05])
    s = np.concatenate([imp, gen])
    y = np.r_[np.zeros(10), np.ones(4)]
    # FMR 0.2 allows two false matches (0.9, 1.0); 0.8 is the highest score with FMR > 0.2
    t = threshold_at_fmr(s, y, 0.2)
    assert t == np.nextafter(0.8, np.inf)
    assert fmr_fnmr(s, y, t) == (0.2, 0.25)  # 0.75 is rejected
    assert tar_at_far(s, y, 0.2) == 0.75
    # FMR 0.25 still allows only two
    assert threshold_at_fmr(s, y, 0.25) == t
    # FMR 0.3 allows three: the threshold drops below 0.8
    assert threshold_at_fmr(s, y, 0.3) == np.nextafter(0.7, np.inf)
    assert tar_at_far(s, y, 0.3) == 1.0


def test_threshold_below_one_impostor_is_just_above_max_impostor():
    s = np.array([0.1, 0.4, 0.35, 0.9])
    y = np.array([0, 0, 1, 1])
    for fmr in (0.0, 0.1, 0.49):
        assert threshold_at_fmr(s, y, fmr) == np.nextafter(0.4, np.inf)
    assert tar_at_far(s, y, 0.1) == 0.5
    # fmr = 1: every pair may match, the lowest score is the threshold
    assert threshold_at_fmr(s, y, 1.0) == 0.1


def test_threshold_at_fmr_ties_are_counted_together():
    # three impostors tied at 0.9, one allowed: all three fall below the threshold, and so does
    # the genuine tied with them
    s = np.array([0.9, 0.9, 0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9, 0.95])
    y = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    t = threshold_at_fmr(s, y, 0.1)
    assert t == np.nextafter(0.9, np.inf)
    assert fmr_fnmr(s, y, t) == (0.0, 0.5)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("fmr", [0.0, 1e-3, 0.01, 0.05, 0.1, 0.3, 0.999, 1.0])
def test_threshold_at_fmr_is_the_lowest_qualifying_threshold(seed, fmr):
    s, y = _random_pairs(seed)
    t = threshold_at_fmr(s, y, fmr)
    imp = s[y == 0]
    assert np.mean(imp >= t) <= fmr
    below = np.nextafter(t, -np.inf)
    if fmr < 1.0:
        assert np.mean(imp >= below) > fmr
    else:
        assert t == s.min()
    # TAR: the best reachable at that FAR on sklearn's ROC
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    assert tar_at_far(s, y, fmr) == pytest.approx(tpr[fpr <= fmr].max())
    assert tar_at_far(s, y, fmr) == np.mean(s[y == 1] >= t)


def test_threshold_at_fmr_float32_survives_a_float32_cast():
    s, y = _random_pairs(3, decimals=None)
    s32 = s.astype(np.float32)
    t = threshold_at_fmr(s32, y, 0.01)
    assert np.mean(s32[y == 0] >= np.float32(t)) <= 0.01
    assert np.float32(t) == t  # representable in float32


def test_fmr_fnmr_score_equal_to_threshold_is_a_match():
    s = np.array([0.5, 0.5, 0.2, 0.8])
    y = np.array([0, 1, 0, 1])
    assert fmr_fnmr(s, y, 0.5) == (0.5, 0.0)
    assert fmr_fnmr(s, y, np.nextafter(0.5, 1.0)) == (0.0, 0.5)


# --------------------------------------------------------------------------- calibration


def test_calibrate_hand_example_and_json_round_trip():
    cal = calibrate(HAND_SCORES, HAND_LABELS, fmrs=(0.25, 1e-3))
    assert cal.eer == 0.25 and cal.eer_threshold == 0.6
    assert cal.thresholds == {
        "eer": 0.6,
        "fmr=2.5e-1": np.nextafter(0.3, 1.0),
        "fmr=1e-3": np.nextafter(0.6, 1.0),
    }
    assert (cal.n_genuine, cal.n_impostor) == (4, 4)
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal
    with pytest.raises(dataclasses.FrozenInstanceError):
        cal.eer = 0.0  # type: ignore[misc]


def test_calibrate_default_keys_match_model_cards():
    s, y = _random_pairs(0)
    cal = calibrate(s, y)
    assert list(cal.thresholds) == ["eer", "fmr=1e-2", "fmr=1e-3"]
    assert cal.thresholds["fmr=1e-2"] == threshold_at_fmr(s, y, 1e-2)
    assert (cal.eer, cal.eer_threshold) == eer(s, y)


def test_calibration_from_dict_missing_key():
    with pytest.raises(ConfigError, match="n_impostor"):
        Calibration.from_dict({"eer": 0.1, "eer_threshold": 0.3, "thresholds": {}, "n_genuine": 3})


@pytest.mark.parametrize("fmr", [-0.1, 1.5, float("nan"), "a"])
def test_fmr_out_of_range(fmr):
    with pytest.raises(ConfigError, match="fmr"):
        threshold_at_fmr(HAND_SCORES, HAND_LABELS, fmr)


def test_fmr_key():
    assert fmr_key(1e-2) == "fmr=1e-2"
    assert fmr_key(1e-3) == "fmr=1e-3"
    assert fmr_key(5e-4) == "fmr=5e-4"
    assert fmr_key(0) == "fmr=0"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "scores, labels, message",
    [
        ([0.1, 0.2, 0.3], [0, 1], "differ in length"),
        ([0.1, 0.2], [1, 2], "binary"),
        ([0.1, 0.2], [-1, 1], "binary"),
        ([0.1, 0.2], ["same", "diff"], "binary"),
        ([0.1, 0.2], [1, 1], "no impostor"),
        ([0.1, 0.2], [0, 0], "no genuine"),
        ([0.1, float("nan"), 0.3], [0, 1, 1], "NaN"),
        ([0.1, float("inf"), 0.3], [0, 1, 1], "finite"),
        ([[0.1, 0.2]], [[0, 1]], "1-D"),
        ([], [], "no genuine"),
    ],
)
@pytest.mark.parametrize(
    "fn", [eer, calibrate, lambda s, y: fmr_fnmr(s, y, 0.5), lambda s, y: tar_at_far(s, y, 0.1)]
)
def test_bad_input(fn, scores, labels, message):
    with pytest.raises(ConfigError, match=message):
        fn(scores, labels)


def test_pair_similarity_does_not_depend_on_the_batch():
    from xaiface.verify import pair_similarity

    rng = np.random.default_rng(3)
    a = rng.standard_normal((257, 128)).astype(np.float32)
    b = rng.standard_normal((257, 128)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    s = pair_similarity(a, b)
    assert s.dtype == np.float64 and s.shape == (257,)
    # exactly rounded: every row alone, a reversed batch and a (D,) x (B, D) broadcast agree bit for bit
    assert [pair_similarity(x, y) for x, y in zip(a, b)] == s.tolist()
    assert pair_similarity(a[::-1], b[::-1])[::-1].tolist() == s.tolist()
    assert pair_similarity(a[5], b)[5] == s[5]
    ref = np.einsum("nd,nd->n", a.astype(np.float64), b.astype(np.float64))
    np.testing.assert_allclose(s, ref, rtol=0, atol=128 * np.finfo(np.float64).eps)
    with pytest.raises(ConfigError, match="one size"):
        pair_similarity(a, b[:, :64])
