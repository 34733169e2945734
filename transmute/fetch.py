"""Download a URL source safely: http(s) only, public addresses only, bounded in size, time and redirects.

SSRF protection is requests-hardened's (a well-kept library that resolves the host once, refuses
private addresses and connects to the very address it checked, so DNS rebinding cannot slip in; every
redirect goes through the same check). On top of its rules transmute refuses every address that is not
globally routable (CGNAT, reserved, IPv4-compatible and NAT64 IPv6 forms...), in any spelling: `127.1`,
`0x7f000001`, `2130706433`, `0177.0.0.1` and `[::ffff:127.0.0.1]` all resolve to 127.0.0.1 first.
`TRANSMUTE_ALLOW_PRIVATE_URLS=true` lifts the address check, for local use.

Every redirect hop is checked by the same rules as the URL a client gave (scheme, no credentials,
length, address). The whole download ends by a wall-clock deadline: socket timeouts restart with every
byte, so a watchdog shuts the connection down when the deadline passes, however slowly the bytes come.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests_hardened import Config, Manager
from requests_hardened.ip_filter import InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from transmute.core.errors import SourceError
from transmute.settings import FetchConfig

ALLOWED_SCHEMES = ("http", "https")
MAX_REDIRECTS = 5
MAX_URL_LENGTH = 2048
CHUNK_SIZE = 1024 * 1024
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def private_urls_allowed() -> bool:
    """Whether TRANSMUTE_ALLOW_PRIVATE_URLS lifts the address check (read now: for a caller not handed it)."""
    return FetchConfig.from_env().allow_private_urls


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo, NAT64, compatible), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(ip: IPAddress) -> bool:
    """True only for a globally routable unicast address (and the IPv4 address it embeds, if any)."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None and not is_public_address(embedded):
        return False
    if embedded is not None and ip.ipv4_mapped:  # type: ignore[union-attr]
        return True
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_link_local)


def _refusal(host: str, ip: object) -> SourceError:
    shown = host if host == str(ip) else f"{host} ({ip})"
    return SourceError(
        f"The URL points to a private, local or reserved address ({shown}); transmute fetches only public "
        "addresses (set TRANSMUTE_ALLOW_PRIVATE_URLS=true to allow them on a trusted network)."
    )


