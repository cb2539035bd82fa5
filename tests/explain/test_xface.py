"""xFace against a plain transcription of the reference's ``MapGenerator`` on a toy model."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import correlate
from scipy.spatial.distance import cdist
from sklearn.metrics.pairwise import paired_cosine_distances

from xaiface.errors import ConfigError
from xaiface.explain import Verifier, get_explainer
from xaiface.explain.xface import occlusion_origins

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import RegionMeanModel, dilate, embed_np, real_pair, toy_pair  # noqa: E402

SMALL = dict(patch_sizes=(2, 4, 8), stride=2, reference_size=32)  # 225 + 196 + 144 = 565 masks at 32 px


def cv2_gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """``cv2.getGaussianKernel(size, sigma)`` as an outer product."""
    g = np.exp(-((np.arange(size) - (size - 1) / 2) ** 2) / (2 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


def oracle_xface(model, img1, img2, method, patch_sizes, stride, normalise=True):
    """The reference's ``MapGenerator.__call__`` (fill 0, rectangle, sharp), one mask at a time.

    ``normalise=False`` returns the maps before the division by their largest absolute value."""
    emb1, emb2 = embed_np(model, img1[None].astype(np.float64))[0], embed_np(model, img2[None].astype(np.float64))[0]
    orig_dist = 1.0 - float(emb1 @ emb2)
    maps1, maps2 = [], []
    for p in patch_sizes:
        xs = ys = np.arange(0, img1.shape[0] - p, stride)
        masks = []
        for y in ys:
            for x in xs:
                mask = np.ones_like(img1, dtype=np.float64)
                mask[y:y + p + 1, x:x + p + 1] = 0  # cv2.rectangle((x, y), (x + p, y + p)) includes both corners
                masks.append(mask)
        masks = np.asarray(masks)
        embs1, embs2 = embed_np(model, img1 * masks), embed_np(model, img2 * masks)
        if method == 1:
            d = cdist(embs1, embs2, metric="cosine")
            dists1, dists2 = d.mean(1), d.mean(0)
        elif method == 2:
            dists1 = paired_cosine_distances(embs1, np.repeat([emb2], len(embs1), 0))
            dists2 = paired_cosine_distances(embs2, np.repeat([emb1], len(embs2), 0))
        else:
            dists1 = dists2 = paired_cosine_distances(embs1, embs2)
        k = cv2_gaussian_kernel(stride | 1, stride)
        for dists, out in ((dists1, maps1), (dists2, maps2)):
            deviation = (dists - orig_dist) / p**2
            exp_map = np.mean((1.0 - masks[..., 0]) * deviation[:, None, None], axis=0)
            out.append(correlate(exp_map, k, mode="mirror"))  # cv2's BORDER_REFLECT_101
    res = []
    for maps in (maps1, maps2):
        m = np.mean(maps, 0)
        res.append(m / np.abs(m).max() if normalise else m)
    return res


def float32_floor(raw_map, size, patch_sizes, stride, dim):
    """Largest value float32 rounding can give a normalised xFace map where it is exactly 0.

    There every occlusion leaves the embedding unchanged in exact arithmetic, so each deviation
    ``(d_m - d_clean) / p**2`` is rounding alone: the cosine distance of two float32
    embeddings of ``dim`` dimensions (a ``dim``-term dot product of normalised vectors, each
    normalisation a few more roundings) is off by at most ``(dim + 4) eps``, twice that for the
    difference. A pixel is covered by at most ``ceil((p + 1) / stride)**2`` of the ``M`` masks
    of size ``p``; the blur averages (weights sum to 1), the sizes are averaged, and the map is
    divided by its largest absolute value ``max |raw_map|`` (``raw_map`` in float64).
    """
    eps = float(np.finfo(np.float32).eps)
    per_size = []
    for p in patch_sizes:
        m = len(np.arange(0, size - p, stride)) ** 2
        cover = int(np.ceil((p + 1) / stride)) ** 2
        per_size.append(cover / m * 2 * (dim + 4) * eps / p**2)
    return float(np.mean(per_size)) / float(np.abs(raw_map).max())


@pytest.fixture(scope="module")
def toy():
    return Verifier(RegionMeanModel(), threshold=0.5)


@pytest.mark.parametrize("variant", [1, 2, 3])
def test_equals_reference_transcription(toy, variant):
    a, b = toy_pair()
    r = get_explainer(f"xface{variant}", toy, **SMALL).explain((a, b))
    want = oracle_xface(toy.model, a.astype(np.float64), b.astype(np.float64), variant, (2, 4, 8), 2)
    for i in (0, 1):
        np.testing.assert_allclose(r.combined_maps[i], want[i], atol=2e-5)
        np.testing.assert_array_equal(r.similarity_maps[i], np.maximum(r.combined_maps[i], 0))
        np.testing.assert_array_equal(r.dissimilarity_maps[i], np.maximum(-r.combined_maps[i], 0))
        assert np.abs(r.combined_maps[i]).max() == pytest.approx(1.0)
    assert r.n_forward == 2 + 2 * 565


def test_mask_geometry():
    # the reference's 112 px geometry, and its scaling to dlib's 150 px crop
    assert [len(occlusion_origins(112, p, 5)) for p in (7, 14, 28)] == [441, 400, 289]
    assert [len(occlusion_origins(150, p, 7)) for p in (9, 19, 38)] == [441, 361, 256]
    o = occlusion_origins(112, 28, 5)
    assert o[:2].tolist() == [[0, 0], [0, 5]] and o.max() == 80  # rows outer, last origin < 112 - 28
    v112 = Verifier(RegionMeanModel(112, ((20, 40, 20, 40),)), threshold=0.5)
    p = get_explainer("xface1", v112).params
    assert p["patch_sizes_px"] == (7, 14, 28) and p["stride_px"] == 5 and p["n_masks"] == (441, 400, 289)
    assert p["occluder_px"] == (8, 15, 29) and (p["blur_size"], p["blur_sigma"]) == (5, 5.0)
    v150 = Verifier(RegionMeanModel(150, ((20, 40, 20, 40),)), threshold=0.5)
    p = get_explainer("xface2", v150).params
    assert p["patch_sizes_px"] == (9, 19, 38) and p["stride_px"] == 7 and p["n_masks"] == (441, 361, 256)
    assert (p["blur_size"], p["blur_sigma"]) == (7, 7.0)
    assert get_explainer("xface3", v150, inclusive_corners=False).params["occluder_px"] == (9, 19, 38)


def test_forward_counts_at_112():
    regions = ((20, 40, 20, 40), (70, 90, 70, 90))
    v = Verifier(RegionMeanModel(112, regions), threshold=0.5)
    r = get_explainer("xface2", v, batch_size=256).explain(toy_pair(112, regions), images=(0,))
    assert r.n_forward == 2 + 441 + 400 + 289 and r.combined_maps[1] is None and r.combined_maps[0].shape == (112, 112)


@pytest.mark.parametrize("variant, images, n", [(1, (0,), 1132), (2, (0,), 567), (2, (0, 1), 1132), (3, (1,), 1132)])
def test_forward_counts_per_variant(toy, variant, images, n):
    r = get_explainer(f"xface{variant}", toy, **SMALL).explain(toy_pair(), images=images)
    assert r.n_forward == n  # variants 1 and 3 need the partner's occluded images too
    assert all((m is None) == (i not in images) for i, m in enumerate(r.combined_maps))


def test_first_image_alone_equals_its_map_in_the_pair(toy):
    for variant in (1, 2):
        ex = get_explainer(f"xface{variant}", toy, **SMALL)
        both, one = ex.explain(toy_pair()), ex.explain(toy_pair(), images=(0,))
        np.testing.assert_array_equal(both.combined_maps[0], one.combined_maps[0])


@pytest.mark.parametrize("variant", [2, 3])
def test_maps_follow_the_regions(toy, variant):
    # region 0 is shared (occluding it raises the distance), region 1 is bright in image a only
    r = get_explainer(f"xface{variant}", toy, **SMALL).explain(toy_pair())
    c = r.combined_maps[0]
    m0, m1 = toy.model.region_mask(0), toy.model.region_mask(1)
    assert c[m0].min() > 0.3 and c.max() == pytest.approx(1.0) and m0[np.unravel_index(c.argmax(), c.shape)]
    assert c[m1].max() < -0.2
    # an occluder touching no region changes nothing: 0 beyond the largest occluder (9 px) and the blur (1 px)
    far = ~dilate(m0 | m1, 9 + 1)
    a, b = toy_pair()
    raw = oracle_xface(toy.model, a.astype(np.float64), b.astype(np.float64), variant, (2, 4, 8), 2, normalise=False)[0]
    floor = float32_floor(raw, 32, (2, 4, 8), 2, toy.model.spec.embedding_size)
    assert far.sum() > 50 and np.abs(c[far]).max() <= floor
    assert floor < 1e-4  # the bound is far below the map's own values (region 0 > 0.3)
    if variant == 3:
        np.testing.assert_array_equal(r.combined_maps[0], r.combined_maps[1])


def test_variant1_shared_region_is_the_peak(toy):
    r = get_explainer("xface1", toy, **SMALL).explain(toy_pair())
    for i in (0, 1):
        c = r.combined_maps[i]
        assert toy.model.region_mask(0)[np.unravel_index(c.argmax(), c.shape)]
    assert r.combined_maps[0][toy.model.region_mask(1)].max() < 0


def test_bad_settings(toy):
    with pytest.raises(ConfigError, match="no occluder"):
        get_explainer("xface1", toy, patch_sizes=(40,), reference_size=32)
    with pytest.raises(ConfigError, match="blur_size"):
        get_explainer("xface1", toy, blur_size=4)
    with pytest.raises(ConfigError, match="positive"):
        get_explainer("xface2", toy, stride=0)


def test_real_pair_smoke(dlib_model):
    # one 38 px occluder every 38 px: 9 masks per image on dlib's 150 px chip
    v = Verifier(dlib_model, threshold=0.9)
    r = get_explainer("xface2", v, patch_sizes=(28,), stride=28).explain(real_pair())
    assert r.params["n_masks"] == (9,) and r.n_forward == 2 + 2 * 9
    for i in (0, 1):
        c = r.combined_maps[i]
        assert c.shape == (150, 150) and c.dtype == np.float32 and np.isfinite(c).all()
        assert np.abs(c).max() == pytest.approx(1.0)
    assert r.match == (r.score >= 0.9) and -1 <= r.score <= 1
