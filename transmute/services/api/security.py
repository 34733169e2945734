"""API keys and rate limits for the gateway, both off unless configured (transmute.settings.SecurityConfig).

- `TRANSMUTE_API_KEYS`: comma-separated keys, or `@/path/to/file` (one key a line). When set, every
  `/api` and `/media` route needs `Authorization: Bearer KEY` or `X-API-Key: KEY`, and a key sees
  only its own tasks (the store keeps a hash of the key as the task's owner, never the key).
  Set but holding no key (`", ,"`, a file of only comments) is a configuration error, never "auth off".
- `TRANSMUTE_RATE_LIMIT`: like `120/minute` (per second, minute or hour), per valid key when keys are
  on, else per client address; a request with a missing or wrong key counts against its client address,
  so guessing keys runs into 429s too. `0` or unset turns it off. Litestar's rate-limit middleware
  counts; its 429 (and only it) gets a `Retry-After` in errors.handle_http_error.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult, DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig, get_remote_address

from transmute.settings import SecurityConfig

_PROTECTED = re.compile(r"^/(api|media)(/|$)")
"""Routes that need a key when keys are on; health, metrics and the OpenAPI schema stay open."""


def is_protected(path: str) -> bool:
    """Whether the route at `path` needs a key when keys are on."""
    return bool(_PROTECTED.match(path))


def owner_id(key: str) -> str:
    """What the task store keeps for a key: a short hash, so a leaked database leaks no key."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    """Checks the key on protected routes; the request's `user` is the key's owner id."""

    def __init__(self, app: Any, keys: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.owners = {key.encode(): owner_id(key) for key in keys}

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        if not is_protected(connection.scope["path"]):
            return AuthenticationResult(user=None, auth=None)
        given = _presented_key(connection)
        if not given:
            raise NotAuthorizedException(
                "An API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
                headers={"WWW-Authenticate": 'Bearer realm="transmute"'},
            )
        owner = None
        for key, candidate in self.owners.items():
            # Compare against every key, so the time taken does not tell which one nearly matched.
            if hmac.compare_digest(key, given.encode()):
                owner = candidate
        if owner is None:
            raise NotAuthorizedException(
                "The API key is not valid.",
                headers={"WWW-Authenticate": 'Bearer realm="transmute", error="invalid_token"'},
            )
        return AuthenticationResult(user=owner, auth=None)


def _presented_key(connection: ASGIConnection) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return connection.headers.get("x-api-key", "").strip()


def rate_limit_identity(keys: tuple[str, ...]) -> Callable[[Any], str]:
    """Whom a request counts against: its key's owner for a valid key, else its client address.

    The limiter runs before the key check (so a wrong or missing key is counted too): it looks the presented
    key up by its hash, which tells nothing about how close a wrong key came.
    """
    owners = frozenset(owner_id(key) for key in keys)

    def identity(request: Any) -> str:
        given = _presented_key(request) if owners else ""
        owner = owner_id(given) if given else ""
        return f"key:{owner}" if owner in owners else f"ip:{get_remote_address(request)}"

    return identity


def security_middleware(config: SecurityConfig) -> list[DefineMiddleware]:
    """The middleware to install, outermost first: the limiter (so requests refused for their key count too),
    then the key check."""
    middleware: list[DefineMiddleware] = []
    if config.rate_limit:
        middleware.append(
            RateLimitConfig(
                rate_limit=config.rate_limit,  # type: ignore[arg-type]
                identifier_for_request=rate_limit_identity(config.api_keys),
                exclude=[r"^/health", r"^/metrics"],
            ).middleware
        )
    if config.api_keys:
        middleware.append(DefineMiddleware(ApiKeyMiddleware, keys=config.api_keys))
    return middleware

