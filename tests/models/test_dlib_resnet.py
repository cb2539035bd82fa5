"""The PyTorch port of dlib's ResNet against dlib's own compute_face_descriptor, on real LFW faces."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from xaiface.errors import WeightsError
from xaiface.models import get_model
from xaiface.models.dlib_resnet import default_weights_path, dlib_model_path, dlib_reference_chips, load_dlib_resnet
from xaiface.models.dlib_serialize import DlibReader, read_dlib_net

N_FACES = 60


@pytest.fixture(scope="module")
def dlib_chips(lfw):
    """dlib's own chips (get_face_chip) of N_FACES LFW photos, from dlib's own detector and 5-point shape."""
    return dlib_reference_chips((p.path_a for p in lfw.pairs()[::97]), N_FACES)


def test_descriptor_equals_dlib(dlib_model, dlib_chips):
    import dlib

    fr = dlib.face_recognition_model_v1(str(default_weights_path()))
    ref = np.stack([np.array(fr.compute_face_descriptor(c)) for c in dlib_chips])
    ours = dlib_model.embed(dlib_chips, normalize=False)
    assert len(dlib_chips) >= 50
    diff = np.abs(ref - ours).max()
    assert diff <= 1e-4, diff
    # and the batch does not change the result
    one = dlib_model.embed(dlib_chips[:1], normalize=False)
    np.testing.assert_allclose(one[0], ours[0], atol=1e-5)


def test_gradients_reach_pixels(dlib_model, dlib_chips):
    x = torch.from_numpy(dlib_chips[:2]).permute(0, 3, 1, 2).float().requires_grad_(True)
    e = dlib_model(x)
    torch.nn.functional.cosine_similarity(e[0:1], e[1:2]).sum().backward()
    g = x.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_spec(dlib_model):
    s = dlib_model.spec
    assert s.embedding_size == 128 and s.preprocessing.input_size == 150
    assert s.preprocessing.geometry == "dlib-150"
    assert len(s.weights_sha256) == 64


def test_reader_primitives():
    # 150 = 01 96; -28 = 81 1c; 0.04 = 03 0a d7 a3 81 1c (from REFERENCES)
    r = DlibReader(bytes([0x01, 0x96, 0x81, 0x1C, 0x03, 0x0A, 0xD7, 0xA3, 0x81, 0x1C]))
    assert r.int() == 150 and r.int() == -28
    r2 = DlibReader(bytes([0x03, 0x0A, 0xD7, 0xA3, 0x81, 0x1C]))
    assert r2.float() == pytest.approx(0.04, rel=1e-6)


@pytest.mark.parametrize("cut", [0, 100, 5_000_000, -10])
def test_truncated_weights(tmp_path, cut):
    data = default_weights_path().read_bytes()
    p = tmp_path / "broken.dat"
    p.write_bytes(data[:cut])
    with pytest.raises(WeightsError, match="broken.dat"):
        load_dlib_resnet(p)


def test_wrong_file(tmp_path):
    p = tmp_path / "other.dat"
    p.write_bytes(b"this is not a dlib network\n" * 10)
    with pytest.raises(WeightsError, match="other.dat"):
        get_model("dlib-resnet", weights=p)
    with pytest.raises(WeightsError, match="not found"):
        get_model("dlib-resnet", weights=tmp_path / "missing.dat")
    # a real dlib file of another kind: the shape predictor
    with pytest.raises(WeightsError, match="shape_predictor_5"):
        load_dlib_resnet(dlib_model_path("shape_predictor_5_face_landmarks.dat"))


def test_parser_reads_whole_file():
    net = read_dlib_net(default_weights_path().read_bytes())
    assert net.loss == "loss_metric_2" and net.input_size == (150, 150)
    assert len(net.layers) == 108
    assert net.distance_threshold == pytest.approx(0.6)
