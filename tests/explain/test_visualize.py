"""Pictures of explanations: the green / pink convention, overlays, the figure and the HTML report."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from xaiface.errors import ConfigError
from xaiface.explain import FacePair, PairExplanation
from xaiface.explain.report import map_filename, save_explanations, write_report
from xaiface.explain.visualize import (
    DISSIMILARITY_RGB, MAX_ALPHA, SIMILARITY_RGB, colorize, crop_overlays, overlay, pair_figure, photo_overlays,
    signed_maps,
)
from xaiface.types import AlignedFace, PairVerdict

S = 32
EVIL = "<script>alert(1)</script>.jpg"


def _face(seed: int, source: str | None, photo_shape=(60, 80)) -> AlignedFace:
    crop = np.random.default_rng(seed).integers(40, 216, (S, S, 3)).astype(np.uint8)
    matrix = np.array([[1.0, 0.0, -10.0], [0.0, 1.0, -5.0]])  # crop = photo shifted by (10, 5)
    return AlignedFace(crop, matrix, f"test-{S}", photo_shape, source=source)


def _halves(left: float, right: float) -> np.ndarray:
    m = np.zeros((S, S), np.float32)
    m[:, : S // 2], m[:, S // 2:] = left, right
    return m


def _expl(method="toy", images=(0, 1), source_a=EVIL, source_b="b.jpg", score=0.7) -> PairExplanation:
    comb = _halves(2.0, -4.0)  # pair-wide max |combined| = 4
    sim, dis = np.maximum(comb, 0), np.maximum(-comb, 0)
    keep = lambda m: tuple(m.copy() if i in images else None for i in (0, 1))  # noqa: E731
    return PairExplanation(
        method=method, params={"p": 1, "name": "<b>bold</b>"}, similarity_maps=keep(sim), dissimilarity_maps=keep(dis),
        combined_maps=keep(comb), verdict=PairVerdict(similarity=score, threshold=0.5, match=score >= 0.5, model="toy-model"),
        n_forward=2, n_backward=4, seconds=0.25, pair=FacePair(_face(1, source_a), _face(2, source_b)),
    )


def _photos():
    rng = np.random.default_rng(3)
    return tuple(rng.integers(40, 216, (60, 80, 3)).astype(np.uint8) for _ in range(2))


def test_overlay_left_green_right_pink():
    crop = np.full((S, S, 3), 128, np.uint8)
    out = overlay(crop, _halves(1.0, -1.0))
    left, right = out[:, : S // 2].reshape(-1, 3).astype(int), out[:, S // 2:].reshape(-1, 3).astype(int)
    assert (left[:, 1] > left[:, 0] + 50).all() and (left[:, 1] > left[:, 2] + 50).all()  # green dominant
    assert (right[:, 0] > right[:, 1] + 50).all()  # red dominant (pink-red)
    want_l = np.rint(128 * (1 - MAX_ALPHA) + np.array(SIMILARITY_RGB) * MAX_ALPHA)
    want_r = np.rint(128 * (1 - MAX_ALPHA) + np.array(DISSIMILARITY_RGB) * MAX_ALPHA)
    np.testing.assert_array_equal(left[0], want_l)
    np.testing.assert_array_equal(right[0], want_r)


def test_overlay_alpha_proportional_and_zero_is_unchanged():
    crop = np.random.default_rng(0).integers(0, 256, (S, S, 3)).astype(np.uint8)
    np.testing.assert_array_equal(overlay(crop, np.zeros((S, S))), crop)
    np.testing.assert_array_equal(overlay(crop, np.full((S, S), np.nan)), crop)  # NaN: outside the crop
    a = colorize(np.array([[0.0, 0.5, -0.25, 1.0, 3.0]]))[0, :, 3]
    np.testing.assert_allclose(a, MAX_ALPHA * np.array([0, 0.5, 0.25, 1, 1]), rtol=1e-6)  # clipped at 1
    with pytest.raises(ConfigError):
        overlay(crop, np.zeros((S + 1, S)))


def test_signed_maps_share_the_pair_scale():
    e = _expl()
    ca, cb = signed_maps(e, "combined")
    np.testing.assert_allclose(ca, e.normalized()[0])
    assert ca.max() == pytest.approx(0.5) and ca.min() == pytest.approx(-1.0)
    sa, _ = signed_maps(e, "similarity")
    da, _ = signed_maps(e, "dissimilarity")
    assert sa.max() == pytest.approx(0.5) and da.min() == pytest.approx(-1.0)  # one scale, dissimilarity negative


def test_one_image_method_leaves_the_other_plain():
    e = _expl(images=(0,))
    oa, ob = crop_overlays(e)
    np.testing.assert_array_equal(ob, e.pair.b.image)
    assert not np.array_equal(oa, e.pair.a.image)


def test_photo_overlay_follows_the_alignment():
    e = _expl()
    photos = _photos()
    pa, _ = photo_overlays(e, photos)
    ca, _ = crop_overlays(e)
    # crop pixel (x, y) came from photo pixel (x + 10, y + 5): inside each half the colour is the same
    for x in (4, S - 5):
        y = 16
        d_photo = pa[y + 5, x + 10].astype(int) - photos[0][y + 5, x + 10]
        d_crop = ca[y, x].astype(int) - e.pair.a.image[y, x]
        assert np.sign(d_photo[1] - d_photo[0]) == np.sign(d_crop[1] - d_crop[0]) != 0
    np.testing.assert_array_equal(pa[:4], photos[0][:4])  # outside the crop: untouched
    with pytest.raises(ConfigError, match="photos"):
        photo_overlays(e)  # sources are not files: photos must be passed
    with pytest.raises(ConfigError, match="aligned from"):
        photo_overlays(e, (photos[0][:50], photos[1]))


def test_figure_and_report(tmp_path):
    exps = [_expl("toy"), _expl("half", images=(0,), score=0.2)]
    photos = _photos()
    fig = pair_figure(exps, tmp_path / "fig.png", photos=photos, on_photo=True, separate=True)
    with Image.open(fig) as im:
        assert im.format == "PNG" and im.size[0] > 600 and im.size[1] > 400
    rep = write_report(exps, tmp_path / "r" / "report.html", photos=photos)
    doc = rep.read_text(encoding="utf-8")
    assert doc.count("data:image/png;base64,") >= 2 * (4 + 6) - 2  # overlays and maps of both methods, + legend
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", doc)
    assert "http://" not in doc and "https://" not in doc and "<link" not in doc
    assert "<script" not in doc.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.jpg" in doc and "&lt;b&gt;bold&lt;/b&gt;" in doc
    assert "no match" in doc and "not computed" in doc
    with pytest.raises(ConfigError):
        write_report(exps, tmp_path / "x.html", on_photo=True)  # photos required but not to be had
    assert "data:image/png;base64," in write_report(exps, tmp_path / "y.html").read_text()  # crops only


def test_save_explanations(tmp_path):
    exps = [_expl("toy"), _expl("toy", images=(0,))]
    js = save_explanations(exps, tmp_path / "out")
    recs = json.loads(js.read_text())["explanations"]
    assert [r["files"]["combined"] for r in recs] == [
        ["toy_combined_a.npy", "toy_combined_b.npy"], ["toy-2_combined_a.npy", None]]
    assert "combined_maps" not in recs[0] and recs[0]["n_backward"] == 4 and recs[0]["decision"] == "match"
    m = np.load(tmp_path / "out" / map_filename("toy", "dissimilarity", 1))
    assert m.dtype == np.float32 and m.shape == (S, S)
    np.testing.assert_array_equal(m, exps[0].dissimilarity_maps[1])
    assert not (tmp_path / "out" / "toy-2_combined_b.npy").exists()
