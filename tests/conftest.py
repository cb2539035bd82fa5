"""Shared fixtures: the real LFW data and the real default model."""
from __future__ import annotations

import numpy as np
import pytest

from xaiface.config import data_dir
from xaiface.errors import DatasetError


@pytest.fixture(scope="session")
def data_root():
    try:
        return data_dir()
    except DatasetError as e:  # pragma: no cover - the shared data is part of the workspace
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def lfw(data_root):
    from xaiface.datasets import LFW

    return LFW(data_root)


def require_fetched(package: str) -> None:
    """Skip when a registry package's weights are not in the cache, unless ``XAIFACE_REQUIRE_WEIGHTS=1``
    (set by ``scripts/test.sh`` after ``setup-env.sh`` fetched them): then a missing file fails."""
    import os

    from xaiface.io.fetch import PACKAGES, is_fetched

    if not is_fetched(package):
        msg = f"{PACKAGES[package].spec} is not fetched (xaiface models fetch {package})"
        if os.environ.get("XAIFACE_REQUIRE_WEIGHTS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def tfjs_weights():
    """The npm human-models 3.0.4 weights (faceres, mobileface) are in the cache."""
    require_fetched("human-models-3.0.4")


@pytest.fixture(scope="session")
def dlib_model():
    from xaiface.models import get_model

    return get_model("dlib-resnet")


@pytest.fixture(scope="session")
def hog():
    from xaiface.detect import get_detector

    return get_detector("dlib-hog")


@pytest.fixture(scope="session")
def lfw_photo(lfw):
    from xaiface.io import load_image

    return load_image(lfw.image_path("Abel_Pacheco", 1))


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(0)
