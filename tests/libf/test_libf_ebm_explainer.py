"""The ``libf-ebm`` explainer on real LFW pairs: patch-constant maps of crop size, sums, crops without detections."""
from __future__ import annotations

import json

import numpy as np
import pytest

from xaiface.errors import WeightsError
from xaiface.explain import explainer_info, get_explainer, list_explainers
from xaiface.libf import PATCH_NAMES, patch_label_map
from xaiface.libf.patches import patch_layout
from libf_helpers import write_artefacts


@pytest.fixture(scope="module")
def artefacts(small_ebm, tmp_path_factory):
    enc, ver, *_ = small_ebm
    return write_artefacts(tmp_path_factory.mktemp("libf-model"), enc, ver)


@pytest.fixture(scope="module")
def aligned_pairs(fold0_pairs, det_cache):
    from xaiface.pipeline import FacePipeline

    pipe = FacePipeline("dlib-resnet", "dlib-hog", select="center", cache=det_cache)
    gen = next(p for p in fold0_pairs if p.same)
    imp = next(p for p in fold0_pairs if not p.same)
    return pipe, [(pipe.align(p.path_a), pipe.align(p.path_b)) for p in (gen, imp)]


@pytest.fixture(scope="module")
def explainer(artefacts, aligned_pairs):
    from xaiface.explain import Verifier

    pipe, _ = aligned_pairs
    return get_explainer("libf-ebm", Verifier(pipe.model), artefacts=artefacts)


def test_registered():
    assert "libf-ebm" in list_explainers()
    info = explainer_info("libf-ebm")
    assert info.family == "interpretable" and not info.needs_gradients


def test_untrained_folder_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match="xaiface train libf"):
        get_explainer("libf-ebm", artefacts=tmp_path / "none")


def test_maps_are_patch_constant_on_both_faces(explainer, aligned_pairs, small_bank, small_ebm):
    _, ver, *_ = small_ebm
    for fa, fb in aligned_pairs[1]:
        e = explainer.explain((fa, fb))
        c = np.array([e.extra["patch_contributions"][n] for n in PATCH_NAMES])
        assert e.extra["intercept"] + c.sum() == pytest.approx(e.extra["logit"], abs=1e-10)
        assert e.extra["intercept"] + sum(e.extra["terms"].values()) == pytest.approx(e.extra["logit"], abs=1e-10)
        assert e.score == pytest.approx(1 / (1 + np.exp(-e.extra["logit"])))
        assert e.threshold == 0.5 and e.match == (e.extra["logit"] >= 0)
        for i, face in enumerate((fa, fb)):
            m = e.combined_maps[i]
            assert m.shape == (150, 150) and m.dtype == np.float32
            lay = patch_layout(np.array(e.extra["layout"][i]["centers"][:5]), face.image.shape)
            lab = patch_label_map(lay)
            for j in range(11):
                region = m[lab == j]
                assert region.size > 20
                np.testing.assert_allclose(region, c[j], rtol=1e-6, atol=1e-7)
            assert np.all(m[lab == -1] == 0)
            np.testing.assert_array_equal(e.similarity_maps[i], np.maximum(m, 0))
            np.testing.assert_array_equal(e.dissimilarity_maps[i], np.maximum(-m, 0))
        assert e.extra["landmarks_from"] == ["photo landmarks mapped through AlignedFace.matrix"] * 2
        # the explainer cuts exactly the training patches: same logit as from the patch bank
        la = explainer.model.libf(small_bank[fa.source])
        lb = explainer.model.libf(small_bank[fb.source])
        assert ver.decision_function(la, lb)[0] == pytest.approx(e.extra["logit"], abs=1e-9)
        json.dumps(e.data(include_maps=False))


def test_raw_crops_and_one_image(explainer, aligned_pairs):
    fa, fb = aligned_pairs[1][0]
    e = explainer.explain((fa.image, fb.image))
    assert all("on the crop" in s for s in e.extra["landmarks_from"])
    ref = explainer.explain((fa, fb))
    d_eye = np.linalg.norm(np.subtract(*np.array(ref.extra["layout"][0]["centers"][:2])))
    for i in (0, 1):
        got = np.array(e.extra["layout"][i]["centers"][:5])
        want = np.array(ref.extra["layout"][i]["centers"][:5])
        assert np.linalg.norm(got - want, axis=1).max() < 0.15 * d_eye
        assert e.combined_maps[i].shape == (150, 150)
    one = explainer.explain((fa, fb), images=(0,))
    assert one.combined_maps[1] is None and one.combined_maps[0] is not None


def test_html_report(explainer, aligned_pairs, tmp_path):
    from xaiface.explain.report import save_explanations, write_report

    e = explainer.explain(aligned_pairs[1][0])
    html = write_report([e], tmp_path / "r.html").read_text()
    assert "libf-ebm" in html and "patch_contributions" in html
    rec = json.loads(save_explanations([e], tmp_path).read_text())["explanations"][0]
    assert rec["method"] == "libf-ebm" and rec["extra"]["logit"] == pytest.approx(e.extra["logit"])
