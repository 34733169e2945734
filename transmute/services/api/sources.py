"""Read a create request, JSON with a URL or multipart with a file, into a validated source and parameters."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import shutil
import tempfile
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import anyio
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

from transmute.core.errors import InvalidParameter, MediaError, SourceError
from transmute.core.models import MediaInfo
from transmute.core.options import FormatOptions
from transmute.core.params import parse_params
from transmute.fetch import check_url
from transmute.media.probe import probe
from transmute.services.api.errors import ApiError
from transmute.services.api.webhooks import WEBHOOK_FIELDS, read_webhook_events, refuse_without_secret
from transmute.settings import LimitsConfig, WebhookConfig
from transmute.storage.base import ObjectStorage

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

    params: FormatOptions
    source_type: str
    original_filename: str = ""
    file_size: int | None = None
    source_key: str | None = None
    source_url: str | None = None
    source_sha256: str | None = None
    """The uploaded file's SHA-256 (hex), hashed as it was copied: part of the request's fingerprint."""
    source_media: MediaInfo | None = None
    """The upload as probed here, sent to the worker with the task's first run."""
    webhook_url: str | None = None
    webhook_events: tuple[str, ...] = ()


JSON_MAX_DEPTH = 8
"""Levels of arrays and objects a JSON body may nest (the API's bodies need two)."""


def _json_value_type(depth: int) -> Any:
    """A JSON value nesting at most `depth` arrays or objects, as a msgspec type."""
    scalar = str | int | float | bool | None
    value: Any = scalar
    for _ in range(depth):
        value = scalar | list[value] | dict[str, value]
    return value


# Decoding against a bounded type refuses a deep body at level JSON_MAX_DEPTH + 1, as it reads it: msgspec
# never recurses further (decoding into Any raises RecursionError near 1000 levels), and nothing after the
# decoder (validation, an error message quoting the value) ever walks a deep value.
_JSON_DECODER = msgspec.json.Decoder(_json_value_type(JSON_MAX_DEPTH))


async def read_json_body(request: Request, max_bytes: int, *, example: str) -> Any:
    """The request's JSON body, decoded; None when it is empty.

    The body is read as it arrives and refused (413) as soon as it passes `max_bytes`, or at once when its
    Content-Length says it will: a JSON body is never held whole up to the upload limit. Malformed JSON and
    JSON nested deeper than JSON_MAX_DEPTH are a 400 saying so (`example` shows what to send).
    """
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise _json_too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _json_too_large(max_bytes)
    if not body.strip():
        return None
    try:
        return _JSON_DECODER.decode(body)
    except msgspec.ValidationError as exc:
        if "got `array`" in str(exc) or "got `object`" in str(exc):
            raise ApiError(HTTP_400_BAD_REQUEST, f"The JSON body nests arrays or objects more than {JSON_MAX_DEPTH} "
                           f"levels deep; send a flat object like {example}.") from None
        raise ApiError(HTTP_400_BAD_REQUEST, f"The request body is not valid JSON: {exc}.") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # invalid UTF-8 too
        raise ApiError(HTTP_400_BAD_REQUEST, f"The request body is not valid JSON: {exc}.") from None


def _json_too_large(max_bytes: int) -> ApiError:
    return ApiError(HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"The JSON body is larger than the {max_bytes / 1024:g} KB "
                    "limit (TRANSMUTE_MAX_JSON_KB).")


def _checked_params(values: dict[str, Any], *, from_text: bool) -> FormatOptions:
    """The chosen format's options, validated here once (an unknown format or option is a 400 now, not a
    failed task later)."""
    return parse_params(values, from_text=from_text)


def _safe_filename(name: str) -> str:
    """The last path component of a client's file name, printable, at most 255 characters."""
    base = os.path.basename(name.replace("\\", "/")).strip()
    cleaned = "".join(ch for ch in base if ch.isprintable())
    return cleaned[:255]


