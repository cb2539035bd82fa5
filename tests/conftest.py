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
