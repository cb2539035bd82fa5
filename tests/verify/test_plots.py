from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from xaiface.errors import ConfigError
from xaiface.verify import plot_det, plot_roc, plot_score_histograms

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pairs(seed: int, separation: float, n: int = 600):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return rng.normal(separation * y, 0.2), y


def _assert_png(path, min_width: int = 300):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width >= min_width and im.height >= 200
        # more than a blank canvas: many distinct colours
        assert len(np.unique(np.asarray(im.convert("L")))) > 10


@pytest.mark.parametrize("plot", [plot_roc, plot_det, plot_score_histograms])
def test_single_curve_writes_png(tmp_path, plot):
    s, y = _pairs(0, 0.5)
    out = plot(s, y, tmp_path / "sub" / "figure.png", label="model")
    assert out == tmp_path / "sub" / "figure.png"
    _assert_png(out)


@pytest.mark.parametrize("plot", [plot_roc, plot_det, plot_score_histograms])
def test_several_curves_write_png(tmp_path, plot):
    curves = {"strong": _pairs(1, 0.8), "weak": _pairs(2, 0.3)}
    _assert_png(plot(curves, None, tmp_path / "compare.png"))


@pytest.mark.parametrize("plot", [plot_roc, plot_det, plot_score_histograms])
def test_curves_with_path_second(tmp_path, plot):
    out = plot({"a": _pairs(6, 0.5)}, tmp_path / "short.png")
    assert out == tmp_path / "short.png"
    _assert_png(out)


def test_histograms_with_given_thresholds(tmp_path):
    s, y = _pairs(3, 0.5)
    out = plot_score_histograms(s, y, str(tmp_path / "h.png"), thresholds={"eer": 0.25, "fmr=1e-3": 0.6})
    _assert_png(out)


def test_histogram_panel_per_curve_is_taller(tmp_path):
    one = plot_score_histograms(*_pairs(4, 0.5), tmp_path / "one.png")
    two = plot_score_histograms({"a": _pairs(4, 0.5), "b": _pairs(5, 0.5)}, None, tmp_path / "two.png")
    with Image.open(one) as a, Image.open(two) as b:
        assert b.height > 1.5 * a.height


@pytest.mark.parametrize(
    "scores, labels, message",
    [
        ({"a": ([0.1, 0.9], [0, 1])}, [0, 1], "labels=None"),
        ({}, None, "empty"),
        ({"a": ([0.1, 0.9],)}, None, "pair"),
        ([0.1, 0.9], None, "labels are missing"),
        ([0.1, float("nan")], [0, 1], "NaN"),
        ({"a": ([0.1, 0.9], [0, 1])}, None, "no output path"),
    ],
)
def test_bad_input(tmp_path, scores, labels, message):
    with pytest.raises(ConfigError, match=message):
        plot_roc(scores, labels, None if message == "no output path" else tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
