"""What the two clients share: the requests they send, how they read the answers, where downloads go."""

from __future__ import annotations

import contextlib
import email.message
import email.utils
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

import httpx
import msgspec

from transmute.client.errors import TransmuteError

T = TypeVar("T")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)

TASKS = "/api/tasks"
RETRIED_STATUSES = frozenset({429, 503})
"""Answers that mean "not now": sent again after their Retry-After."""


def user_agent() -> str:
    try:
        return f"transmute-client/{version('transmute')}"
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "transmute-client"


def headers(api_key: str | None) -> dict[str, str]:
    """The headers of every request: who is asking, and the API key when there is one."""
    sent = {"User-Agent": user_agent(), "Accept": "application/json"}
    if api_key:
        sent["Authorization"] = f"Bearer {api_key}"
    return sent


@dataclass(frozen=True)
class RetryPolicy:
    """How a 503 (or 429) is sent again: after its Retry-After, capped, a limited number of times."""

    max_retries: int = 3
    """Sends after the first; 0 never sends again."""
    max_wait: float = 30.0
    """The longest wait between two sends, whatever Retry-After asks for."""
    default_wait: float = 1.0
    """The wait when the answer gives no (readable) Retry-After."""

    def delay(self, response: httpx.Response, retries_done: int) -> float | None:
        """Seconds to wait before sending the request again, or None to give the answer as it is."""
        if response.status_code not in RETRIED_STATUSES or retries_done >= self.max_retries:
            return None
        return min(self.max_wait, max(0.0, retry_after(response.headers.get("retry-after"), self.default_wait)))


def retry_after(value: str | None, default: float) -> float:
    """Retry-After in seconds: a number of seconds, or an HTTP date (RFC 9110); `default` when absent or unreadable."""
    if not value:
        return default
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return default


class BaseClient(Generic[H]):
    """The options both clients take, handled once: the server, the API key, the retries, the polling pace, and
    the httpx client (`http_client`: yours, whose base URL and headers are set here and whose closing is yours;
    or one of `_http_class` made here with `timeout`, closed with the client)."""

    _http_class: type[H]

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 60.0, max_retries: int = 3,
                 max_retry_wait: float = 30.0, poll_interval: float = 0.5, http_client: H | None = None) -> None:
        self.base_url = httpx.URL(base_url)
        self.retry_policy = RetryPolicy(max_retries=max_retries, max_wait=max_retry_wait)
        self.poll_interval = poll_interval
        self._owned = http_client is None
        self._http: H = http_client or self._http_class(timeout=timeout)
        self._http.base_url = self.base_url
        self._http.headers.update(headers(api_key))


def error_of(response: httpx.Response) -> TransmuteError:
    """The TransmuteError an answer that is not a success stands for (its body must have been read)."""
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        details = {key: value for key, value in body.items() if key not in ("success", "error", "details")}
        if isinstance(body.get("details"), dict):
            details.update(body["details"])
        return TransmuteError(response.status_code, body["error"], details)
    text = " ".join(response.text.split())[:200] or response.reason_phrase
    return TransmuteError(response.status_code, f"{response.request.method} {response.request.url} answered "
                          f"{response.status_code}: {text}")


def decode(response: httpx.Response, type_: type[T]) -> T:
    """The answer's JSON as `type_`; a TransmuteError for an error answer or one that is not the API's JSON."""
    if not response.is_success:
        raise error_of(response)
    try:
        return msgspec.json.decode(response.content, type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise TransmuteError(response.status_code, f"{response.request.url} answered what is not the API's "
                             f"{type_.__name__}: {error}") from None


def unreachable(error: httpx.TransportError, base_url: httpx.URL) -> TransmuteError:
    """The TransmuteError of a request that got no answer (no server there, a timeout...)."""
    reason = str(error) or type(error).__name__
    return TransmuteError(None, f"Could not reach the transmute server at {base_url}: {reason}.")


def list_params(page: int, per_page: int, status: str | None, format: str | None, order: str | None) -> dict:
    """The listing's query: only what is asked for."""
    params: dict[str, Any] = {"page": page, "per_page": per_page}
    for name, value in (("status", status), ("format", format), ("order", order)):
        if value is not None:
            params[name] = value
    return params


def batch_body(task_ids: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    if not task_ids:
        raise ValueError("batch_download needs at least one task id.")
    return {"task_ids": [str(task_id) for task_id in task_ids]}


def attachment_name(response: httpx.Response, fallback: str) -> str:
    """The file name the answer's Content-Disposition gives (RFC 6266, `filename*` first), as a bare name."""
    header = email.message.Message()
    header["content-disposition"] = response.headers.get("content-disposition", "")
    name = Path(header.get_filename() or "").name.strip()
    return name if name not in ("", ".", "..") else fallback


def target_path(destination: str | Path | None, response: httpx.Response, fallback: str) -> Path:
    """Where a download goes: into a folder (the current one for None) under its own name, or to the path given."""
    if destination is None:
        return Path.cwd() / attachment_name(response, fallback)
    path = Path(destination)
    if path.is_dir() or str(destination).endswith(("/", "\\")):
        path.mkdir(parents=True, exist_ok=True)
        return path / attachment_name(response, fallback)
    return path


@contextlib.contextmanager
def written(path: Path) -> Iterator[IO[bytes]]:
    """A file written beside `path` and renamed to it once whole: no half file under the real name."""
    partial = path.with_name(path.name + ".part")
    try:
        with partial.open("wb") as file:
            yield file
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
