"""Driving the demo page in a real headless Chromium (Playwright), offline: for the browser test
and the README's screenshot.

The browser is the system's (Debian's ``chromium`` package, ``/usr/bin/chromium``), given to
Playwright as ``executable_path``: nothing is downloaded (``playwright install`` is never run).
The flags keep it offline: no background networking, component updates, sync or first-run
pages, and a host resolver that resolves nothing but 127.0.0.1, so a page that tried to load an
outside resource would fail to, visibly.
"""
from __future__ import annotations

import os
import shutil
from typing import Any

__all__ = ["CHROMIUM", "OFFLINE_ARGS", "browser_missing", "launch_chromium"]

#: the system Chromium (``$XAIFACE_CHROMIUM`` overrides)
CHROMIUM = os.environ.get("XAIFACE_CHROMIUM", "/usr/bin/chromium")

#: Chromium's flags: headless, no sandbox (containers), and offline
OFFLINE_ARGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--disable-extensions", "--metrics-recording-only", "--disable-breakpad",
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
)


def browser_missing() -> str | None:
    """Why the browser cannot be driven here (``None`` when it can): no Playwright package, or no Chromium."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install -c constraints.txt playwright)"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and shutil.which(CHROMIUM) is None:
        return f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver, or set XAIFACE_CHROMIUM)"
    return None


def launch_chromium(playwright: Any) -> Any:
    """A headless, offline Chromium browser from a started ``sync_playwright()``."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(OFFLINE_ARGS))
