"""Concept erasers on synthetic embeddings with a planted attribute (xaiface.soft.erasure)."""
from __future__ import annotations

import numpy as np
import pytest

from xaiface.errors import ConfigError
from xaiface.soft.disentangle import attribute_predictability
from xaiface.soft.erasure import INLP, LEACE, ConditionalGaussianTransport


def _planted(n_people: int = 300, per: int = 4, d: int = 24, seed: int = 0):
    """People with an identity vector; the attribute shifts a planted direction and (for the
    nonlinear case) scales a second one: a linear probe reads it at ~100%."""
    rng = np.random.default_rng(seed)
    y_person = rng.integers(0, 2, n_people)
    ident = rng.normal(size=(n_people, d))
    u = np.zeros(d)
    u[0] = 1.0
    v = np.zeros(d)
    v[1] = 1.0
    X, y, g = [], [], []
    for p in range(n_people):
        base = ident[p] + 3.0 * (2 * y_person[p] - 1) * u
        base[1] *= 2.0 if y_person[p] else 0.5
        for _ in range(per):
            X.append(base + 0.3 * rng.normal(size=d))
            y.append(y_person[p])
            g.append(p)
    X = np.array(X)
    return X / np.linalg.norm(X, axis=1, keepdims=True), np.array(y), np.array(g)


def _split(g):
    return g % 2 == 0  # people with even ids fit the eraser, the others are scored


def test_inlp_drives_a_linear_probe_to_chance_on_held_out_people():
    X, y, g = _planted()
    tr = _split(g)
    before = attribute_predictability(X[~tr], y[~tr], g[~tr], classifier="logistic")["balanced_accuracy"]
    inlp = INLP(max_iterations=20, tolerance=0.02, patience=2).fit(X[tr], y[tr], g[tr])
    E = inlp.transform(X[~tr])
    after = attribute_predictability(E, y[~tr], g[~tr], classifier="logistic")["balanced_accuracy"]
    assert before > 0.95
    assert after < 0.62
    assert 1 <= inlp.directions_.shape[0] < 20
    np.testing.assert_allclose(inlp.directions_ @ inlp.directions_.T, np.eye(inlp.directions_.shape[0]), atol=1e-8)
    assert inlp.history_[0] > 0.95 and inlp.history_[-1] <= 0.5 + 0.02
    # strength 0 keeps the embeddings (up to normalisation)
    np.testing.assert_allclose(inlp.transform(X[~tr], 0), X[~tr], atol=1e-5)
    assert np.linalg.norm(inlp.transform(X[~tr], normalise=True), axis=1) == pytest.approx(1.0, abs=1e-5)


def test_leace_leaves_no_linear_signal_on_its_fitting_data():
    X, y, _ = _planted(seed=1)
    le = LEACE().fit(X, y)
    E = le.erase(X)
    # the class means of the erased embeddings coincide: no linear classifier beats a constant
    gap = E[y == 1].mean(0) - E[y == 0].mean(0)
    assert np.abs(gap).max() < 1e-8
    assert np.abs(X[y == 1].mean(0) - X[y == 0].mean(0)).max() > 0.1
    np.testing.assert_allclose(le.transform(X, 0.0), X, atol=1e-6)


def test_gaussian_transport_matches_class_means_and_covariances():
    X, y, _ = _planted(seed=2)
    ot = ConditionalGaussianTransport(shrinkage=0.0).fit(X, y)
    Xn = np.asarray(X, np.float64)
    assert np.abs(np.cov(Xn[y == 0], rowvar=False) - np.cov(Xn[y == 1], rowvar=False)).max() > 1e-2
    # with the true labels the transported classes share mean and covariance (before normalisation)
    T = np.stack([ot.mean_ + (Xn[i] - ot.class_means_[y[i]]) @ ot.maps_[y[i]].T for i in range(len(y))])
    for c in (0, 1):
        np.testing.assert_allclose(T[y == c].mean(0), Xn.mean(0), atol=1e-8)
    np.testing.assert_allclose(np.cov(T[y == 0], rowvar=False), np.cov(T[y == 1], rowvar=False), atol=2e-3)
    assert ot.train_accuracy_ > 0.95


def test_erasers_check_their_inputs():
    X, y, g = _planted(n_people=20)
    with pytest.raises(ConfigError):
        INLP().fit(X, np.zeros(len(X), int))
    with pytest.raises(ConfigError):
        LEACE().transform(X)
    with pytest.raises(ConfigError):
        INLP(max_iterations=0)


def test_transfer_probe_reads_the_planted_attribute_and_not_after_leace():
    from xaiface.soft.disentangle import transfer_predictability

    X, y, g = _planted(seed=3)
    tr = _split(g)
    assert transfer_predictability(X[tr], y[tr], X[~tr], y[~tr])["balanced_accuracy"] > 0.95
    le = LEACE().fit(X[tr], y[tr])
    r = transfer_predictability(le.transform(X[tr]), y[tr], le.transform(X[~tr]), y[~tr])
    assert r["balanced_accuracy"] < 0.6 and r["n_test"] == int((~tr).sum())