def check_url(url: object, *, allow_private: bool | None = None, resolve: bool = True, name: str = "'url'") -> str:
    """The URL, stripped, if transmute may fetch it; SourceError saying why not otherwise.

    With `resolve`, the host is looked up and every address it has must be public (unless allowed).
    `name` is what the messages call the URL (a redirect hop is not the client's 'url').
    """
    if not isinstance(url, str) or not url.strip():
        raise SourceError(f"{name} must be a non-empty http or https URL.")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise SourceError(f"{name} is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SourceError(f"{name} is not a valid URL: {exc}.") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise SourceError(f"{name} must use http or https; got {parts.scheme or 'no scheme'!r}.")
    host = parts.hostname
    if not host:
        raise SourceError(f"{name} has no host name.")
    if parts.username or parts.password:
        raise SourceError(f"{name} must not carry a user name or password.")
    allow_private = private_urls_allowed() if allow_private is None else allow_private
    if resolve and not allow_private:
        port = port or (443 if parts.scheme.lower() == "https" else 80)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise SourceError(f"The host name {host!r} in {name} could not be resolved.") from None
        for *_, sockaddr in infos:
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if not is_public_address(ip):
                raise _refusal(host, ip)
    return url


class _Watchdog:
    """Shuts down every connection of one download when its wall-clock deadline passes.

    A read timeout restarts with each byte received, so a sender trickling a byte a second is never cut
    by it; shutting the socket down wakes the blocked read wherever it is (headers, body, TLS handshake).
    """

    def __init__(self, seconds: float) -> None:
        self.expired = threading.Event()
        self._connections: list[object] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def watch(self, connection: object) -> None:
        with self._lock:
            self._connections.append(connection)
        if self.expired.is_set():
            self._shut(connection)

    def _expire(self) -> None:
        self.expired.set()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            self._shut(connection)

    @staticmethod
    def _shut(connection: object) -> None:
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()


def _watched_pool_classes(watchdog: _Watchdog) -> dict[str, type]:
    """urllib3 pool classes that hand every connection they open to `watchdog`."""

    class WatchedHTTPPool(HTTPConnectionPool):
        def _new_conn(self):
            connection = super()._new_conn()
            watchdog.watch(connection)
            return connection

    class WatchedHTTPSPool(HTTPSConnectionPool):
        def _new_conn(self):
            connection = super()._new_conn()
            watchdog.watch(connection)
            return connection

    return {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}


class _Deadline:
    """An adapter mixin: its connections are cut at the download's deadline (`_Watchdog`)."""

    def __init__(self, watchdog: _Watchdog, **kwargs: object) -> None:
        self._watchdog = watchdog
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _watched_pool_classes(self._watchdog)


class _WatchedAdapter(_Deadline, requests.adapters.HTTPAdapter):
    """requests' adapter, with the deadline (private URLs allowed)."""


class _PublicOnlyAdapter(_Deadline, IPFilterAdapter):
    """requests-hardened's adapter, plus transmute's stricter rule on the address it pins and the deadline."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        pinned = ipaddress.ip_address(host_params["host"].strip("[]"))
        if not is_public_address(pinned):
            raise InvalidIPAddress(pinned)
        return host_params, pool_kwargs


def _session(allow_private: bool, watchdog: _Watchdog, connect_timeout: float, read_timeout: float
             ) -> requests.Session:
    config = Config(
        ip_filter_enable=not allow_private,
        ip_filter_allow_loopback_ips=False,
        never_redirect=False,
        default_timeout=(connect_timeout, read_timeout),
        user_agent_override="transmute",
    )
    session = Manager(config).get_session()
    session.max_redirects = MAX_REDIRECTS
    session.trust_env = False  # no proxy from the environment may route around the address check
    for scheme in ("http://", "https://"):
        if allow_private:
            session.mount(scheme, _WatchedAdapter(watchdog))
        else:
            session.mount(scheme, _PublicOnlyAdapter(watchdog, is_https_proto=scheme == "https://"))
    session.hooks["response"].append(_redirect_checker(allow_private))
    return session


def _redirect_checker(allow_private: bool):
    """A response hook refusing a redirect the create-time rules would refuse, before requests follows it."""

    def check_redirect(response: requests.Response, **_: object) -> None:
        if not response.is_redirect:
            return
        target = requests.compat.urljoin(response.url, response.headers.get("location", ""))
        try:
            check_url(target, allow_private=allow_private, name="the redirect target")
        except SourceError as exc:
            raise SourceError(f"The URL redirects to an address transmute does not fetch: {exc.message}") from None

    return check_redirect


def _too_slow(timeout: float) -> SourceError:
    return SourceError(
        f"Downloading the source took longer than {timeout:g} seconds (TRANSMUTE_DOWNLOAD_TIMEOUT); "
        "the server sends too slowly."
    )


def download(
    url: str,
    target: Path,
    *,
    max_bytes: int,
    timeout: float,
    allow_private: bool | None = None,
) -> int:
    """Fetch `url` into `target` within `timeout` seconds all told; return the size. SourceError on any
    failure, with the reason."""
    allow_private = private_urls_allowed() if allow_private is None else allow_private
    url = check_url(url, allow_private=allow_private, resolve=False)
    limit_mb = f"{max_bytes / (1024 * 1024):g}"
    written = 0
    with _Watchdog(timeout) as watchdog:
        try:
            with _session(allow_private, watchdog, min(10.0, timeout), min(30.0, timeout)) as session:
                written = _fetch(session, url, target, max_bytes, limit_mb)
        except InvalidIPAddress as exc:
            raise _refusal(urlsplit(url).hostname or "", exc.args[0] if exc.args else "?") from None
        except requests.TooManyRedirects:
            raise SourceError(f"Downloading the source failed: more than {MAX_REDIRECTS} redirects.") from None
        except (requests.RequestException, OSError) as exc:
            if watchdog.expired.is_set():
                raise _too_slow(timeout) from None
            raise _request_failure(exc) from None
        if watchdog.expired.is_set():
            raise _too_slow(timeout)  # the watchdog cut the body short: the file is incomplete
    if written == 0:
        raise SourceError("The source URL returned an empty file.")
    return written


def _fetch(session: requests.Session, url: str, target: Path, max_bytes: int, limit_mb: str) -> int:
    written = 0
    with session.get(url, stream=True) as response:
        if response.status_code >= 400:
            raise SourceError(f"Downloading the source failed: the server answered HTTP {response.status_code}.")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise SourceError(f"The source is larger than the {limit_mb} MB limit.")
        with target.open("wb") as handle:
            for chunk in response.iter_content(CHUNK_SIZE):
                written += len(chunk)
                if written > max_bytes:
                    raise SourceError(f"The source is larger than the {limit_mb} MB limit.")
                handle.write(chunk)
    return written


class Unreachable(SourceError):
    """A POST's receiver could not be reached, or did not answer in time (worth another try later)."""


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool | None = None
         ) -> int:
    """POST `body` to `url` by the same address rules as a download, and within `timeout` seconds all told; the
    answer's HTTP status (a redirect is not followed: it is the answer). SourceError when the rules refuse the
    address (checked again now: the name may resolve elsewhere than at create), Unreachable on a connection
    error or timeout."""
    allow_private = private_urls_allowed() if allow_private is None else allow_private
    url = check_url(url, allow_private=allow_private, resolve=False)
    with _Watchdog(timeout) as watchdog:
        try:
            with (_session(allow_private, watchdog, timeout, timeout) as session,
                  session.post(url, data=body, headers=headers, allow_redirects=False, stream=True) as response):
                return response.status_code  # the body is not read: a receiver's answer says nothing more
        except InvalidIPAddress as exc:
            raise _refusal(urlsplit(url).hostname or "", exc.args[0] if exc.args else "?") from None
        except (requests.RequestException, OSError) as exc:
            if watchdog.expired.is_set() or isinstance(exc, requests.Timeout):
                raise Unreachable(f"The receiver did not answer within {timeout:g} seconds.") from None
            raise Unreachable(f"The receiver could not be reached: {type(exc).__name__}.") from None


def _request_failure(exc: BaseException) -> SourceError:
    if isinstance(exc, requests.Timeout):
        return SourceError("Downloading the source timed out: the server did not answer in time.")
    if isinstance(exc, requests.ConnectionError):
        return SourceError("Downloading the source failed: the server could not be reached.")
    return SourceError(f"Downloading the source failed: {exc}.")
