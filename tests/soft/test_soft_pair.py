"""A verdict explained by soft biometrics: constructed trait pairs with exact probabilities."""
from __future__ import annotations

import json

import numpy as np
import pytest

from xaiface.errors import ConfigError
from xaiface.soft.pair import compare_traits, explain_verdict, outcome_of
from xaiface.soft.traits import FaceTraits, Trait


def gender(value: str, p_male: float) -> Trait:
    return Trait("gender", value, p_male if value == "male" else 1 - p_male, "test",
                 probabilities={"female": 1 - p_male, "male": p_male})


def age(dist: dict[float, float]) -> Trait:
    support = tuple(sorted(dist))
    probs = tuple(dist[s] for s in support)
    mean = float(np.dot(support, probs))
    return Trait("age", mean, 1.0, "test", unit="years", std=0.0, tolerance=5.0, distribution=(support, probs))


def bmi(value: float, std: float) -> Trait:
    return Trait("bmi", value, 0.5, "test", unit="kg/m^2", std=std, tolerance=3.0)


def face(*traits: Trait, source: str = "x.jpg") -> FaceTraits:
    return FaceTraits({t.name: t for t in traits}, None, source)


def test_probabilities_are_exact():
    a = face(gender("male", 0.9), age({30.0: 0.5, 50.0: 0.5}), bmi(24.0, 1.0))
    b = face(gender("male", 0.8), age({35.0: 1.0}), bmi(25.0, 1.0))
    c = compare_traits(a, b)
    assert c["gender"].shared and c["gender"].p_shared == pytest.approx(0.9 * 0.8 + 0.1 * 0.2)
    # |30-35| = 5 <= 10 shared, |50-35| = 15 not: P = 0.5; the means 40 and 35 are within 10
    assert c["age"].shared and c["age"].p_shared == pytest.approx(0.5) and c["age"].gap == pytest.approx(5.0)
    from scipy.stats import norm

    sd = np.sqrt(2.0)
    assert c["bmi"].p_shared == pytest.approx(norm.cdf((3 + 1) / sd) - norm.cdf((-3 + 1) / sd))
    assert compare_traits(a, b, {"age": 4.0})["age"].shared is False


def test_false_accept_lists_the_shared_traits():
    a = face(gender("female", 0.05), age({40.0: 1.0}), bmi(22.0, 0.5), source="a.jpg")
    b = face(gender("female", 0.02), age({43.0: 1.0}), bmi(31.0, 0.5), source="b.jpg")
    e = explain_verdict(a, b, score=0.95, threshold=0.9, genuine=False, model="m")
    assert e.outcome == "false accept" and e.match
    # bmi differs: not a reason for an accept; most probable first (age certain, gender 0.93)
    assert [c.trait for c in e.reasons] == ["age", "gender"]
    assert e.reasons[1].p_shared == pytest.approx(0.95 * 0.98 + 0.05 * 0.02)
    s = e.summary()
    assert s.startswith("False accept (score 0.9500 >= threshold 0.9000): the two different people share age (40 and 43 "
                        "years, gap 3 <= 10, p=1.00) and gender (both female, p=0.93).")
    assert "bmi" not in s
    d = json.loads(json.dumps(e.data()))
    assert d["outcome"] == "false accept" and d["reasons"] == ["age", "gender"] and d["reason_kind"] == "shared traits"
    assert d["images"] == ["a.jpg", "b.jpg"] and d["comparisons"]["bmi"]["shared"] is False


def test_false_reject_lists_the_differing_traits():
    a = face(gender("male", 0.99), age({25.0: 1.0}), bmi(23.0, 0.1))
    b = face(gender("female", 0.3), age({60.0: 1.0}), bmi(23.5, 0.1))
    e = explain_verdict(a, b, score=0.5, threshold=0.9, genuine=True)
    assert e.outcome == "false reject" and not e.match
    assert [c.trait for c in e.reasons] == ["age", "gender"]  # ordered by the probability they differ
    assert e.reasons[0].p_differ == pytest.approx(1.0)
    assert e.reasons[1].p_differ == pytest.approx(1 - (0.99 * 0.3 + 0.01 * 0.7))
    assert "differ in age (25 vs 60 years, gap 35 > 10, p=1.00) and gender (male vs female" in e.summary()


def test_nothing_to_explain_and_unknown_truth():
    a = face(gender("male", 0.99), age({30.0: 1.0}))
    e = explain_verdict(a, a, score=0.1, threshold=0.9)
    assert e.outcome == "no match" and e.reasons == () and "differ in none of the estimated traits" in e.summary()
    assert outcome_of(True, None) == "match" and outcome_of(True, True) == "true accept"
    assert outcome_of(False, False) == "true reject"
    with pytest.raises(ConfigError, match="finite"):
        explain_verdict(a, a, float("nan"), 0.9)
    with pytest.raises(ConfigError, match="one face has a class"):
        compare_traits(face(Trait("age", "old", 1.0, "t")), face(Trait("age", 30.0, 1.0, "t")))


def test_figure(tmp_path):
    a = face(gender("male", 0.9), age({30.0: 1.0}), bmi(24.0, 1.0))
    b = face(gender("female", 0.2), age({62.0: 1.0}), bmi(25.0, 1.0))
    e = explain_verdict(a, b, 0.8, 0.9, genuine=True)
    photos = [np.full((60, 50, 3), 90, np.uint8), np.full((70, 70, 3), 200, np.uint8)]
    p = e.visualize(tmp_path / "f.png", photos=photos)
    from PIL import Image

    with Image.open(p) as im:
        assert im.size[0] > 300 and im.size[1] > 300


def test_trait_json_round_trip():
    t = age({30.0: 0.25, 40.0: 0.75})
    back = Trait.from_dict("age", json.loads(json.dumps(t.to_dict(with_distribution=True, exact=True))))
    assert back == t
    unknown = Trait("weight", 80.0, float("nan"), "ext", unit="kg")
    assert unknown.to_dict()["confidence"] is None and np.isnan(Trait.from_dict("weight", unknown.to_dict()).confidence)
