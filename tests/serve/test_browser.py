"""End to end in a real headless Chromium (Playwright, the system's browser, offline): upload two
LFW photos, run xssab, read the verdict from the page, check the maps are drawn."""
from __future__ import annotations

import pytest

from xaiface.serve.browser import browser_missing, launch_chromium

_missing = browser_missing()
pytestmark = pytest.mark.skipif(_missing is not None, reason=f"browser test skipped: {_missing}")


def test_page_uploads_two_photos_and_shows_verdict_and_maps(live_server, genuine_pair, tmp_path):
    from playwright.sync_api import sync_playwright

    from xaiface.pipeline import FacePipeline

    path_a, path_b = genuine_pair
    expected = FacePipeline().verify(path_a, path_b)
    outside: list[str] = []
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(60_000)
            page.on("request", lambda r: None if r.url.startswith((live_server, "data:", "blob:")) else outside.append(r.url))
            page.goto(live_server + "/")
            page.wait_for_selector("body[data-ready='1']")
            page.set_input_files("#file-a", str(path_a))
            page.set_input_files("#file-b", str(path_b))
            assert page.is_checked("#method-xssab")
            page.click("#explain-btn")
            page.wait_for_selector("#verdict:not([hidden])")
            page.wait_for_selector(".method[data-method='xssab'] img.map")
            decision = page.get_attribute("#verdict", "data-decision")
            score = float(page.get_attribute("#verdict", "data-score"))
            text = page.inner_text("#verdict")
            sizes = page.eval_on_selector_all(".method[data-method='xssab'] img",
                                              "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        finally:
            browser.close()
    assert decision == ("match" if expected.match else "no match")
    assert score == pytest.approx(expected.similarity, abs=1e-4)
    assert f"{expected.threshold:.4f}" in text
    assert len(sizes) == 6  # combined and similarity on both crops, combined on both photos
    assert all(done and w >= 100 and h >= 100 for done, w, h in sizes)
    assert outside == []  # the page asked nothing of any other host
    assert (tmp_path / "page.png").stat().st_size > 10_000
