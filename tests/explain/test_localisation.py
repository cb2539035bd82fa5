"""Planted evidence on real LFW faces: a block of another identity pasted into one face of a genuine pair.

The issue asks corrrise and xface2 to find it (dissimilarity mean higher inside the block) on at
least 9 of 10 pairs. Of the white-box methods at <= 10 forward-equivalents, hirescam and ig found
it on 10/10 in benchmarks/block_localisation.py (same pairs, same seed) and are held to 9/10
here; gradcam (8/10), fggb (4/10) and simcam (0/10: dlib's last maps are 2 x 2) are reported
there, not asserted.
"""
from __future__ import annotations

import pytest

from xaiface.explain import Verifier, get_explainer
from xaiface.explain.sanity import localisation_rate, planted_pairs
from xaiface.pipeline import FacePipeline


@pytest.fixture(scope="module")
def planted(dlib_model, data_root):
    return planted_pairs(FacePipeline(dlib_model, threshold=0.9), n=10, data=data_root, seed=0)


@pytest.fixture(scope="module")
def verifier(dlib_model):
    return Verifier(dlib_model, threshold="eer")


@pytest.mark.parametrize("method", ["corrrise", "xface2", "hirescam", "ig"])
def test_maps_find_the_block(method, planted, verifier):
    hits, n = localisation_rate(get_explainer(method, verifier), planted)
    print(f"\n{method}: dissimilarity higher inside the planted block on {hits}/{n} pairs")
    assert hits >= 9
