"""Download a URL source to a local file, bounded in size and time."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from transmute.core.errors import SourceError

ALLOWED_SCHEMES = ("http", "https")


def check_url(url: str) -> str:
    """The URL, if transmute may fetch it; SourceError naming the problem otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise SourceError("'url' must be a non-empty http or https URL.")
    url = url.strip()
    if len(url) > 2048:
        raise SourceError("'url' is longer than 2048 characters.")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise SourceError(f"'url' must use http or https; got {parts.scheme or 'no scheme'!r}.")
    if not parts.hostname:
        raise SourceError("'url' has no host name.")
    return url


def download(url: str, target: Path, *, max_bytes: int, timeout: float) -> int:
    """Fetch `url` into `target`; return the size. SourceError on any failure, with the reason."""
    check_url(url)
    deadline = time.monotonic() + timeout
    written = 0
    try:
        with (
            httpx.Client(follow_redirects=True, max_redirects=5, timeout=httpx.Timeout(30, connect=10)) as client,
            client.stream("GET", url, headers={"User-Agent": "transmute"}) as response,
        ):
            if response.status_code >= 400:
                raise SourceError(f"Downloading the source failed: the server answered HTTP {response.status_code}.")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise SourceError(f"The source is larger than the {max_bytes // (1024 * 1024)} MB limit.")
            with target.open("wb") as handle:
                for chunk in response.iter_bytes(1024 * 1024):
                    written += len(chunk)
                    if written > max_bytes:
                        raise SourceError(f"The source is larger than the {max_bytes // (1024 * 1024)} MB limit.")
                    if time.monotonic() > deadline:
                        raise SourceError(f"Downloading the source took longer than {timeout:g} seconds.")
                    handle.write(chunk)
    except httpx.TooManyRedirects:
        raise SourceError("Downloading the source failed: more than 5 redirects.") from None
    except httpx.TimeoutException:
        raise SourceError("Downloading the source timed out.") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"Downloading the source failed: {exc}.") from None
    if written == 0:
        raise SourceError("The source URL returned an empty file.")
    return written
