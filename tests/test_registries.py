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
         "corrrise": {"n_masks": 24}, "rise": {"n_masks": 24}, "fggb": {"dimensions": 16}}
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


#: the registered models with real weights (every explainer runs on each)
WITH_WEIGHTS = [m for m in list_models() if not model_spec(m).weights_required]
_MODELS: dict[str, object] = {}


def _model_and_crops(name, lfw, dlib_model):
    """A model with weights and two aligned LFW crops of one person at its geometry (cached per module run)."""
    if name not in _MODELS:
        from xaiface.pipeline import FacePipeline

        model = dlib_model if name == "dlib-resnet" else get_model(name)
        pipe = FacePipeline(model=model, threshold=0.5)
        _MODELS[name] = (model, tuple(pipe.align(lfw.image_path("Abel_Pacheco", i)).image for i in (1, 4)))
    return _MODELS[name]


@pytest.mark.parametrize("model_name", WITH_WEIGHTS)
@pytest.mark.parametrize("name", [m for m in list_explainers() if explainer_info(m).family not in ("interpretable", "amortised")])
def test_every_explainer(name, model_name, dlib_model, lfw, request):
    if model_name in ("faceres", "mobileface"):
        request.getfixturevalue("tfjs_weights")
    model, crops = _model_and_crops(model_name, lfw, dlib_model)
    info = explainer_info(name)
    assert info.reference and info.description
    s = model.spec.preprocessing.input_size
    th = model.spec.threshold("eer") if model.spec.thresholds else 0.5
    light = dict(LIGHT.get(name, {}))
    if "stride" in light and s > 150:  # the same few occlusions at a larger crop
        light = {"patch_sizes": (56,), "stride": 56}
    r = get_explainer(name, Verifier(model, threshold=th), **light).explain(crops)
    for kind in ("similarity", "dissimilarity", "combined"):
        for m in r.maps(kind):
            assert m.shape == (s, s) and m.dtype == np.float32 and np.isfinite(m).all()
    for i in (0, 1):
        assert (r.similarity_maps[i] >= 0).all() and (r.dissimilarity_maps[i] >= 0).all()
        np.testing.assert_allclose(r.combined_maps[i], r.similarity_maps[i] - r.dissimilarity_maps[i], atol=1e-6)
    assert r.n_forward >= 2 and r.method == name
    assert r.match == (r.score >= th)
    d = r.data(include_maps=False)
    json.dumps(d)
    assert d["params"] == json.loads(json.dumps(d["params"]))
