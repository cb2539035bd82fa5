"""The report says which setting each method ran with (xSSAB with and without the blur)."""
from __future__ import annotations

from xaiface.bench.report import method_note


def test_xssab_variants_are_named_paper_and_reference_code():
    assert method_note("xssab") == "paper: 5x5 Gaussian blur, sigma 5"
    assert method_note("xssab-noblur") == "reference code: no blur"
    # the note follows the parameters the run gave, not the name
    assert method_note("xssab", {"blur": False}) == "reference code: no blur"
    assert method_note("xssab-noblur", {"blur": True, "blur_sigma": 2.5}) == "paper: 5x5 Gaussian blur, sigma 2.5"


def test_random_and_other_methods():
    assert method_note("random", {"seed": 0}) == "uniform random map (seed 0) through the DPR rule"
    assert method_note("random", {"seed": 3, "reference": True}).startswith("reference code: one permutation (seed 3)")
    assert method_note("gradient") == "no blur" and method_note("no-such-method") is None