async def read_new_task(request: Request, storage: ObjectStorage, *, limits: LimitsConfig,
                        allow_private: bool = False, webhooks: WebhookConfig | None = None) -> NewTask:
    """The source and parameters of a create request; ApiError or InvalidParameter when they are wrong.

    An upload is spooled to a temporary file as it arrives (Litestar's multipart parser keeps at most
    1 MB of it in memory), probed (a 400 when it is not a video transmute can read, with the message
    `transmute convert` gives), then copied to storage in chunks; past `limits.max_upload_bytes` it is a
    413. A URL's host must resolve within `limits.resolve_timeout` seconds. A JSON body has its own, much
    smaller limit, `limits.max_json_bytes` (see read_json_body). `allow_private` is TRANSMUTE_ALLOW_PRIVATE_URLS.
    A `webhook_url` is checked by the same rules as a source URL, and needs `webhooks.secret`.
    """
    content_type, _ = request.content_type
    webhooks = webhooks or WebhookConfig()
    if content_type == "application/json":
        return await _read_json(request, limits, allow_private, webhooks)
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return await _read_form(request, storage, limits, allow_private, webhooks)
    raise ApiError(
        HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        "Send multipart/form-data with a 'file' field, or application/json with a 'url' field; "
        f"got Content-Type {content_type or 'none'!r}.",
    )


async def _read_json(request: Request, limits: LimitsConfig, allow_private: bool,
                     webhooks: WebhookConfig) -> NewTask:
    data = await read_json_body(request, limits.max_json_bytes, example='{"url": "https://...", "width": 320}')
    if not isinstance(data, dict):
        raise ApiError(HTTP_400_BAD_REQUEST, "The JSON body must be an object with a 'url' field.")
    if "file" in data:
        raise InvalidParameter("file", "'file' cannot be sent in JSON; upload it as multipart/form-data.")
    url = data.pop("url", None)
    if url is None:
        raise InvalidParameter("url", "'url' is required in a JSON request (or upload a 'file' as multipart).")
    hook = {name: data.pop(name) for name in WEBHOOK_FIELDS if name in data}
    params = _checked_params(data, from_text=False)
    url = await _checked_url(url, limits.resolve_timeout, allow_private)
    return await _with_webhook(
        NewTask(params=params, source_type="url", source_url=url, original_filename=_url_filename(url)),
        hook, limits, allow_private, webhooks)


async def _with_webhook(task: NewTask, hook: dict[str, Any], limits: LimitsConfig, allow_private: bool,
                        webhooks: WebhookConfig) -> NewTask:
    """The task with its webhook, checked: the URL by the rules of a source URL, the events known ones."""
    url = hook.get("webhook_url")
    if url is None or url == "":
        if hook.get("webhook_events") not in (None, ""):
            raise InvalidParameter("webhook_events", "'webhook_events' needs a 'webhook_url' to deliver them to.")
        return task
    raw_events = hook.get("webhook_events")
    events = read_webhook_events(None if raw_events in (None, "") else raw_events)  # an empty form field: the default
    refuse_without_secret(webhooks)
    task.webhook_url = await _checked_url(url, limits.resolve_timeout, allow_private, field="webhook_url")
    task.webhook_events = events
    return task


async def _checked_url(url: object, resolve_timeout: float, allow_private: bool, *, field: str = "url") -> str:
    """The URL if transmute may fetch it; the host is resolved in the resolver's threads (DNS must not block
    the loop), within `resolve_timeout` seconds.

    With TRANSMUTE_ALLOW_PRIVATE_URLS nothing is resolved, so the check runs in the loop (no thread hop).
    """
    name = f"'{field}'"
    try:
        if allow_private:
            return check_url(url, allow_private=True, name=name)
        check_url(url, allow_private=False, resolve=False, name=name)  # a malformed URL is refused without a lookup
        lookup = asyncio.get_running_loop().run_in_executor(
            _resolver, functools.partial(check_url, url, allow_private=False, name=name))
        return await asyncio.wait_for(lookup, resolve_timeout)
    except SourceError as exc:
        raise InvalidParameter(field, exc.message) from None
    except TimeoutError:
        host = urlsplit(str(url).strip()).hostname
        raise InvalidParameter(field, f"The host name {host!r} in {name} did not resolve within "
                                      f"{resolve_timeout:g} seconds; check the name, or try again later.") from None


