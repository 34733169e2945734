"""The web page in a real headless chromium, against `transmute serve` processes on 127.0.0.1. Every test leaves
a screenshot of its page in test-artifacts/web/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.support.browser import chromium, screenshot, watch_outside_requests
from tests.support.media import make_clip
from tests.support.servers import Server, serving


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`transmute serve` without keys and with one worker, for the tests of one module."""
    with serving(tmp_path_factory.mktemp("web-serve")) as started:
        yield started


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page (its own storage); afterwards its screenshot, and a check that it asked nothing of another
    host."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 900})
    context.set_default_timeout(60_000)
    opened = context.new_page()
    outside = watch_outside_requests(opened)
    try:
        yield opened
        screenshot(opened, request.node.name)
    finally:
        context.close()
    assert outside == [], f"the page made requests to other hosts: {outside}"


@pytest.fixture(scope="session")
def slow_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """320x240, 8 s, 30 fps: a conversion of a few seconds, long enough to be seen running."""
    return make_clip(tmp_path_factory.mktemp("web-clips") / "walk.mp4", "testsrc2=size=320x240:rate=30:duration=8")
