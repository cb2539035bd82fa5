"""The operating point on the model spec: named thresholds are the packaged calibration, a
number is labelled "user", and the pipeline and the verifier hold the same one."""
from __future__ import annotations

import json

import pytest

from xaiface.errors import ConfigError
from xaiface.models import OperatingPoint, model_spec
from xaiface.models.thresholds import thresholds_path


@pytest.mark.parametrize("flip", [False, True])
def test_named_thresholds_are_the_packaged_values(flip: bool) -> None:
    spec = model_spec("dlib-resnet")
    packaged = json.loads(thresholds_path("dlib-resnet").read_text())["flip" if flip else "plain"]
    assert set(packaged) == {"eer", "fmr=1e-2", "fmr=1e-3"}
    for name, value in packaged.items():
        assert spec.threshold(name, flip=flip) == value  # the stored float, not a recomputation
        assert spec.operating_point(name, flip=flip) == OperatingPoint(name, value, flip, calibrated=True)
    assert spec.threshold() == json.loads(thresholds_path("dlib-resnet").read_text())["plain"]["eer"]


def test_numbers_are_user_thresholds_and_bad_names_fail() -> None:
    spec = model_spec("dlib-resnet")
    assert spec.operating_point(0.5, flip=True) == OperatingPoint("user", 0.5, True, calibrated=False)
    assert spec.operating_point("0.25") == OperatingPoint("0.25", 0.25)
    with pytest.raises(ConfigError, match="no calibrated 'fmr=1e-9' threshold for flip"):
        spec.threshold("fmr=1e-9", flip=True)
    with pytest.raises(ConfigError, match="no calibrated 'eer' threshold"):
        model_spec("iresnet18").threshold("eer")  # no packaged calibration


def test_pipeline_and_verifier_share_the_operating_point(dlib_model, hog) -> None:
    from xaiface.explain import Verifier
    from xaiface.pipeline import FacePipeline

    pipe = FacePipeline(dlib_model, hog, threshold="fmr=1e-3")
    assert pipe.operating_point == dlib_model.spec.operating_point("fmr=1e-3")
    assert (pipe.threshold_name, pipe.threshold) == ("fmr=1e-3", dlib_model.spec.threshold("fmr=1e-3"))
    verifier = Verifier(dlib_model, threshold=pipe.operating_point)
    assert (verifier.threshold_name, verifier.threshold) == (pipe.threshold_name, pipe.threshold)  # the name is kept
    flipped = FacePipeline(dlib_model, hog, flip=True)
    assert flipped.threshold == dlib_model.spec.threshold("eer", flip=True)
    with pytest.raises(ConfigError, match="calibrated for flip embeddings; these are plain"):
        Verifier(dlib_model, threshold=flipped.operating_point)
    user = FacePipeline(dlib_model, hog, flip=True, threshold=0.8).operating_point
    assert Verifier(dlib_model, threshold=user).operating_point == OperatingPoint("user", 0.8, False)