def _url_filename(url: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    return _safe_filename(path.rsplit("/", 1)[-1]) if "/" in path.split("://", 1)[-1] else ""


async def _read_form(request: Request, storage: ObjectStorage, limits: LimitsConfig,
                     allow_private: bool, webhooks: WebhookConfig) -> NewTask:
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
    except UnicodeDecodeError:
        # A part without a filename is a text field; bytes that are not UTF-8 there are usually a file sent
        # without one.
        raise ApiError(HTTP_400_BAD_REQUEST, "The form data could not be read: a field that is not a file holds "
                       "bytes that are not UTF-8 text; send the video as a file part (with a filename, as "
                       "curl -F \"file=@video.mp4\" does).") from None
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
        hook = {name: fields.pop(name) for name in WEBHOOK_FIELDS if name in fields}
        params = _checked_params(fields, from_text=True)
        if url:
            url = await _checked_url(url, limits.resolve_timeout, allow_private)
            return await _with_webhook(
                NewTask(params=params, source_type="url", source_url=url, original_filename=_url_filename(url)),
                hook, limits, allow_private, webhooks)
        if upload is None:
            raise InvalidParameter("file", "'file' is required: upload the video as a multipart field named 'file'.")
        if not isinstance(upload, UploadFile):
            raise InvalidParameter("file", "'file' must be an uploaded file (curl -F \"file=@video.mp4\").")
        # Checked before the upload is stored: a bad webhook leaves nothing behind.
        checked = await _with_webhook(NewTask(params=params, source_type="file"), hook, limits, allow_private,
                                      webhooks)
        stored = await _store_upload(upload, params, storage, limits)
        stored.webhook_url, stored.webhook_events = checked.webhook_url, checked.webhook_events
        return stored
    finally:
        for value in form.values():
            if isinstance(value, UploadFile):
                await value.close()


async def _store_upload(upload: UploadFile, params: FormatOptions, storage: ObjectStorage,
                        limits: LimitsConfig) -> NewTask:
    handle = upload.file
    size = await anyio.to_thread.run_sync(lambda: handle.seek(0, os.SEEK_END))
    if size == 0:
        raise InvalidParameter("file", "The uploaded file is empty.")
    if size > limits.max_upload_bytes:
        # The body limit leaves room for the other form fields; the file itself gets exactly the limit.
        raise ApiError(HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"The uploaded file is larger than the "
                       f"{limits.max_upload_mb:g} MB limit.")
    folder = await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp(prefix="transmute-upload-"))
    try:
        name = f"upload{_extension(upload.filename or '')}"
        source, digest = await anyio.to_thread.run_sync(_spool_to_file, handle, Path(folder) / name)
        media = await _probe_upload(source, limits)
        key = f"sources/{uuid.uuid4().hex}"
        await anyio.to_thread.run_sync(_put_file, storage, key, source, size, upload.content_type)
    finally:
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(folder, ignore_errors=True))
    return NewTask(
        params=params,
        source_type="file",
        original_filename=_safe_filename(upload.filename or ""),
        file_size=size,
        source_key=key,
        source_sha256=digest,
        source_media=media,
    )


PROBE_TIMEOUT = 10.0
"""Seconds the probe of an upload at create may take; a video's description is read in milliseconds."""
PROBE_CONCURRENCY = 4
"""Probes one gateway process runs at once: more uploads wait for a slot, so probes (threads waiting for
ffprobe) never take the default thread pool that copies uploads and talks to storage."""
_probe_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary())


async def _probe_upload(path: Path, limits: LimitsConfig) -> MediaInfo:
    """The upload's description; a 400 with `transmute convert`'s own message when it is not a video transmute
    can convert.

    The same probe as the worker's and the CLI's (transmute.media.probe: allowed containers only, a
    video stream, within the source limits), bounded in time, run in a thread of its own small pool.
    """
    loop = asyncio.get_running_loop()
    slots = _probe_slots.get(loop)
    if slots is None:
        slots = _probe_slots[loop] = anyio.CapacityLimiter(PROBE_CONCURRENCY)
    try:
        conversion_limits = limits.for_conversion()
        return await anyio.to_thread.run_sync(
            lambda: probe(path, timeout=PROBE_TIMEOUT, limits=conversion_limits), limiter=slots)
    except MediaError as exc:
        raise InvalidParameter("file", exc.message) from None


def _extension(filename: str) -> str:
    """The client's file extension when it is a plain one (`.mp4`): ffprobe weighs it as `transmute convert`
    sees it, so both say the same of the same file."""
    suffix = Path(_safe_filename(filename)).suffix
    return suffix if 1 < len(suffix) <= 9 and suffix[1:].isascii() and suffix[1:].isalnum() else ""


def _spool_to_file(handle: IO[bytes], path: Path) -> tuple[Path, str]:
    """The upload (spooled by the multipart parser, in memory or an unnamed file) as a file ffprobe can open,
    and its SHA-256, hashed in the same pass."""
    handle.seek(0)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            out.write(chunk)
    return path, digest.hexdigest()


def _put_file(storage: ObjectStorage, key: str, path: Path, size: int, content_type: str | None) -> None:
    with path.open("rb") as handle:
        storage.put_fileobj(key, handle, size, content_type)
