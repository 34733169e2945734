"""Debian's chromium, headless, driven by Playwright for Python (pointed at it: Playwright never downloads a
browser here), and the screenshots kept as test artifacts."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
"""Debian's chromium package (scripts/setup.sh --test installs it)."""
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
"""Headless, and quiet: no update checks, sync or other requests of the browser's own."""
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
"""Where the screenshots go (gitignored)."""
LOCAL_SCHEMES = ("data", "blob", "about")


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """A headless chromium for as long as the block runs."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def watch_outside_requests(page: Page) -> list[str]:
    """The list every request of `page` to a host other than 127.0.0.1 will be added to."""
    outside: list[str] = []

    def check(request) -> None:
        url = urlsplit(request.url)
        if url.scheme not in LOCAL_SCHEMES and url.hostname != "127.0.0.1":
            outside.append(request.url)

    page.on("request", check)
    return outside


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot in test-artifacts/web/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
