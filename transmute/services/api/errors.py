"""One mapping from every exception to the JSON error body `{"success": false, "error": ...}`."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_405_METHOD_NOT_ALLOWED,
    HTTP_409_CONFLICT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from transmute.core.errors import (
    InvalidParameter,
    SourceError,
    StorageError,
    TaskNotFound,
    TaskNotReady,
    TransmuteError,
)
from transmute.core.wire import ErrorDetails, ErrorResponse
from transmute.store import is_database_unavailable, is_store_unreachable

log = logging.getLogger("transmute.api")

STATUS_OF: dict[type[TransmuteError], int] = {
    InvalidParameter: HTTP_400_BAD_REQUEST,
    SourceError: HTTP_400_BAD_REQUEST,
    TaskNotFound: HTTP_404_NOT_FOUND,
    TaskNotReady: HTTP_409_CONFLICT,
    StorageError: HTTP_503_SERVICE_UNAVAILABLE,
}

_FRAMEWORK_MESSAGES = {
    HTTP_404_NOT_FOUND: "No such route: {method} {path}. See /schema for the API.",
    HTTP_405_METHOD_NOT_ALLOWED: "{method} is not allowed on {path}.",
    HTTP_413_REQUEST_ENTITY_TOO_LARGE: "The request body is larger than the {limit} MB limit.",
    HTTP_429_TOO_MANY_REQUESTS: "Too many requests: the limit is {policy}; retry after {retry} s.",
}


MAX_MESSAGE_CHARS = 500
"""An error never echoes a client's huge value back whole (a 100 kB name makes a short error)."""

RETRY_AFTER_SECONDS = 5
"""What a 503 tells the client to wait before trying again (a dependency briefly away)."""


def _short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 3] + "..."


def error_response(status_code: int, message: str, field: str | None = None, headers: dict | None = None) -> Response:
    """The JSON error body every route and handler answers with; `field` names the parameter it is about."""
    message = _short(message)
    body = ErrorResponse(error=message) if field is None else ErrorResponse(error=message, details=ErrorDetails(field))
    return Response(body, status_code=status_code, media_type=MediaType.JSON, headers=headers)


class ApiError(HTTPException):
    """An HTTP error a route raises on purpose, with extra fields for the body."""

    def __init__(self, status_code: int, message: str, *, headers: dict[str, str] | None = None,
                 **fields: Any) -> None:
        super().__init__(detail=message, status_code=status_code, headers=headers)
        self.message = message
        self.fields = fields


def handle_api_error(request: Request, exc: ApiError) -> Response:
    return Response(
        {"success": False, "error": _short(exc.message), **exc.fields},
        status_code=exc.status_code,
        media_type=MediaType.JSON,
        headers=exc.headers,
    )


def handle_transmute_error(request: Request, exc: TransmuteError) -> Response:
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), HTTP_400_BAD_REQUEST)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc.message)
    field = exc.field if isinstance(exc, InvalidParameter) else None
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == HTTP_503_SERVICE_UNAVAILABLE else None
    return error_response(status, exc.message, field, headers=headers)


def handle_validation_error(request: Request, exc: ValidationException) -> Response:
    # Litestar lists every bad parameter; the answer names the first, in the one shape of every error.
    extra = exc.extra if isinstance(exc.extra, list) else None
    message, field = exc.detail or "The request is not valid.", None
    if extra:
        first = extra[0]
        if isinstance(first, dict) and first.get("key"):
            field = str(first["key"])
            source = getattr(first.get("source"), "value", first.get("source")) or "request"
            message = f"Invalid {source} parameter {field!r}: {first.get('message', 'not valid')}."
    return error_response(HTTP_400_BAD_REQUEST, message, field)


EMPTY_SEGMENT = "No such route: {method} {path} has an empty part (a task id left out?). See /schema for the API."
"""The router reads `/api/tasks//status/` as `/api/tasks/status`, a task id with DELETE only: not a 405."""


def handle_http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == HTTP_405_METHOD_NOT_ALLOWED and "//" in request.url.path:
        return error_response(HTTP_404_NOT_FOUND, EMPTY_SEGMENT.format(method=request.method, path=request.url.path))
    template = _FRAMEWORK_MESSAGES.get(exc.status_code)
    headers = exc.headers or {}
    if exc.status_code == HTTP_429_TOO_MANY_REQUESTS:
        # Only the refusal says when to come back: an allowed answer carries the RateLimit-* headers alone.
        headers = {**headers, "Retry-After": str(max(1, int(headers.get("RateLimit-Reset") or 1)))}
    if template:
        limit = request.app.state.get("max_upload_mb", "allowed")
        policy = headers.get("RateLimit-Policy", "").split(";")[0].strip()
        window = headers.get("RateLimit-Policy", "").partition("w=")[2]
        message = template.format(
            method=request.method,
            path=request.url.path,
            limit=f"{limit:g}" if isinstance(limit, float | int) else limit,
            policy=f"{policy} requests per {window} s" if policy and window else "exceeded",
            retry=headers.get("Retry-After", "1"),
        )
    else:
        message = exc.detail if exc.detail and isinstance(exc.detail, str) else "The request could not be served."
    if exc.status_code == HTTP_400_BAD_REQUEST and message.lower().startswith("request entity too large"):
        return handle_http_error(request, HTTPException(status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE))
    return error_response(exc.status_code, message, headers=headers or None)


def handle_not_found(request: Request, exc: NotFoundException) -> Response:
    if exc.detail and exc.detail != "Not Found":
        return error_response(HTTP_404_NOT_FOUND, exc.detail)
    return handle_http_error(request, exc)


def handle_unavailable(request: Request, exc: Exception) -> Response:
    """A dependency that does not answer is a 503 the client may retry, not an internal error."""
    # A bare ConnectionError or TimeoutError comes from opening a connection: in the gateway, in practice,
    # the database pool's (the broker's and the object storage's errors are handled where they happen).
    what = "the task store (database)"
    if not is_database_unavailable(exc):
        what += " or another service"
    log.error("%s %s: cannot reach %s: %s: %s", request.method, request.url.path, what, type(exc).__name__, exc)
    return error_response(
        HTTP_503_SERVICE_UNAVAILABLE,
        f"transmute cannot reach {what} right now ({type(exc).__name__}); try again in a few seconds.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def handle_internal_error(request: Request, exc: Exception) -> Response:
    # The store's driver errors are known only once it is open, so they are told apart here, not by class.
    if is_store_unreachable(exc):
        return handle_unavailable(request, exc)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error; the incident was logged.")


EXCEPTION_HANDLERS = {
    ApiError: handle_api_error,
    TransmuteError: handle_transmute_error,
    ValidationException: handle_validation_error,
    NotFoundException: handle_not_found,
    HTTPException: handle_http_error,
    Exception: handle_internal_error,
}
