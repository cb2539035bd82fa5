"""``explain_photos``: the orchestration of ``xaiface explain`` as a library call, on a real LFW pair."""
from __future__ import annotations

import json

import numpy as np
import pytest

from xaiface.errors import ConfigError, ModelNotFoundError
from xaiface.explain import ExplainRun, Verifier, explain_photos


@pytest.fixture(scope="module")
def pipe(dlib_model):
    from xaiface.pipeline import FacePipeline

    return FacePipeline(dlib_model, threshold="fmr=1e-2")


def test_explain_photos_writes_and_reports(pipe, lfw, tmp_path):
    a, b = lfw.image_path("Abel_Pacheco", 1), lfw.image_path("Abel_Pacheco", 4)
    run = explain_photos(a, b, tmp_path / "o", methods=["random", "gradient"], pipeline=pipe, images="a",
                         on_photo=False, soft_biometrics=False)
    assert isinstance(run, ExplainRun) and [e.method for e in run.explanations] == ["random", "gradient"]
    # the threshold's name travels from the pipeline into every verdict and the summary
    cal = pipe.model.spec.thresholds["plain"]["fmr=1e-2"]
    for e in run.explanations:
        assert (e.threshold_name, e.threshold) == ("fmr=1e-2", cal) and e.verdict.detector == "dlib-hog"
        assert e.combined_maps[1] is None and e.combined_maps[0].shape == (150, 150)
    s = run.summary()
    assert s["threshold_name"] == "fmr=1e-2" and s["threshold"] == round(cal, 6) and "soft_biometrics" not in s
    # the verdict agrees with the pipeline's own (same model, same crops, float32 embeddings)
    v = pipe.verify(a, b)
    assert run.explanations[0].score == pytest.approx(v.similarity, abs=1e-5) and run.explanations[0].match == v.match
    recs = json.loads(run.explanations_json.read_text())["explanations"]
    assert recs[0]["threshold_name"] == "fmr=1e-2" and recs[1]["files"]["combined"][1] is None
    np.testing.assert_array_equal(np.load(run.out / recs[1]["files"]["combined"][0]), run.explanations[1].combined_maps[0])
    assert run.figure.is_file() and run.report.is_file() and "Soft biometrics" not in run.report.read_text()


def test_bad_arguments_fail_before_any_work(lfw, tmp_path):
    built = []
    a = lfw.image_path("Abel_Pacheco", 1)
    with pytest.raises(ModelNotFoundError, match="no-such"):
        explain_photos(a, a, tmp_path / "x", methods=["random", "no-such"], pipeline=lambda: built.append(1))
    with pytest.raises(ConfigError, match="batch-size"):
        explain_photos(a, a, tmp_path / "x", methods=["random"], batch_size=0, pipeline=lambda: built.append(1))
    with pytest.raises(ConfigError, match="images"):
        explain_photos(a, a, tmp_path / "x", methods=["random"], images=(2,), pipeline=lambda: built.append(1))
    assert not built and not (tmp_path / "x").exists()


def test_verifier_from_pipeline(dlib_model):
    from xaiface.pipeline import FacePipeline

    for given, name in ((0.8, "user"), ("eer", "eer"), ("fmr=1e-3", "fmr=1e-3")):
        p = FacePipeline(dlib_model, threshold=given)
        v = Verifier.from_pipeline(p)
        assert (v.threshold_name, v.threshold) == (p.threshold_name, p.threshold) and v.threshold_name == name
    with pytest.raises(ConfigError, match="flip"):
        Verifier.from_pipeline(FacePipeline(dlib_model, flip=True))
