"""Read a create request, JSON with a URL or multipart with a file, into a validated source and parameters."""

from __future__ import annotations

import asyncio
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
import msgspec
from litestar import Request
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_415_UNSUPPORTED_MEDIA_TYPE,
)

from transmute.core.errors import InvalidParameter, SourceError
from transmute.core.fetch import check_url, private_urls_allowed
from transmute.core.params import ConversionParams, parse_params
from transmute.core.plugins import get_format
from transmute.core.storage import ObjectStorage
from transmute.services.api.errors import ApiError

SOURCE_FIELDS = ("file", "url")
RESOLVER_THREADS = 8
"""Name lookups of create-time URLs at once; more wait their turn (within the same timeout)."""

# Lookups get their own few threads: a slow or hung DNS server must not take the threads that copy
# uploads and talk to the storage (anyio's default pool). getaddrinfo cannot be interrupted, so a
# lookup past the timeout keeps its thread until the resolver gives up, but the request answers at once.
_resolver = ThreadPoolExecutor(max_workers=RESOLVER_THREADS, thread_name_prefix="transmute-resolve")


@dataclass
class NewTask:
    """A create request, read and checked, its upload already in storage."""

    params: ConversionParams
    source_type: str
    original_filename: str = ""
    file_size: int | None = None
    source_key: str | None = None
    source_url: str | None = None


def _checked_params(values: dict[str, Any], *, from_text: bool) -> ConversionParams:
    params = parse_params(values, from_text=from_text)
    get_format(params.format)  # an unknown format is the client's mistake: say so now, not in the worker
    return params


def _safe_filename(name: str) -> str:
    """The last path component of a client's file name, printable, at most 255 characters."""
    base = os.path.basename(name.replace("\\", "/")).strip()
    cleaned = "".join(ch for ch in base if ch.isprintable())
    return cleaned[:255]


async def read_new_task(request: Request, storage: ObjectStorage, *, max_upload_bytes: int,
                        resolve_timeout: float = 5.0) -> NewTask:
    """The source and parameters of a create request; ApiError or InvalidParameter when they are wrong.

    An upload is spooled to a temporary file as it arrives (Litestar's multipart parser keeps at most
    1 MB of it in memory), then copied to storage in chunks; past `max_upload_bytes` it is a 413.
    A URL's host must resolve within `resolve_timeout` seconds.
    """
    content_type, _ = request.content_type
    if content_type == "application/json":
        return await _read_json(request, resolve_timeout)
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return await _read_form(request, storage, max_upload_bytes, resolve_timeout)
    raise ApiError(
        HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        "Send multipart/form-data with a 'file' field, or application/json with a 'url' field; "
        f"got Content-Type {content_type or 'none'!r}.",
    )


async def _read_json(request: Request, resolve_timeout: float) -> NewTask:
    body = await request.body()
    try:
        data = msgspec.json.decode(body) if body.strip() else None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # invalid UTF-8 too
        raise ApiError(HTTP_400_BAD_REQUEST, f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise ApiError(HTTP_400_BAD_REQUEST, "The JSON body must be an object with a 'url' field.")
    if "file" in data:
        raise InvalidParameter("file", "'file' cannot be sent in JSON; upload it as multipart/form-data.")
    url = data.pop("url", None)
    if url is None:
        raise InvalidParameter("url", "'url' is required in a JSON request (or upload a 'file' as multipart).")
    params = _checked_params(data, from_text=False)
    url = await _checked_url(url, resolve_timeout)
    return NewTask(params=params, source_type="url", source_url=url, original_filename=_url_filename(url))


async def _checked_url(url: object, resolve_timeout: float) -> str:
    """The URL if transmute may fetch it; the host is resolved in the resolver's threads (DNS must not block
    the loop), within `resolve_timeout` seconds.

    With TRANSMUTE_ALLOW_PRIVATE_URLS nothing is resolved, so the check runs in the loop (no thread hop).
    """
    try:
        if private_urls_allowed():
            return check_url(url, allow_private=True)
        check_url(url, resolve=False)  # a malformed URL is refused without a lookup
        lookup = asyncio.get_running_loop().run_in_executor(_resolver, check_url, url)
        return await asyncio.wait_for(lookup, resolve_timeout)
    except SourceError as exc:
        raise InvalidParameter("url", exc.message) from None
    except TimeoutError:
        host = urlsplit(str(url).strip()).hostname
        raise InvalidParameter("url", f"The host name {host!r} in 'url' did not resolve within {resolve_timeout:g} "
                                      "seconds; check the name, or try again later.") from None


def _url_filename(url: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    return _safe_filename(path.rsplit("/", 1)[-1]) if "/" in path.split("://", 1)[-1] else ""


async def _read_form(request: Request, storage: ObjectStorage, max_upload_bytes: int,
                     resolve_timeout: float) -> NewTask:
    try:
        form = await request.form()
    except ClientException as exc:
        if exc.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
            raise  # the body is past the size limit: the 413 handler says which
        if "too large" in str(exc.detail).lower():
            # Litestar's multipart parser says so when there are more parts than it allows.
            raise ApiError(HTTP_400_BAD_REQUEST, "The form has too many fields; send the file and the "
                           "conversion parameters only.") from None
        raise ApiError(HTTP_400_BAD_REQUEST, f"The form data could not be read: {exc.detail}.") from None
    try:
        fields: dict[str, Any] = {}
        for name in form:
            values = form.getall(name)
            if len(values) > 1:
                raise InvalidParameter(name, f"{name!r} was sent {len(values)} times; send it once.")
            fields[name] = values[0]
        upload = fields.pop("file", None)
        url = fields.pop("url", None)
        if upload is not None and url:
            raise InvalidParameter("file", "Send either 'file' or 'url', not both.")
        for name, value in fields.items():
            if isinstance(value, UploadFile):
                raise InvalidParameter(name, f"{name!r} must be a plain form field, not a file.")
        params = _checked_params(fields, from_text=True)
        if url:
            url = await _checked_url(url, resolve_timeout)
            return NewTask(params=params, source_type="url", source_url=url, original_filename=_url_filename(url))
        if upload is None:
            raise InvalidParameter("file", "'file' is required: upload the video as a multipart field named 'file'.")
        if not isinstance(upload, UploadFile):
            raise InvalidParameter("file", "'file' must be an uploaded file (curl -F \"file=@video.mp4\").")
        return await _store_upload(upload, params, storage, max_upload_bytes)
    finally:
        for value in form.values():
            if isinstance(value, UploadFile):
                await value.close()


async def _store_upload(
    upload: UploadFile, params: ConversionParams, storage: ObjectStorage, max_upload_bytes: int
) -> NewTask:
    handle = upload.file
    size = await anyio.to_thread.run_sync(lambda: handle.seek(0, os.SEEK_END))
    if size == 0:
        raise InvalidParameter("file", "The uploaded file is empty.")
    if size > max_upload_bytes:
        # The body limit leaves room for the other form fields; the file itself gets exactly the limit.
        raise ApiError(HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"The uploaded file is larger than the "
                       f"{max_upload_bytes / (1024 * 1024):g} MB limit.")
    await anyio.to_thread.run_sync(handle.seek, 0)
    key = f"sources/{uuid.uuid4().hex}"
    await anyio.to_thread.run_sync(storage.put_fileobj, key, handle, size, upload.content_type)
    return NewTask(
        params=params,
        source_type="file",
        original_filename=_safe_filename(upload.filename or ""),
        file_size=size,
        source_key=key,
    )
