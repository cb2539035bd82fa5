"""The explainer contract of ``explain/base.py``: the sign split done once, the verdict in the
explanation, no per-call state (one explainer, two threads), ``visualize()`` beside ``data()``."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from xaiface.errors import ConfigError
from xaiface.explain import (
    Cost, Explainer, MapResult, PairExplanation, Verifier, as_aligned, get_explainer, list_explainers, split_signed,
)
from xaiface.types import AlignedFace, PairVerdict
from xaiface.verify import pair_similarity

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import RegionMeanModel, embed_np, toy_pair  # noqa: E402

SMALL = {"corrrise": {"n_masks": 40}, "rise": {"n_masks": 40}}


@pytest.fixture(scope="module")
def toy():
    return Verifier(RegionMeanModel(), threshold=0.5)


def _pairs():
    return toy_pair(), toy_pair(a=(120, 30), b=(60, 220))


def test_split_signed_is_the_positive_and_negative_part():
    c = np.array([[-2.0, -0.5, 0.0], [0.25, 3.0, -0.0]], np.float32)
    (s, s_none), (d, d_none) = split_signed((c, None))
    np.testing.assert_array_equal(s, [[0, 0, 0], [0.25, 3.0, 0]])
    np.testing.assert_array_equal(d, [[2.0, 0.5, 0], [0, 0, 0]])
    np.testing.assert_array_equal(s - d, c)
    assert s_none is None and d_none is None


@pytest.mark.parametrize("name", ["gradient", "random", "corrrise", "rise", "xface1", "xface2", "xface3"])
def test_similarity_and_dissimilarity_are_the_two_signs_of_combined(toy, name):
    e = get_explainer(name, toy, **SMALL.get(name, {})).explain(toy_pair())
    for i in (0, 1):
        c = e.combined_maps[i]
        np.testing.assert_array_equal(e.similarity_maps[i], np.maximum(c, 0))
        np.testing.assert_array_equal(e.dissimilarity_maps[i], np.maximum(-c, 0))
        assert e.similarity_maps[i].dtype == np.float32 and e.combined_maps[i].shape == (32, 32)


def test_xssab_keeps_its_own_similarity_and_dissimilarity(toy):
    # G+ and G- are gradients of separate argument sets: both may be > 0 at one pixel
    e = get_explainer("xssab", toy, blur=False).explain(toy_pair(a=(120, 30), b=(60, 220)))
    s, d, c = e.similarity_maps[0], e.dissimilarity_maps[0], e.combined_maps[0]
    np.testing.assert_allclose(s - d, c, atol=1e-6 * np.abs(c).max())
    assert (s >= 0).all() and (d >= 0).all()
    assert not np.array_equal(s, np.maximum(c, 0)) or not np.array_equal(d, np.maximum(-c, 0))


def test_verdict_is_the_pair_similarity_of_the_clean_embeddings(toy):
    a, b = toy_pair()
    ea, eb = embed_np(toy.model, np.stack([a, b]).astype(np.float64))
    for name in ("xssab", "random", "corrrise"):
        e = get_explainer(name, toy, **SMALL.get(name, {})).explain((a, b))
        assert isinstance(e.verdict, PairVerdict)
        # float32 embeddings against the float64 reference: a few float32 ulps of a unit dot product
        assert e.score == pytest.approx(pair_similarity(ea, eb), abs=8 * float(np.finfo(np.float32).eps))
        assert e.threshold == 0.5 and e.threshold_name == "user" and e.match == (e.score >= 0.5)
        assert e.model == "toy-regions-32" and e.verdict.sources == (None, None)
        d = e.data(include_maps=False)
        assert d["score"] == e.score and d["threshold_name"] == "user" and d["decision"] == "match"


def test_named_threshold_travels_into_the_verdict():
    v = Verifier(RegionMeanModel(), threshold="eer")
    e = get_explainer("random", v).explain(toy_pair())
    assert (e.threshold_name, e.threshold) == ("eer", 0.5)


def test_one_explainer_two_threads_equals_sequential(toy):
    pairs = _pairs()
    for name in ("xssab", "corrrise", "xface2"):
        ex = get_explainer(name, toy, **SMALL.get(name, {}))
        want = [ex.explain(p) for p in pairs]
        got: list[PairExplanation | None] = [None, None]
        start = threading.Barrier(2)

        def work(k: int) -> None:
            start.wait()
            for _ in range(3):  # overlap several calls
                got[k] = ex.explain(pairs[k])

        threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for w, g in zip(want, got):
            assert g is not None
            for kind in ("similarity", "dissimilarity", "combined"):
                for mw, mg in zip(w.maps(kind), g.maps(kind)):
                    np.testing.assert_array_equal(mg, mw)
            assert (g.score, g.n_forward, g.n_backward, g.extra) == (w.score, w.n_forward, w.n_backward, w.extra)
        assert want[0].score != want[1].score  # two different pairs


class _Constant(Explainer):
    """A plug-in on the contract: a constant signed map, the verdict from the clean embeddings."""

    name = "constant"

    def _explain(self, xa, xb, which, cost: Cost) -> MapResult:
        with torch.inference_mode():
            e = self._embed(torch.cat([xa, xb]), cost)
        m = np.linspace(-1, 1, xa.shape[-1] ** 2, dtype=np.float32).reshape(xa.shape[-2:])
        return MapResult((m, -m), embeddings=(e[0], e[1]), extra={"k": 1})


def test_a_new_method_needs_only_combined_maps(toy):
    e = _Constant(toy).explain(toy_pair(), images=(1,))
    assert e.combined_maps[0] is None and e.similarity_maps[0] is None and e.dissimilarity_maps[0] is None
    np.testing.assert_array_equal(e.similarity_maps[1], np.maximum(e.combined_maps[1], 0))
    np.testing.assert_array_equal(e.dissimilarity_maps[1], np.maximum(-e.combined_maps[1], 0))
    assert (e.n_forward, e.n_backward, e.extra) == (2, 0, {"k": 1})


def test_a_method_must_give_embeddings_or_a_verdict(toy):
    class Broken(_Constant):
        def _explain(self, xa, xb, which, cost):
            return MapResult((None, None))

    with pytest.raises(ConfigError, match="embeddings or a verdict"):
        Broken(toy).explain(toy_pair())


def test_as_aligned_and_from_crop():
    crop = toy_pair()[0]
    f = as_aligned(crop)
    assert isinstance(f, AlignedFace) and f.geometry == "crop-32" and f.photo_shape == (32, 32)
    np.testing.assert_array_equal(f.matrix, [[1, 0, 0], [0, 1, 0]])
    assert as_aligned(f) is f


def test_visualize_returns_the_figure_of_pair_figure(toy, tmp_path):
    from matplotlib.figure import Figure

    from xaiface.explain.visualize import pair_figure

    e = get_explainer("random", toy).explain(toy_pair())
    fig = e.visualize()
    assert isinstance(fig, Figure) and len(fig.subfigs) == 2  # one method row + the colour bar
    fig.savefig(tmp_path / "v.png", format="png", dpi=120)
    pair_figure(e, tmp_path / "p.png")
    assert (tmp_path / "v.png").read_bytes() == (tmp_path / "p.png").read_bytes()


def test_libf_ebm_is_a_registered_plug_in():
    assert "libf-ebm" in list_explainers()
    import xaiface.explain.base as base

    assert "xaiface.libf.explainer" in base._BUILTIN_MODULES
