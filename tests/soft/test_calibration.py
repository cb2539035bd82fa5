"""Calibration mechanics (synthetic data) and the saved object (xaiface.soft.calibration)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from xaiface.errors import ConfigError
from xaiface.soft.calibration import (
    CalibratedEstimator, ConformalInterval, ProbabilityCalibrator, SoftBiometricCalibration, calibrate_estimators,
    expected_calibration_error, interval_coverage,
)
from xaiface.soft.pair import explain_verdict
from xaiface.soft.traits import FaceTraits, Trait, TraitEstimator


def _overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True P(male) = q; the model states q pushed towards 0/1 (overconfident)."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.05, 0.95, n)
    y = (rng.uniform(size=n) < q).astype(int)
    logit = np.log(q / (1 - q))
    return 1 / (1 + np.exp(-3.0 * logit)), y


def test_ece_of_hand_made_bins():
    p = np.array([0.9, 0.9, 0.9, 0.9, 0.2, 0.2])  # confidences 0.9 (3/4 right) and 0.8 (2/2 right)
    y = np.array([1, 1, 1, 0, 0, 0])
    r = expected_calibration_error(p, y, bins=10)
    assert r["ece"] == pytest.approx(4 / 6 * 0.15 + 2 / 6 * 0.2, abs=1e-9)
    assert sum(r["count"]) == 6
    with pytest.raises(ConfigError):
        expected_calibration_error(np.array([1.2]), np.array([1]))


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibrator_lowers_ece_on_held_out_data(method):
    p, y = _overconfident(4000, 0)
    pt, yt = _overconfident(4000, 1)
    before = expected_calibration_error(pt, yt, 15)["ece"]
    cal = ProbabilityCalibrator(method).fit(p, y)
    after = expected_calibration_error(cal(pt), yt, 15)["ece"]
    assert before > 0.08
    assert after < 0.03
    again = ProbabilityCalibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_allclose(again(pt), cal(pt), atol=1e-12)


@pytest.mark.parametrize("score", ["normalized", "absolute"])
def test_conformal_coverage_on_synthetic_data(score):
    rng = np.random.default_rng(0)
    n = 6000
    std = rng.uniform(1, 6, n)  # heteroscedastic: the stated std is right, the error Laplace-shaped
    truth = rng.uniform(10, 70, n)
    est = truth + rng.laplace(0, std / np.sqrt(2))
    ci = ConformalInterval(0.8, score).fit(est[:3000], truth[:3000], std[:3000])
    lo, hi = ci(est[3000:], std[3000:])
    cov = interval_coverage(truth[3000:], lo, hi)
    assert cov["coverage"] == pytest.approx(0.8, abs=0.025)
    if score == "normalized":  # locally weighted: narrow where the std is small
        assert (hi - lo)[std[3000:] < 2].mean() < 0.5 * (hi - lo)[std[3000:] > 5].mean()
    # calibrated P(|error| <= 3) agrees with the held-out fraction within 3
    within = ci.within(3.0, std[3000:], 3000)
    assert within.mean() == pytest.approx(np.mean(np.abs(est[3000:] - truth[3000:]) <= 3.0), abs=0.03)
    with pytest.raises(ConfigError):
        ConformalInterval(0.8).fit(est[:3], truth[:3], std[:3])  # too few for an 80% quantile


class _Fixed(TraitEstimator):
    name = "fixed"
    traits = ("gender", "age")

    def settings(self):
        return {"name": self.name, "model": "abc", "tolerance": 5.0}

    def estimate(self, photo, faces, source=None):
        return [FaceTraits({"gender": Trait("gender", "male", 0.99, self.name, probabilities={"female": 0.01, "male": 0.99}),
                            "age": Trait("age", 30.0, 0.4, self.name, unit="years", std=4.0, tolerance=5.0)}, None, source)]


def _calibration() -> SoftBiometricCalibration:
    g = ProbabilityCalibrator("platt")
    g.a_, g.b_, g.n_ = 0.5, 0.0, 10
    a = ConformalInterval(0.8, "normalized")
    a.q_, a.n_ = 1.5, 100
    a.score_quantiles_ = np.linspace(0, 3, 101)  # scores uniform on [0, 3]
    cal = SoftBiometricCalibration()
    cal.add("gender", "fixed", {"name": "fixed", "model": "abc"}, g, "test").add("age", "fixed", {"name": "fixed", "model": "abc"}, a, "test")
    return cal


def test_saved_calibration_round_trip_and_explanation(tmp_path):
    path = _calibration().save(tmp_path / "cal.json")
    cal = SoftBiometricCalibration.load(path)
    est = calibrate_estimators([_Fixed()], cal)[0]
    assert isinstance(est, CalibratedEstimator) and set(est.calibrated_traits) == {"gender", "age"}
    ft = est.estimate(np.zeros((4, 4, 3), np.uint8), [None], "x.jpg")[0]
    pm = 1 / (1 + np.exp(-0.5 * np.log(0.99 / 0.01)))
    assert ft["gender"].probabilities["male"] == pytest.approx(pm, abs=1e-9)
    assert ft["age"].interval == pytest.approx((24.0, 36.0))
    assert ft["age"].interval_text() == "24-36 years (80% interval)"
    assert ft["age"].confidence == pytest.approx((5.0 / 4.0) / 3.0, abs=1e-9)  # share of scores <= tolerance / std
    back = Trait.from_dict("age", ft["age"].to_dict(exact=True))
    assert back.interval == pytest.approx((24.0, 36.0)) and back.interval_level == pytest.approx(0.8)
    e = explain_verdict(ft, ft, 0.9, 0.5)
    assert "age (24-36 and 24-36 years, 80% intervals; estimates 30 and 30" in e.summary()


def test_calibration_is_not_applied_to_other_settings(tmp_path):
    class Other(_Fixed):
        def settings(self):
            return {"name": self.name, "model": "another model"}

    est = calibrate_estimators([Other()], _calibration())[0]
    assert not isinstance(est, CalibratedEstimator)
    (tmp_path / "bad.json").write_text("{\"format\": 99}")
    with pytest.raises(ConfigError):
        SoftBiometricCalibration.load(tmp_path / "bad.json")


def test_shipped_calibration_fits_the_default_estimators():
    from xaiface.soft.calibration import default_calibration
    from xaiface.soft.dlib_age_gender import DlibAgeEstimator, DlibGenderEstimator

    cal = default_calibration()
    assert cal is not None
    wrapped = calibrate_estimators([DlibGenderEstimator(), DlibAgeEstimator(tolerance=7.0)], cal)
    assert [type(w).__name__ for w in wrapped] == ["CalibratedEstimator", "CalibratedEstimator"]
    assert cal.entries["age"]["map"].level == pytest.approx(0.8)
    # the isotonic gender map is monotone and maps into [0, 1]
    g = cal.entries["gender"]["map"]
    q = g(np.linspace(0, 1, 101))
    assert np.all(np.diff(q) >= -1e-12) and q.min() >= 0 and q.max() <= 1
