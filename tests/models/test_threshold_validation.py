"""Decision thresholds must be finite numbers in the cosine range [-1, 1], wherever one is
accepted (issue 12, defect 2): NaN made identical photos a "no match"."""
from __future__ import annotations

import math

import numpy as np
import pytest

from xaiface.errors import ConfigError

BAD = [float("nan"), float("inf"), -float("inf"), 1.5, -1.01, "nan", "inf", "-2"]
GOOD = [-1.0, 1.0, 0.0, 0.9, np.float32(0.25), 1]


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_bad_threshold_refused_everywhere(value, dlib_model, hog, tmp_path) -> None:
    from xaiface.bench.runner import run_patch_lfw
    from xaiface.explain import Verifier
    from xaiface.pipeline import FacePipeline
    from xaiface.soft.analysis import resolve_threshold as soft_resolve

    shown = repr(float(value)) if isinstance(value, str) else repr(value)
    for build in (lambda: FacePipeline(dlib_model, hog, threshold=value),
                  lambda: FacePipeline(dlib_model, hog, threshold=value, flip=True),
                  lambda: Verifier(dlib_model, threshold=value),
                  lambda: soft_resolve(dlib_model, value, flip=True)):
        with pytest.raises(ConfigError, match=r"finite number in \[-1, 1\].*got " + shown.replace("(", r"\(")):
            build()
    if not isinstance(value, str):  # the benchmark takes a number (its CLI parses with float)
        with pytest.raises(ConfigError, match="finite number"):
            run_patch_lfw(tmp_path / "bench", methods=[], model=dlib_model, threshold=value)
        assert not (tmp_path / "bench").exists()  # refused before any work


@pytest.mark.parametrize("value", GOOD, ids=repr)
def test_good_threshold_accepted(value, dlib_model, hog) -> None:
    from xaiface.explain import Verifier
    from xaiface.models.thresholds import check_threshold
    from xaiface.pipeline import FacePipeline

    assert FacePipeline(dlib_model, hog, threshold=value).threshold == float(value)
    assert Verifier(dlib_model, threshold=value).threshold_name == "user"
    assert check_threshold(value) == float(value)


def test_named_thresholds_resolve_and_are_checked(dlib_model) -> None:
    from xaiface.models.thresholds import check_threshold, resolve_threshold

    name, value = resolve_threshold(dlib_model.spec, "eer", "flip")
    assert name == "eer" and value == dlib_model.spec.thresholds["flip"]["eer"]
    assert resolve_threshold(dlib_model.spec, "0.9") == ("0.9", 0.9)
    with pytest.raises(ConfigError, match="no calibrated 'fmr=1e-9' threshold for plain"):
        resolve_threshold(dlib_model.spec, "fmr=1e-9")
    with pytest.raises(ConfigError, match="must be a number.*True"):
        check_threshold(True)
    assert math.isfinite(check_threshold(-1))
