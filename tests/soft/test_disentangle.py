"""Demographic disentangling on a synthetic set: the attribute goes, identity stays."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from soft_helpers import synthetic_embeddings

from xaiface.errors import ConfigError
from xaiface.soft.disentangle import DemographicDisentangler, age_group, attribute_predictability


def _verification_auc(E: np.ndarray, person: np.ndarray) -> float:
    i, j = np.triu_indices(len(E), 1)
    return float(roc_auc_score(person[i] == person[j], np.einsum("nd,nd->n", E[i], E[j])))


def test_gender_predictability_drops_and_identity_stays():
    X, G, P = synthetic_embeddings(n_id=120, per=4, d=32)
    train = P < 60  # disentangler and evaluation on disjoint identities
    dis = DemographicDisentangler(hidden=64, adversary_hidden=32, batch_size=60, epochs=30, lr=3e-3, threads=1)
    dis.fit(X[train], {"gender": G[train]})
    Xt, Gt, Pt = X[~train], G[~train], P[~train]
    Z = dis.transform(Xt)
    before = attribute_predictability(Xt, Gt, Pt)
    after = attribute_predictability(Z, Gt, Pt)
    assert before["balanced_accuracy"] > 0.95 and before["identity_disjoint_folds"]
    assert after["balanced_accuracy"] < 0.8  # the default linear encoder reaches ~0.72 here
    assert _verification_auc(Xt, Pt) > 0.99 and _verification_auc(Z, Pt) > 0.98
    assert Z.shape == (len(Xt), 32) and np.allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5)
    h = dis.history_[-1]
    assert h["epoch"] == 30 and {"reconstruction", "similarity", "confusion", "mmd"} <= set(h)


def test_predictability_of_random_labels_is_chance():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16))
    y = rng.integers(0, 2, 300)
    r = attribute_predictability(X, y, groups=np.arange(300) // 3)
    assert abs(r["balanced_accuracy"] - 0.5) < 0.1 and r["chance"] == 0.5
    y[:50] = -1  # unknown labels are left out
    assert attribute_predictability(X, y)["n"] == 250


def test_linear_projection_baseline_and_encoders():
    from xaiface.soft.disentangle import LinearAttributeProjection

    X, G, P = synthetic_embeddings(n_id=120, per=4, d=32)
    train = P < 60
    proj = LinearAttributeProjection(3).fit(X[train], G[train])
    assert proj.directions_.shape == (3, 32) and np.allclose(proj.directions_ @ proj.directions_.T, np.eye(3), atol=1e-8)
    Z = proj.transform(X[~train])
    assert attribute_predictability(Z, G[~train], P[~train])["balanced_accuracy"] < 0.7
    mlp = DemographicDisentangler(encoder="mlp", code_size=16, hidden=32, adversary_hidden=16, epochs=2, threads=1)
    assert mlp.fit(X, {"gender": G}).transform(X).shape == (len(X), 16)
    with pytest.raises(ConfigError, match="needs encoder='mlp'"):
        DemographicDisentangler(code_size=16, epochs=1).fit(X, {"gender": G})


def test_input_checks():
    X, G, _ = synthetic_embeddings(n_id=10, per=2, d=8)
    with pytest.raises(ConfigError, match="at least one attribute"):
        DemographicDisentangler().fit(X, {})
    with pytest.raises(ConfigError, match="two classes"):
        DemographicDisentangler().fit(X, {"gender": np.zeros(len(X), int)})
    with pytest.raises(ConfigError, match="integer labels"):
        DemographicDisentangler().fit(X, {"gender": G.astype(float)})
    with pytest.raises(ConfigError, match="call fit"):
        DemographicDisentangler().transform(X)
    with pytest.raises(ConfigError, match="classifier"):
        attribute_predictability(X, G, classifier="forest")
    assert [age_group(a) for a in (10, 30, 44.9, 45, 59, 60, 90)] == [0, 1, 1, 2, 2, 3, 3]
