"""BMI / weight regression on face embeddings: real VIP_attribute faces and exact checks."""
from __future__ import annotations

import numpy as np
import pytest

from xaiface.errors import ConfigError, WeightsError
from xaiface.soft.body_mass import BodyMassEstimator, BodyMassRegressor, cross_validate_body_mass, lognormal_within


def test_cross_validation_on_a_small_real_subset(small_body_mass_model):
    _, d = small_body_mass_model
    assert d["X"].shape == (16, 128) and d["male"].sum() == 8
    assert np.allclose(np.linalg.norm(d["X"], axis=1), 1, atol=1e-5)
    rep = cross_validate_body_mass(d["X"], {"bmi": d["bmi"], "weight": d["weight"]}, strata=d["male"], folds=4)
    for t in ("bmi", "weight"):
        r = rep[t]
        assert np.isfinite(r["mae"]) and 0 < r["mae"] < 30 and r["rmse"] >= r["mae"]
        assert np.isfinite(r["pearson_r"]) and -1 <= r["pearson_r"] <= 1
        assert len(r["predictions"]) == 16 and len(r["fold_mae"]) == 4
        assert np.mean(np.abs(np.array(r["predictions"]) - np.array(r["truth"]))) == pytest.approx(r["mae"])
        assert 0 <= r["mean_confidence"] <= 1 and 0 <= r["fraction_within_tolerance"] <= 1
        assert r["baseline_mae"] > 0 and r["baseline_gender_mae"] > 0


def test_regressor_learns_a_known_relation_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 8))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    bmi = np.exp(3.1 + 0.3 * X[:, 0])
    reg = BodyMassRegressor(("bmi",), optimize_on=80).fit(X[:60], {"bmi": bmi[:60]})
    est, std = reg.predict(X[60:])["bmi"]
    assert np.mean(np.abs(est - bmi[60:])) < 0.5 * np.mean(np.abs(bmi[60:] - bmi[:60].mean()))
    assert np.all(std > 0)
    conf = reg.confidence(X[60:], {"bmi": 3.0})["bmi"]
    assert np.all((conf > 0) & (conf <= 1))
    path = reg.save(tmp_path / "m.npz")
    again = BodyMassRegressor.load(path)
    assert np.allclose(again.predict(X[60:])["bmi"][0], est) and again.digest() == reg.digest()
    with pytest.raises(ConfigError, match="positive"):
        BodyMassRegressor(("bmi",)).fit(X[:10], {"bmi": -bmi[:10]})
    with pytest.raises(ConfigError, match="no values for target 'weight'"):
        BodyMassRegressor().fit(X[:10], {"bmi": bmi[:10]})
    with pytest.raises(WeightsError, match="not a body-mass model"):
        (tmp_path / "bad.npz").write_bytes(b"nope")
        BodyMassRegressor.load(tmp_path / "bad.npz")


def test_lognormal_within_matches_sampling():
    rng = np.random.default_rng(1)
    mu, sigma, tol = 3.2, 0.15, 3.0
    t = np.exp(mu + sigma * rng.normal(size=200_000))
    assert lognormal_within(np.array([mu]), np.array([sigma]), tol)[0] == pytest.approx(np.mean(np.abs(t - np.exp(mu)) <= tol), abs=0.005)


def test_estimator_on_a_real_face(small_body_mass_model, real_faces, dlib_model):
    path, _ = small_body_mass_model
    est = BodyMassEstimator(path, model=dlib_model)
    photo, face = real_faces["Abel_Pacheco_0001.jpg"]
    t = est.estimate(photo, [face], source="abel")[0]
    assert set(t.traits) == {"bmi", "weight"}
    assert 14 < t["bmi"].value < 45 and 35 < t["weight"].value < 160
    assert t["bmi"].unit == "kg/m^2" and 0 < t["bmi"].confidence < 1 and t["bmi"].tolerance == 3.0
    assert est.settings()["regressor"] == BodyMassRegressor.load(path).digest()
