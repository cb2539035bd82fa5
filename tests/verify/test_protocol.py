from __future__ import annotations

import json

import numpy as np
import pytest

from xaiface.errors import ConfigError
from xaiface.verify import best_accuracy_threshold, calibrate, eer, lfw_protocol, tar_at_far


def _lfw_like(seed: int, per_fold: int = 40, k: int = 10, decimals: int | None = 2):
    """k folds of per_fold genuine then per_fold impostor pairs, in pairs.txt order; rounded
    scores give ties within and across classes."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.r_[np.ones(per_fold), np.zeros(per_fold)], k).astype(int)
    s = rng.normal(0.5 * y, 0.2)
    return (np.round(s, decimals) if decimals is not None else s), y


def _oracle_threshold(scores: list[float], labels: list[int]) -> float:
    """Plain Python: try every candidate, keep the first (lowest) with the most correct."""
    u = sorted(set(scores))
    midpoints = [lo + (hi - lo) / 2 for lo, hi in zip(u, u[1:])]
    candidates = [u[0], *midpoints, float(np.nextafter(u[-1], np.inf))]
    best_t, best_correct = None, -1
    for t in candidates:
        correct = sum((sc >= t) == bool(lab) for sc, lab in zip(scores, labels))
        if correct > best_correct:
            best_t, best_correct = t, correct
    return best_t


def _oracle_protocol(scores, labels, folds):
    accuracies, thresholds = [], []
    for fold in sorted(set(folds)):
        train = [(s, l) for s, l, f in zip(scores, labels, folds) if f != fold]
        test = [(s, l) for s, l, f in zip(scores, labels, folds) if f == fold]
        t = _oracle_threshold([s for s, _ in train], [l for _, l in train])
        thresholds.append(t)
        accuracies.append(sum((s >= t) == bool(l) for s, l in test) / len(test))
    return accuracies, thresholds


@pytest.mark.parametrize("seed, decimals", [(0, 2), (1, 1), (2, None)])
def test_protocol_matches_plain_python_oracle(seed, decimals):
    s, y = _lfw_like(seed, decimals=decimals)
    folds = np.repeat(np.arange(10), 80)
    report = lfw_protocol(s, y, folds)
    accuracies, thresholds = _oracle_protocol(s.tolist(), y.tolist(), folds.tolist())
    assert list(report.fold_accuracies) == accuracies
    assert list(report.fold_thresholds) == thresholds
    assert report.mean_accuracy == pytest.approx(np.mean(accuracies))


@pytest.mark.parametrize("seed", [3, 4])
def test_best_accuracy_threshold_matches_oracle(seed):
    s, y = _lfw_like(seed, per_fold=30, k=4, decimals=2)
    t, acc = best_accuracy_threshold(s, y)
    assert t == _oracle_threshold(s.tolist(), y.tolist())
    assert acc == np.mean((s >= t) == y)


def test_separable_scores_give_perfect_accuracy():
    rng = np.random.default_rng(0)
    y = np.tile(np.r_[np.ones(30), np.zeros(30)], 10).astype(int)
    s = np.where(y == 1, rng.uniform(0.6, 0.9, y.size), rng.uniform(-0.2, 0.3, y.size))
    report = lfw_protocol(s, y, 10)
    assert report.fold_accuracies == (1.0,) * 10
    assert report.mean_accuracy == 1.0 and report.std_accuracy == 0.0
    assert report.eer == 0.0
    assert report.tar_at_far == {"fmr=1e-2": 1.0, "fmr=1e-3": 1.0}
    assert all(0.3 < t < 0.6 for t in report.fold_thresholds)


def test_best_accuracy_ties_go_to_the_lowest_threshold():
    # impostors 0, 0.5; genuines 0.25, 0.75: splitting at 0.125 and at 0.625 are both 3/4 right
    assert best_accuracy_threshold([0.0, 0.5, 0.25, 0.75], [0, 0, 1, 1]) == (0.125, 0.75)


def test_best_accuracy_ends_all_match_and_none_match():
    # mostly genuines: accepting everything is best
    assert best_accuracy_threshold([0.1, 0.2, 0.3, 0.4], [1, 1, 0, 1]) == (0.1, 0.75)
    # mostly impostors with the genuine lowest: rejecting everything is best
    t, acc = best_accuracy_threshold([0.1, 0.2, 0.3, 0.4], [1, 0, 0, 0])
    assert (t, acc) == (np.nextafter(0.4, 1.0), 0.75)


def test_best_accuracy_adjacent_floats_split_correctly():
    lo = 0.5
    hi = np.nextafter(lo, 1.0)  # no float lies between: the midpoint rounds to one of them
    t, acc = best_accuracy_threshold([lo, hi], [0, 1])
    assert acc == 1.0 and t == hi


def test_int_folds_equal_contiguous_blocks():
    s, y = _lfw_like(5)
    assert lfw_protocol(s, y, 10) == lfw_protocol(s, y, np.repeat(np.arange(10), 80))


def test_report_numbers_and_serialisation():
    s, y = _lfw_like(6, decimals=None)
    report = lfw_protocol(s, y, 10, fmrs=(1e-2, 5e-2))
    acc = np.array(report.fold_accuracies)
    assert report.std_accuracy == pytest.approx(np.std(acc))  # population std
    assert report.standard_error == pytest.approx(np.std(acc, ddof=1) / np.sqrt(10))
    assert (report.eer, report.eer_threshold) == eer(s, y)
    assert report.tar_at_far == {"fmr=1e-2": tar_at_far(s, y, 1e-2), "fmr=5e-2": tar_at_far(s, y, 5e-2)}
    assert report.calibration == calibrate(s, y, (1e-2, 5e-2))
    assert report.n_pairs == 800 and report.fold_ids == tuple(range(10))
    d = json.loads(json.dumps(report.to_dict()))
    assert d["fold_accuracies"] == list(report.fold_accuracies)
    assert d["calibration"]["thresholds"]["fmr=5e-2"] == report.calibration.thresholds["fmr=5e-2"]
    text = report.summary()
    assert f"{100 * report.mean_accuracy:.2f}%" in text
    assert "TAR" in text and "EER" in text and "population" in text


def test_protocol_at_lfw_size():
    s, y = _lfw_like(7, per_fold=300, decimals=None)
    report = lfw_protocol(s, y)
    assert report.n_pairs == 6000 and len(report.fold_accuracies) == 10
    assert 0.8 < report.mean_accuracy < 1.0


@pytest.mark.parametrize(
    "folds, message",
    [
        (7, "equal folds"),
        (1, "equal folds"),
        (np.zeros(800, dtype=int), "at least 2 folds"),
        (np.arange(799), "one fold per pair"),
        (np.repeat(np.arange(10.0), 80), "integers"),
    ],
)
def test_bad_folds(folds, message):
    s, y = _lfw_like(0)
    with pytest.raises(ConfigError, match=message):
        lfw_protocol(s, y, folds)


def test_training_folds_with_one_class():
    s = np.array([0.1, 0.2, 0.8, 0.9])
    y = np.array([0, 0, 1, 1])
    with pytest.raises(ConfigError, match="only one class"):
        lfw_protocol(s, y, np.array([0, 0, 1, 1]))


def test_bad_scores_are_rejected():
    s, y = _lfw_like(0)
    s[3] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        lfw_protocol(s, y)
