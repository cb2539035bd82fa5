"""End to end in a real headless Chromium (Playwright, the system's browser, offline): upload two
LFW photos, run xssab, read the verdict from the page, check the maps are drawn."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from xaiface.serve import DemoService
from xaiface.serve.browser import browser_missing, launch_chromium

_missing = browser_missing()
pytestmark = pytest.mark.skipif(_missing is not None, reason=f"browser test skipped: {_missing}")


def _rgb(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def test_page_uploads_two_photos_and_shows_verdict_and_maps(live_server, genuine_pair, tmp_path):
    from playwright.sync_api import sync_playwright

    from xaiface.pipeline import FacePipeline

    path_a, path_b = genuine_pair
    expected = FacePipeline().verify(path_a, path_b)
    outside: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(30_000)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("request", lambda r: None if r.url.startswith((live_server, "data:", "blob:")) else outside.append(r.url))
            page.goto(live_server + "/")
            page.wait_for_selector("body[data-ready='1']")
            page.set_input_files("#file-a", str(path_a))
            page.set_input_files("#file-b", str(path_b))
            assert page.is_checked("#method-xssab")
            page.click("#explain-btn")
            page.wait_for_selector("#verdict:not([hidden])")
            assert not errors, errors
            page.wait_for_selector("body[data-shown='1'] .method[data-method='xssab'] canvas.map")
            decision = page.get_attribute("#verdict", "data-decision")
            score = float(page.get_attribute("#verdict", "data-score"))
            text = page.inner_text("#verdict")
            # each map canvas: its size and how many of its pixels the map colours; the colours of its
            # photo-sized canvases are read back to check green and pink are both drawn
            maps = page.eval_on_selector_all(".method[data-method='xssab'] canvas.map",
                                             "els => els.map(e => [e.width, e.height, Number(e.dataset.painted)])")
            drawn = page.eval_on_selector_all(".method[data-method='xssab'] canvas.map",
                                              "els => els.map(e => e.toDataURL('image/png'))")
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        finally:
            browser.close()
    assert decision == ("match" if expected.match else "no match")
    assert score == pytest.approx(expected.similarity, abs=1e-4)
    assert f"{expected.threshold:.4f}" in text
    a_w, a_h = Image.open(path_a).size
    # combined and the evidence map (similarity: a match) on both crops, combined on both photos
    assert [m[:2] for m in maps] == [[150, 150]] * 4 + [[a_w, a_h], list(Image.open(path_b).size)]
    assert all(painted > 1000 for _, _, painted in maps), maps
    # the page paints the maps as the report does: its canvases match the server's own overlays
    # (visualize.crop_overlays / photo_overlays) up to the 8-bit map encoding and the resampling
    server = DemoService().explain(*(DemoService().photo(p.read_bytes(), n) for p, n in ((path_a, "a"), (path_b, "b"))),
                                   ["xssab"], painted=True)["original"]["methods"][0]["images"]
    want = server["combined_crop"] + server["similarity_crop"] + server["combined_photo"]
    for got, ref in zip(drawn, want):
        g, r = _rgb(got).astype(int), _rgb(ref).astype(int)
        assert g.shape == r.shape
        assert np.abs(g - r).mean() < 2.0 and np.percentile(np.abs(g - r), 99) < 12
    assert outside == []  # the page asked nothing of any other host
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_page_verifies_a_photo_against_a_clip(live_server, lfw, tmp_path):
    from playwright.sync_api import sync_playwright

    from xaiface.io import load_image
    from xaiface.video import make_clip

    person = "Alejandro_Toledo"
    clip = make_clip([load_image(lfw.image_path(person, k)) for k in (2, 3)], tmp_path / "clip.mp4", n_frames=10)
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(live_server + "/")
            page.wait_for_selector("body[data-ready='1']")
            page.click("button.tab[data-tab='video']")
            page.set_input_files("#video-ref", str(lfw.image_path(person, 1)))
            page.set_input_files("#video-clip", str(clip))
            page.click("#video-btn")
            page.wait_for_selector("#video-verdict")
            text = page.inner_text("#video-verdict")
            plot = page.eval_on_selector("#video-results img.plot", "e => [e.complete, e.naturalWidth]")
            explained = page.eval_on_selector_all("#video-results .method img", "els => els.length")
        finally:
            browser.close()
    assert text.startswith("match: clip score") and "10/10 frames with a face" in text and "top-3" in text
    assert plot[0] and plot[1] > 500
    assert explained == 6  # the best frame explained: combined and similarity on both crops, combined on both photos
