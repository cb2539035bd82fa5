"""The random baseline: its default map unchanged, and the reference code's pixel order."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from xaiface.explain import Verifier, get_explainer
from xaiface.explain.random import permutation_map, reference_order, uniform_map

sys.path.insert(0, str(Path(__file__).parent))
from helpers import RegionMeanModel, toy_pair  # noqa: E402


def test_default_map_is_the_seeded_uniform_map():
    v = Verifier(RegionMeanModel(), threshold=0.5)
    e = get_explainer("random", v, seed=4).explain(toy_pair())
    want = (2 * np.random.default_rng(4).random((32, 32)) - 1).astype(np.float32)
    assert np.array_equal(e.combined_maps[0], want) and np.array_equal(uniform_map(32, 4), want)
    assert get_explainer("random", v).params == {"seed": 0}  # what a default run's configuration names


def test_reference_order_is_numpys_legacy_shuffle_without_touching_the_global_state():
    state = np.random.get_state()
    try:
        np.random.seed(3)
        want = np.arange(0, 1024)
        np.random.shuffle(want)
        after_reference = np.random.random()
        np.random.seed(3)
        np.random.shuffle(np.arange(0, 1024))
        got = reference_order(1024, 3)
        assert np.random.random() == after_reference  # the global generator went on undisturbed
    finally:
        np.random.set_state(state)
    assert np.array_equal(got, want)


def test_permutation_map_ranks_the_pixels_in_the_reference_order():
    m = permutation_map(150, 3)
    assert m.dtype == np.float32 and np.unique(m).size == 150 * 150 and np.abs(m).max() < 1
    assert np.array_equal(np.argsort(-m.ravel(), kind="stable"), reference_order(150 * 150, 3))
    v = Verifier(RegionMeanModel(), threshold=0.5)
    ex = get_explainer("random", v, seed=3, reference=True)
    assert ex.params == {"seed": 3, "reference": True}
    assert np.array_equal(ex.explain(toy_pair()).combined_maps[0], permutation_map(32, 3))
