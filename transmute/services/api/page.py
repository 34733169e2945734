"""The web page at `/`: index.html and its script and style, files of the package's `web/` folder (no build step,
nothing fetched from elsewhere)."""

from __future__ import annotations

from pathlib import Path

from litestar import get
from litestar.response import File
from litestar.static_files import create_static_files_router

WEB = Path(__file__).with_name("web")
"""index.html, app.js and app.css."""


@get("/", include_in_schema=False, sync_to_thread=False)
def page() -> File:
    return File(WEB / "index.html", media_type="text/html", content_disposition_type="inline")


page_assets = create_static_files_router(path="/web", directories=[WEB], include_in_schema=False, name="web")
"""The page's script and style, at /web/app.js and /web/app.css."""
