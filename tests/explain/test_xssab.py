"""xSSAB against a plain, unbatched transcription of the paper's equations (the oracle)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xaiface.explain import Verifier, get_explainer
from xaiface.explain.base import gaussian_kernel2d


def oracle_xssab(model, crop_i, crop_j, th, blur=True):
    """Eq. 2-12 of Huber et al. (WACV 2024), one image and one argument set at a time."""

    def emb(x):
        return F.normalize(model(x), dim=1)[0]

    def px(c):
        return torch.from_numpy(c).permute(2, 0, 1)[None].float()

    maps = []
    for me, other in ((crop_i, crop_j), (crop_j, crop_i)):
        with torch.no_grad():
            e_me, e_other = emb(px(me)), emb(px(other))
        n = e_me.shape[0]
        a = e_me * e_other  # Eq. 6
        tau = th / n  # Eq. 5
        out = {}
        for sign in ("+", "-"):
            w = torch.where(a >= tau, e_other, torch.zeros_like(e_other)) if sign == "+" else \
                torch.where(a < tau, e_other, torch.zeros_like(e_other))  # Eq. 7-8
            x = px(me).requires_grad_(True)
            score = (emb(x) * w).sum()  # the cosine layer with the manipulated weights
            score.backward()  # Eq. 9-10
            g = x.grad[0].abs().mean(0)  # Eq. 11
            if blur:
                k = gaussian_kernel2d(5, 5.0)
                g = F.conv2d(F.pad(g[None, None], (2, 2, 2, 2), mode="reflect"), k[None, None])[0, 0]
            out[sign] = g.numpy()
        maps.append((out["+"], out["-"], out["+"] - out["-"]))  # Eq. 12
    return maps


@pytest.fixture(scope="module")
def real_pair(lfw):
    from xaiface.pipeline import FacePipeline

    pipe = FacePipeline(threshold=0.9)
    return (pipe.align(lfw.image_path("Abel_Pacheco", 1)).image, pipe.align(lfw.image_path("Abel_Pacheco", 4)).image)


@pytest.mark.parametrize("blur", [True, False])
def test_xssab_equals_oracle(dlib_model, real_pair, blur):
    v = Verifier(dlib_model, threshold=0.35)
    r = get_explainer("xssab", v, blur=blur).explain(real_pair)
    oracle = oracle_xssab(dlib_model, *real_pair, th=0.35, blur=blur)
    for i in (0, 1):
        for got, want in zip((r.similarity_maps[i], r.dissimilarity_maps[i], r.combined_maps[i]), oracle[i]):
            scale = np.abs(want).max()
            assert scale > 0
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * scale)
    assert r.n_forward == 2 and r.n_backward == 4
    assert r.params["tau"] == pytest.approx(0.35 / 128)


def test_noblur_is_the_reference_code_setting(dlib_model, real_pair):
    v = Verifier(dlib_model, threshold=0.35)
    plain = get_explainer("xssab-noblur", v).explain(real_pair)
    assert plain.params["blur"] is False and plain.method == "xssab-noblur"
    oracle = oracle_xssab(dlib_model, *real_pair, th=0.35, blur=False)
    blurred = get_explainer("xssab", v).explain(real_pair)
    for i in (0, 1):
        want = oracle[i][2]
        np.testing.assert_allclose(plain.combined_maps[i], want, rtol=0, atol=1e-4 * np.abs(want).max())
        assert not np.allclose(plain.combined_maps[i], blurred.combined_maps[i], atol=1e-3 * np.abs(want).max())


def test_threshold_moves_arguments(dlib_model, real_pair):
    lo = get_explainer("xssab", Verifier(dlib_model, threshold=-1.0)).explain(real_pair)
    hi = get_explainer("xssab", Verifier(dlib_model, threshold=1.0)).explain(real_pair)
    # a low threshold puts (nearly) every argument in the positive set, a high one in the negative
    assert lo.extra["n_positive_arguments"] > hi.extra["n_positive_arguments"]
    assert lo.combined_maps[0].mean() > 0 > hi.combined_maps[0].mean()


def test_first_image_only(dlib_model, real_pair):
    r = get_explainer("xssab", Verifier(dlib_model, threshold=0.35)).explain(real_pair, images=(0,))
    assert r.combined_maps[1] is None and r.combined_maps[0].shape == (150, 150)
    assert r.n_backward == 2


def test_gradient_and_random(dlib_model, real_pair):
    v = Verifier(dlib_model, threshold=0.5)
    g = get_explainer("gradient", v).explain(real_pair)
    assert g.n_forward == 2 and g.n_backward == 2
    assert (g.similarity_maps[0] >= 0).all() and g.similarity_maps[0].max() > 0
    assert not g.dissimilarity_maps[0].any()
    r1 = get_explainer("random", v, seed=3).explain(real_pair)
    r2 = get_explainer("random", v, seed=3).explain(real_pair[::-1])
    np.testing.assert_array_equal(r1.combined_maps[0], r2.combined_maps[0])  # one map for every pair
    assert r1.score == pytest.approx(g.score, abs=1e-6) and r1.match == (r1.score >= 0.5)


def test_bad_inputs(dlib_model, real_pair):
    from xaiface.errors import ConfigError, ModelNotFoundError, NumericalError

    with pytest.raises(ModelNotFoundError, match="no-such-method"):
        get_explainer("no-such-method", Verifier(dlib_model, threshold=0.5))
    with pytest.raises(ConfigError, match="112"):
        get_explainer("xssab", Verifier(dlib_model, threshold=0.5)).explain((real_pair[0][:112, :112], real_pair[1][:112, :112]))

    class NaNModel(type(dlib_model)):
        def features(self, x):
            return super().features(x) * float("nan")

    nan = NaNModel(dlib_model.spec)
    nan.load_state_dict(dlib_model.state_dict())
    with pytest.raises(NumericalError, match="NaN"):
        get_explainer("xssab", Verifier(nan, threshold=0.5)).explain(real_pair)
