"""The EBM verifier on real LFW pairs: local contributions sum to the logit; global explanation; safe files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from xaiface.errors import ConfigError, WeightsError
from xaiface.libf import PATCH_NAMES, LIBFVerifier


def test_local_contributions_sum_to_the_logit(small_ebm):
    enc, ver, xa, xb, y = small_ebm
    logit = ver.decision_function(xa, xb)
    terms = ver.term_contributions(xa, xb)
    assert terms.shape == (len(xa), len(ver.term_names))
    np.testing.assert_allclose(ver.intercept + terms.sum(1), logit, atol=1e-10)
    patches = ver.patch_contributions(xa, xb)
    assert patches.shape == (len(xa), 11)
    np.testing.assert_allclose(ver.intercept + patches.sum(1), logit, atol=1e-10)
    # the same numbers as InterpretML's own local explanation and probability
    loc = ver.ebm_.explain_local(ver.encode(xa, xb), y)
    for i in range(len(xa)):
        d = loc.data(i)
        np.testing.assert_allclose(d["scores"], terms[i], atol=1e-12)
        assert d["extra"]["scores"][0] == pytest.approx(ver.intercept)
    np.testing.assert_allclose(ver.predict_proba(xa, xb), ver.ebm_.predict_proba(ver.encode(xa, xb))[:, 1], atol=1e-12)
    # one pair as data
    e = ver.local_explanation(xa[0], xb[0])
    assert e["logit"] == pytest.approx(logit[0])
    assert e["intercept"] + sum(e["terms"].values()) == pytest.approx(e["logit"], abs=1e-10)
    assert e["intercept"] + sum(e["patches"].values()) == pytest.approx(e["logit"], abs=1e-10)
    assert list(e["patches"]) == list(PATCH_NAMES)
    mags = [abs(v) for v in e["terms"].values()]
    assert mags == sorted(mags, reverse=True)
    json.dumps(e)
    # it learned something about its training pairs
    assert (ver.predict(xa, xb) == y).mean() > 0.6


def test_terms_are_shared_among_their_patches(small_ebm):
    _, ver, *_ = small_ebm
    w = ver.term_patches()
    np.testing.assert_allclose(w.sum(1), 1.0)
    feats = ver.ebm_.term_features_
    inter = [t for t, f in enumerate(feats) if len(f) == 2]
    assert len(inter) == 1
    t = inter[0]
    pa, pb = (ver.feature_names[f].split(".")[1] for f in feats[t])
    expect = np.zeros(11)
    expect[PATCH_NAMES.index(pa)] += 0.5
    expect[PATCH_NAMES.index(pb)] += 0.5
    np.testing.assert_allclose(w[t], expect)


def test_global_explanation(small_ebm):
    _, ver, *_ = small_ebm
    g = ver.global_explanation()
    imp = np.asarray(ver.ebm_.term_importances())
    assert sorted(g["terms"].values(), reverse=True) == list(g["terms"].values())
    assert sum(g["terms"].values()) == pytest.approx(imp.sum())
    assert sum(g["patches"].values()) == pytest.approx(imp.sum())
    assert len(g["interactions"]) == 1 and " & " in g["interactions"][0]
    json.dumps(g)


def test_save_load_round_trip_without_pickle(small_ebm, tmp_path):
    _, ver, xa, xb, _ = small_ebm
    ver.save(tmp_path / "m")
    back = LIBFVerifier.load(tmp_path / "m")
    assert back.get_params() == ver.get_params()
    np.testing.assert_array_equal(back.decision_function(xa, xb), ver.decision_function(xa, xb))
    np.testing.assert_array_equal(back.term_contributions(xa, xb), ver.term_contributions(xa, xb))
    assert back.global_explanation() == ver.global_explanation()
    with np.load(tmp_path / "m" / "arrays.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_broken_model_files(small_ebm, tmp_path):
    _, ver, *_ = small_ebm
    with pytest.raises(WeightsError, match="trained EBM not found"):
        LIBFVerifier.load(tmp_path / "nothing")
    d = ver.save(tmp_path / "m")
    raw = (d / "arrays.npz").read_bytes()
    (d / "arrays.npz").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(WeightsError, match="unreadable EBM files"):
        LIBFVerifier.load(d)
    ver.save(d)
    doc = json.loads((d / "model.json").read_text())
    (d / "model.json").write_text(json.dumps({**doc, "format": "other"}))
    with pytest.raises(WeightsError, match="expected 'xaiface-libf-ebm'"):
        LIBFVerifier.load(d)
    (d / "model.json").write_text("{not json")
    with pytest.raises(WeightsError, match="unreadable"):
        LIBFVerifier.load(d)


def test_bad_use(small_ebm):
    _, ver, xa, xb, y = small_ebm
    with pytest.raises(ConfigError, match="not fitted"):
        LIBFVerifier().decision_function(xa, xb)
    with pytest.raises(ConfigError, match="pair encoding"):
        LIBFVerifier("stacked")
    with pytest.raises(ConfigError, match="interactions"):
        LIBFVerifier(interactions="3x")
    with pytest.raises(ConfigError, match="labels"):
        LIBFVerifier(embedding_dim=2).fit(xa, xb, np.ones(len(xa)))
    with pytest.raises(ConfigError, match="expects"):
        ver.decision_function(xa[:, :20], xb[:, :20])
    with pytest.raises(ConfigError, match="one pair"):
        ver.local_explanation(xa[:2], xb[:2])
