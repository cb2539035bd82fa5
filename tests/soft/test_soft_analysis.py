"""Error rates by soft-biometric groups: exact counts on constructed pairs; the result store."""
from __future__ import annotations

import numpy as np
import pytest

from xaiface.errors import ConfigError
from xaiface.soft.analysis import GROUPS, error_table, pair_groups, resolve_threshold, table_markdown, wilson_interval
from xaiface.soft.traits import FaceTraits, Trait


def test_wilson_interval_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-4)
    lo, hi = wilson_interval(35, 3000)
    assert lo == pytest.approx(0.00840, abs=1e-4) and hi == pytest.approx(0.01620, abs=1e-4)
    assert wilson_interval(0, 0) is None


def test_error_table_counts():
    scores = np.array([0.95, 0.85, 0.92, 0.80, 0.91, 0.50])
    labels = np.array([1, 1, 1, 0, 0, 0])
    groups = {"g": ["x", "x", "y", "x", "y", None]}
    rows = error_table(scores, labels, 0.9, groups, {"g": ["y", "x"]})
    assert [(r["group"], r["category"]) for r in rows] == [("all pairs", "all"), ("g", "y"), ("g", "x")]
    all_, y, x = rows
    assert (all_["genuine_pairs"], all_["impostor_pairs"], all_["false_non_matches"], all_["false_matches"]) == (3, 3, 1, 1)
    assert all_["fnmr"] == pytest.approx(1 / 3) and all_["fmr"] == pytest.approx(1 / 3)
    assert (y["genuine_pairs"], y["impostor_pairs"], y["false_non_matches"], y["false_matches"]) == (1, 1, 0, 1)
    assert (x["genuine_pairs"], x["impostor_pairs"], x["fnmr"], x["fmr"]) == (2, 1, 0.5, 0.0)
    md = table_markdown(rows)
    assert "| g | x | 2 | 1 | 1 | 0 | 50.00% [" in md
    with pytest.raises(ConfigError, match="categories for"):
        error_table(scores, labels, 0.9, {"g": ["x"]})


def _ft(g: str, age: float, bmi: float | None = None) -> FaceTraits:
    t = {"gender": Trait("gender", g, 0.9, "t"), "age": Trait("age", age, 0.5, "t")}
    if bmi is not None:
        t["bmi"] = Trait("bmi", bmi, 0.5, "t")
    return FaceTraits(t)


def test_pair_groups():
    a = [_ft("male", 30, 22), _ft("female", 30, 22), _ft("male", 30, 22), _ft("male", 30)]
    b = [_ft("male", 33, 22.5), _ft("male", 55, 30), _ft("male", 42, 25), _ft("male", 30)]
    la = ["male", "female", "female", "male"]
    lb = ["male", "male", "male", None]
    g, order = pair_groups(a, b, la, lb)
    assert g[GROUPS[0]] == ["agree", "disagree", "agree", "agree"]
    assert g[GROUPS[1]] == ["neither", "neither", "one", None]
    assert g[GROUPS[2]] == ["same gender, estimates agree", "different gender, estimates disagree",
                            "different gender, estimates agree", None]
    assert g[GROUPS[3]] == ["0-5", ">=20", "10-20", "0-5"]
    assert g[GROUPS[4]] == ["0-1", ">=4", "2-4", None]
    assert order[GROUPS[3]] == ["0-5", "5-10", "10-20", ">=20"]


def test_resolve_threshold(dlib_model):
    name, value = resolve_threshold(dlib_model, "eer", flip=True)
    assert name == "eer" and value == pytest.approx(dlib_model.spec.thresholds["flip"]["eer"])
    assert resolve_threshold(dlib_model, "0.9", flip=True) == ("0.9", 0.9)
    with pytest.raises(ConfigError, match="no calibrated 'fmr=1e-9'"):
        resolve_threshold(dlib_model, "fmr=1e-9", flip=False)


def test_result_store_and_cached_traits(tmp_path, real_faces):
    from xaiface.soft.batch import estimate_traits
    from xaiface.soft.dlib_age_gender import DlibAgeEstimator, DlibGenderEstimator
    from xaiface.soft.store import ResultStore, face_key

    st = ResultStore(tmp_path / "s.sqlite")
    st.put_array("k", np.arange(6, dtype=np.float32).reshape(2, 3))
    assert np.array_equal(st.get_array("k"), np.arange(6).reshape(2, 3)) and st.get_array("missing") is None
    st.put_json("j", {"a": [1, 2]})
    assert st.get_json("j") == {"a": [1, 2]}
    photo, face = real_faces["Serena_Williams_0001.jpg"]
    assert face_key(face) == face_key(face)
    path = tmp_path / "serena.png"
    from PIL import Image

    Image.fromarray(photo).save(path)
    ests = [DlibGenderEstimator(), DlibAgeEstimator()]
    first, err = estimate_traits(ests, {str(path): face}, store=st, progress=False)
    hits = st.hits
    again, _ = estimate_traits(ests, {str(path): face}, store=st, progress=False)
    assert not err and st.hits == hits + 2  # one stored result per estimator
    t1, t2 = first[str(path)], again[str(path)]
    assert t1["gender"].value == t2["gender"].value == "female"
    assert t1["age"].value == t2["age"].value and t1["age"].distribution == t2["age"].distribution
