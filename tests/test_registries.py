"""The same checks over everything registered (in the manner of timm's tests/test_models.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xaiface.detect import get_detector, list_detectors
from xaiface.explain import Verifier, explainer_info, get_explainer, list_explainers
from xaiface.models import get_model, list_models, model_spec

#: small settings so that every method runs in seconds; the full defaults are measured in benchmarks/
LIGHT = {"xface1": {"patch_sizes": (28,), "stride": 20}, "xface2": {"patch_sizes": (28,), "stride": 20},
         "xface3": {"patch_sizes": (28,), "stride": 20},
         "corrrise": {"n_masks": 24}, "rise": {"n_masks": 24}}
NEEDS_USER_FILE = {"onnx"}  # built from a user's file: tests/models/test_onnx_model.py


@pytest.mark.parametrize("name", [m for m in list_models() if m not in NEEDS_USER_FILE])
def test_every_model(name):
    spec = model_spec(name)
    assert spec.embedding_size > 0 and spec.preprocessing.input_size >= 16
    assert spec.preprocessing.geometry.split("-")[0] in ("arcface", "dlib")
    model = get_model(name, weights=None if not spec.weights_required else "random")
    s = spec.preprocessing.input_size
    crops = np.random.default_rng(0).integers(0, 256, (2, s, s, 3), dtype=np.uint8)
    e = model.embed(crops)
    assert e.shape == (2, spec.embedding_size) and np.isfinite(e).all()
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    json.dumps(spec.to_dict())


@pytest.mark.parametrize("name", [d for d in list_detectors() if d.startswith("dlib")])
def test_every_dlib_detector(name, lfw_photo):
    faces = get_detector(name).detect(lfw_photo)
    assert faces and all(f.landmarks.shape == (5, 2) for f in faces)


@pytest.fixture(scope="module")
def crops(lfw):
    from xaiface.pipeline import FacePipeline

    pipe = FacePipeline(threshold=0.9)
    return pipe.align(lfw.image_path("Abel_Pacheco", 1)).image, pipe.align(lfw.image_path("Abel_Pacheco", 4)).image


@pytest.mark.parametrize("name", [m for m in list_explainers() if explainer_info(m).family != "interpretable"])
def test_every_explainer(name, dlib_model, crops):
    info = explainer_info(name)
    assert info.reference and info.description
    r = get_explainer(name, Verifier(dlib_model, threshold=0.9), **LIGHT.get(name, {})).explain(crops)
    for kind in ("similarity", "dissimilarity", "combined"):
        for m in r.maps(kind):
            assert m.shape == (150, 150) and m.dtype == np.float32 and np.isfinite(m).all()
    for i in (0, 1):
        assert (r.similarity_maps[i] >= 0).all() and (r.dissimilarity_maps[i] >= 0).all()
        np.testing.assert_allclose(r.combined_maps[i], r.similarity_maps[i] - r.dissimilarity_maps[i], atol=1e-6)
    assert r.n_forward >= 2 and r.method == name
    assert r.match == (r.score >= 0.9)
    d = r.data(include_maps=False)
    json.dumps(d)
    assert d["params"] == json.loads(json.dumps(d["params"]))
