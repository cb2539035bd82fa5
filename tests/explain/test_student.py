"""The CorrRISE student: trained on real CorrRISE maps of clean LFW pairs, loaded with its digest
checked, run under the explainer contract; its record refuses a tampered or foreign file."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from xaiface.errors import ConfigError, WeightsError
from xaiface.explain import Verifier, get_explainer
from xaiface.explain.student import StudentNet, make_targets, place_features, train_student, training_pairs


def test_place_features_shape_and_scale():
    a, b = torch.rand(2, 5, 4, 4), torch.rand(2, 5, 4, 4)
    cells = torch.randn(2, 4, 4) * 7
    f = place_features(a, b, cells)
    assert f.shape == (2, 16, 4, 4)
    np.testing.assert_allclose(f[:, :5].norm(dim=1).numpy(), 1.0, atol=1e-6)  # unit vectors over the channels
    assert float(f[:, -1].abs().amax()) == pytest.approx(1.0)
    assert StudentNet(5)(f).shape == (2, 4, 4)


def test_training_pairs_are_clean_pairs_of_the_training_folds(data_root):
    pairs = training_pairs([2, 7], per_fold=3, first=30, data=data_root)
    assert len(pairs) == 12 and {p.fold for p in pairs} == {1, 6}
    assert sum(p.same for p in pairs) == 6
    with pytest.raises(ConfigError):
        training_pairs([0])


@pytest.fixture(scope="module")
def student(tmp_path_factory, data_root):
    """A student trained for 30 steps on CorrRISE maps (50 masks) of 2 real LFW pairs of fold 1."""
    tmp = tmp_path_factory.mktemp("student")
    pairs = training_pairs([1], per_fold=1, first=30, data=data_root)
    make_targets("dlib-resnet", pairs, tmp / "targets", progress=False, corrrise_params={"n_masks": 50})
    make_targets("dlib-resnet", pairs, tmp / "targets", progress=False)  # resumable: nothing left to do
    assert len(list((tmp / "targets").glob("pair-*.npz"))) == 2
    meta = train_student("dlib-resnet", tmp / "targets", tmp / "s.pt", folds=[1], steps=30, progress=False)
    return tmp, meta


def test_trained_student_explains_a_real_pair(student, dlib_model, lfw):
    from xaiface.pipeline import FacePipeline

    tmp, meta = student
    assert meta["model"] == "dlib-resnet" and meta["layer"] == "blocks.6" and meta["samples"] == 4
    assert meta["train_mse_last_100"] <= meta["train_mse_first_100"] + 1e-6
    pipe = FacePipeline(model=dlib_model, threshold=0.5)
    crops = tuple(pipe.align(lfw.image_path("Abel_Pacheco", i)).image for i in (1, 4))
    ex = get_explainer("corrrise-student", Verifier(dlib_model), weights=str(tmp / "s.pt"))
    r = ex.explain(crops, images=(0,))
    assert r.combined_maps[0].shape == (150, 150) and np.isfinite(r.combined_maps[0]).all()
    assert r.combined_maps[1] is None and (r.n_forward, r.n_backward) == (2, 1)
    assert r.params["weights_sha256"] == meta["sha256"] and r.params["trained_folds"] == [1]


def test_student_record_is_checked(student, dlib_model, tmp_path):
    tmp, meta = student
    v = Verifier(dlib_model)
    with pytest.raises(ConfigError, match="needs weights"):
        get_explainer("corrrise-student", v)
    with pytest.raises(WeightsError, match="no student weights"):
        get_explainer("corrrise-student", v, weights=str(tmp_path / "none.pt"))
    bad = tmp_path / "bad.pt"
    shutil.copy(tmp / "s.pt", bad)
    shutil.copy(tmp / "s.json", tmp_path / "bad.json")
    with open(bad, "ab") as f:
        f.write(b"x")
    with pytest.raises(WeightsError, match="SHA-256"):
        get_explainer("corrrise-student", v, weights=str(bad))
    other = tmp_path / "other.pt"
    shutil.copy(tmp / "s.pt", other)
    (tmp_path / "other.json").write_text(json.dumps({**meta, "model": "faceres"}))
    with pytest.raises(WeightsError, match="for model 'faceres'"):
        get_explainer("corrrise-student", v, weights=str(other))


def test_xaiface_explain_takes_the_student(student, lfw, tmp_path):
    """`xaiface explain --method corrrise-student --param corrrise-student.weights=...` writes its
    maps into the figure and report; a parameter for a method not asked for is refused."""
    from xaiface.cli import main

    tmp, _ = student
    a, b = lfw.image_path("Abel_Pacheco", 1), lfw.image_path("Abel_Pacheco", 4)
    out = tmp_path / "ex"
    rc = main(["explain", str(a), str(b), "--method", "hirescam", "--method", "corrrise-student",
               "--param", f"corrrise-student.weights={tmp / 's.pt'}", "--no-soft-biometrics", "--out", str(out)])
    assert rc == 0
    d = json.loads((out / "explanations.json").read_text())
    methods = [e["method"] for e in (d["explanations"] if isinstance(d, dict) else d)]
    assert methods == ["hirescam", "corrrise-student"]
    assert (out / "report.html").is_file() and (out / "figure.png").is_file()
    with pytest.raises(ConfigError, match="not among the methods"):
        from xaiface.explain.run import explain_photos

        explain_photos(a, b, tmp_path / "x", methods=["xssab"], method_params={"fggb": {"chunk": 4}})
