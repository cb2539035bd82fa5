"""The plug-in path for external ONNX soft-biometric models, on hand-built ONNX graphs."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from xaiface.errors import ConfigError, WeightsError
from xaiface.soft.external import PRESETS, ExternalModelSpec, ExternalOnnxEstimator, box_crop
from xaiface.soft.traits import get_estimator, list_estimators
from xaiface.types import DetectedFace

S = 16


def _model(path, weights: np.ndarray, softmax: bool = True):
    """images (N,3,S,S) -> mean per channel (N,3) -> @ weights (3,K) [-> softmax]."""
    nodes = [helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("MatMul", ["flat", "W"], ["logits" if softmax else "out"])]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["out"], axis=1))
    k = weights.shape[1]
    graph = helper.make_graph(nodes, "toy", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, S, S])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", k])],
                              initializer=[numpy_helper.from_array(weights.astype(np.float32), "W")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def _photo_and_face(colour):
    photo = np.zeros((64, 64, 3), np.uint8)
    photo[16:48, 16:48] = colour
    return photo, DetectedFace(box=np.array([20.0, 20.0, 44.0, 44.0]), score=1.0, landmarks=np.zeros((5, 2)))


def test_classes_with_preprocessing(tmp_path):
    # BGR input with mean 100, std 50: a red face has channel means (B, G, R) = (-2, -2, 3)
    w = np.array([[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]])  # logit female = R, male = B
    path = _model(tmp_path / "g.onnx", w)
    spec = ExternalModelSpec(trait="gender", output="classes", input_size=S, crop="box", margin=0.0, color_order="BGR",
                             mean=(100.0, 100.0, 100.0), std=(50.0, 50.0, 50.0), labels=("female", "male"))
    est = ExternalOnnxEstimator(path, spec, name="toy-gender")
    photo, face = _photo_and_face((250, 0, 0))
    x = est.preprocess(photo, [face])
    assert x.shape == (1, 3, S, S) and x.dtype == np.float32
    assert np.allclose(x[0, :, 8, 8], [(0 - 100) / 50, (0 - 100) / 50, (250 - 100) / 50])  # B, G, R
    t = est.estimate(photo, [face], source="red")[0]["gender"]
    p = np.exp([3.0, -2.0]) / np.exp([3.0, -2.0]).sum()
    assert t.value == "female" and t.confidence == pytest.approx(p[0], abs=1e-5) and t.estimator == "toy-gender"
    photo_b, _ = _photo_and_face((0, 0, 250))
    assert est.estimate(photo_b, [face])[0]["gender"].value == "male"


def test_bins_and_value_outputs(tmp_path):
    bins = (20.0, 40.0, 60.0)
    w = np.zeros((3, 3))
    w[0] = [0.0, 0.0, 5.0]  # a red face -> mostly 60
    est = ExternalOnnxEstimator(_model(tmp_path / "a.onnx", w), {"trait": "age", "output": "bins", "input_size": S,
                                                                   "bins": bins, "std": (255.0, 255.0, 255.0)})
    photo, face = _photo_and_face((255, 0, 0))
    t = est.estimate(photo, [face])[0]["age"]
    p = np.exp([0.0, 0.0, 5.0]) / np.exp([0.0, 0.0, 5.0]).sum()
    assert t.value == pytest.approx(float(p @ bins), abs=1e-4) and t.unit == "years"
    assert t.confidence == pytest.approx(p[2], abs=1e-5)  # only the 60 bin lies within 5 years of ~59.7
    wv = np.array([[80.0], [0.0], [0.0]])
    est_v = ExternalOnnxEstimator(_model(tmp_path / "w.onnx", wv, softmax=False), "resnet50-weight", input_size=S,
                                  mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0), margin=0.0)
    tv = est_v.estimate(photo, [face])[0]["weight"]
    assert tv.value == pytest.approx(80.0 * float(est_v.preprocess(photo, [face])[0, 0].mean()), rel=1e-5)
    assert np.isnan(tv.confidence) and tv.to_dict()["confidence"] is None


def test_sidecar_json_overrides_the_preset(tmp_path):
    path = _model(tmp_path / "cvlib.onnx", np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))
    (tmp_path / "cvlib.json").write_text(json.dumps({"input_size": S, "mean": [0, 0, 0]}))
    est = get_estimator("cvlib-gender", model_path=path)
    assert est.spec.input_size == S and est.spec.color_order == "BGR" and est.spec.labels == ("male", "female")
    assert est.name == "cvlib-gender"


def test_errors(tmp_path):
    assert {"cvlib-gender", "dex-age", "resnet50-weight", "onnx-trait"} <= set(list_estimators())
    with pytest.raises(WeightsError, match="not available offline"):
        get_estimator("dex-age")
    with pytest.raises(WeightsError, match="model file not found"):
        get_estimator("dex-age", model_path=tmp_path / "nope.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(WeightsError, match="not a loadable ONNX model"):
        get_estimator("cvlib-gender", model_path=tmp_path / "junk.onnx")
    path = _model(tmp_path / "g.onnx", np.ones((3, 2)))
    with pytest.raises(WeightsError, match="input shape"):
        get_estimator("cvlib-gender", model_path=path)  # the preset wants 227x227
    with pytest.raises(WeightsError, match="output has 2 values"):
        get_estimator("dex-age", model_path=path, input_size=S)
    with pytest.raises(ConfigError, match="needs labels"):
        ExternalModelSpec(trait="gender", output="classes", input_size=S)
    with pytest.raises(ConfigError, match="unknown field"):
        ExternalModelSpec.from_mapping({"trait": "age", "colour": "RGB"})
    assert PRESETS["dex-age"].bins[-1] == 100.0 and len(PRESETS["dex-age"].bins) == 101


def test_box_crop_geometry():
    photo = np.zeros((40, 40, 3), np.uint8)
    photo[10:30, 10:30] = 255
    face = DetectedFace(box=np.array([10.0, 10.0, 30.0, 30.0]), score=1.0, landmarks=np.zeros((5, 2)))
    c = box_crop(photo, face, 20, 0.0)
    assert c.shape == (20, 20, 3) and c[1:-1, 1:-1].min() == 255  # the box fills the crop
    c2 = box_crop(photo, face, 20, 0.5)  # margin 0.5: the box is the central half
    assert c2[10, 10, 0] == 255 and c2[1, 1, 0] == 0
