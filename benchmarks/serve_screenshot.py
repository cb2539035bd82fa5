"""The README's screenshot of the demo page, taken in the system's headless Chromium (offline).

Starts the demo (:func:`xaiface.serve.serving`: uvicorn, 127.0.0.1, a free port, a thread), opens the page, chooses a sample
LFW pair (fold 1), xssab, soft biometrics and the JPEG factor at quality 10 on the probe,
clicks "Verify and explain", waits for both columns and saves the full page.

    python benchmarks/serve_screenshot.py [--sample 0] [--out docs/results/serve/screenshot.png]
"""
from __future__ import annotations

import argparse


def main() -> None:
    from playwright.sync_api import sync_playwright

    from xaiface.serve import serving
    from xaiface.serve.browser import browser_missing, launch_chromium

    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", default="0")
    ap.add_argument("--factor", default="jpeg")
    ap.add_argument("--level", default="10")
    ap.add_argument("--out", default="docs/results/serve/screenshot.png")
    args = ap.parse_args()
    if (why := browser_missing()) is not None:
        raise SystemExit(why)
    with serving() as url, sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='1']")
        page.select_option("#sample", args.sample)
        page.check("#soft")
        page.select_option("#factor", args.factor)
        page.fill("#level", args.level)
        page.select_option("#apply", "probe")
        page.click("#explain-btn")
        page.wait_for_selector("body[data-shown='1']")
        page.wait_for_timeout(300)
        page.screenshot(path=args.out, full_page=True)
        print(page.inner_text("#verdict"))
        browser.close()
    from PIL import Image

    with Image.open(args.out) as im:  # a 256-colour palette: a third of the size, no visible change
        im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
