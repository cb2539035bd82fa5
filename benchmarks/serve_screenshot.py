"""The README's screenshot of the demo page, taken in the system's headless Chromium (offline).

Starts the demo (uvicorn, 127.0.0.1, a free port, in a thread), opens the page, chooses a sample
LFW pair (fold 1), xssab, soft biometrics and the JPEG factor at quality 10 on the probe,
clicks "Verify and explain", waits for both columns and saves the full page.

    python benchmarks/serve_screenshot.py [--sample 0] [--out docs/results/serve/screenshot.png]
"""
from __future__ import annotations

import argparse
import socket
import threading
import time


def main() -> None:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from xaiface.serve import create_app
    from xaiface.serve.browser import browser_missing, launch_chromium

    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", default="0")
    ap.add_argument("--factor", default="jpeg")
    ap.add_argument("--level", default="10")
    ap.add_argument("--out", default="docs/results/serve/screenshot.png")
    args = ap.parse_args()
    if (why := browser_missing()) is not None:
        raise SystemExit(why)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{port}/")
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
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    from PIL import Image

    with Image.open(args.out) as im:  # a 256-colour palette: a third of the size, no visible change
        im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
