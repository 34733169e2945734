"""URL sources: only public http(s) addresses are fetched, in every spelling, through every redirect."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.support.embedded import embedded_client
from tests.support.net import QuietHandler, serving
from transmute.core.errors import SourceError
from transmute.fetch import _redirect_checker, check_url, download, is_public_address

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "0x7f000001",
    "2130706433",
    "0177.0.0.1",
    "0x7f.0.0.1",
    "[::ffff:127.0.0.1]",
    "[::1]",
    "localhost",
    "0.0.0.0",
    "0",
]

PRIVATE_ADDRESSES = [
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # link-local, cloud metadata
    "100.64.0.1",  # CGNAT
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "[fd00::1]",  # IPv6 ULA
    "[fe80::1]",  # IPv6 link-local
    "[::ffff:10.0.0.1]",  # IPv4-mapped private
    "[64:ff9b::7f00:1]",  # NAT64 of loopback
    "[::127.0.0.1]",  # IPv4-compatible loopback
    "[2002:7f00:1::]",  # 6to4 of loopback
]


class CanaryHandler(QuietHandler):
    """Counts every request it sees; a refused URL must leave the count at zero."""

    hits: list[str]
    body = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1000
    redirect_to: str | None = None
    stop: threading.Event

    def do_GET(self) -> None:
        self.hits.append(self.path)
        if self.path.startswith("/trickle"):
            self.trickle(headers_too=self.path == "/trickle-headers")
            return
        if self.path.startswith("/redirect") and self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
            return
        if self.path.startswith("/loop"):
            n = int(self.path.removeprefix("/loop") or 0)
            self.send_response(302)
            self.send_header("Location", f"/loop{n + 1}")
            self.end_headers()
            return
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", str(5 * 1024 * 1024))
            self.end_headers()
            self.wfile.write(b"\x00" * (5 * 1024 * 1024))
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def trickle(self, *, headers_too: bool) -> None:
        """A slow sender: one byte every 0.2 s for 30 s (the headers too, if asked), then the end."""
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 150\r\n\r\n"
        data = (head + b"\x00" * 150) if headers_too else b"\x00" * 150
        if not headers_too:
            self.wfile.write(head)
        try:
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if self.stop.wait(0.2):
                    return
        except OSError:
            return  # the client hung up


@pytest.fixture
def canary() -> Iterator[tuple[str, list[str], type[CanaryHandler]]]:
    hits: list[str] = []
    stop = threading.Event()
    handler = type("Handler", (CanaryHandler,), {"hits": hits, "redirect_to": None, "stop": stop})
    try:
        with serving(handler) as base:
            yield base, hits, handler
    finally:
        stop.set()


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_every_spelling_of_a_loopback_address_is_refused_before_any_request(host, canary):
    base, hits, _ = canary
    port = base.rsplit(":", 1)[1]
    url = f"http://{host}:{port}/clip.mp4"
    with pytest.raises(SourceError, match="private, local or reserved"):
        check_url(url, allow_private=False)
    assert hits == []


@pytest.mark.parametrize("host", PRIVATE_ADDRESSES)
def test_private_link_local_cgnat_multicast_reserved_and_ula_addresses_are_refused(host):
    with pytest.raises(SourceError, match="private, local or reserved"):
        check_url(f"http://{host}/clip.mp4", allow_private=False)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2001:4860:4860::8888"]
)
def test_public_addresses_are_allowed(address):
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url, message",
    [
        ("file:///etc/passwd", "http or https"),
        ("ftp://127.0.0.1/a.mp4", "http or https"),
        ("gopher://127.0.0.1/", "http or https"),
        ("concat:a.mp4|b.mp4", "http or https"),
        ("http:///nohost", "no host"),
        ("", "non-empty"),
        ("http://user:secret@127.0.0.1/a.mp4", "user name or password"),
        ("http://127.0.0.1:99999/a.mp4", "not a valid URL"),
        ("http://" + "a" * 2100 + ".com/", "longer than"),
    ],
)
def test_urls_that_are_not_plain_http_are_refused_with_the_reason(url, message):
    with pytest.raises(SourceError, match=message):
        check_url(url, allow_private=True)


def test_a_loopback_url_is_fetched_when_private_urls_are_allowed(canary, tmp_path: Path):
    base, hits, _ = canary
    size = download(f"{base}/clip.mp4", tmp_path / "source", max_bytes=10_000_000, timeout=10, allow_private=True)
    assert size == len(CanaryHandler.body)
    assert hits == ["/clip.mp4"]


def test_the_download_refuses_a_loopback_address_without_connecting(canary, tmp_path: Path):
    base, hits, _ = canary
    with pytest.raises(SourceError, match="private, local or reserved"):
        download(f"{base}/clip.mp4", tmp_path / "source", max_bytes=10_000_000, timeout=10, allow_private=False)
    assert hits == []


def test_private_urls_stay_refused_unless_the_environment_allows_them(canary, tmp_path, monkeypatch):
    base, hits, _ = canary
    monkeypatch.delenv("TRANSMUTE_ALLOW_PRIVATE_URLS", raising=False)
    with pytest.raises(SourceError):
        download(f"{base}/clip.mp4", tmp_path / "a", max_bytes=10_000_000, timeout=10)
    monkeypatch.setenv("TRANSMUTE_ALLOW_PRIVATE_URLS", "true")
    assert download(f"{base}/clip.mp4", tmp_path / "b", max_bytes=10_000_000, timeout=10) > 0
    assert hits == ["/clip.mp4"]


def test_a_redirect_to_a_non_http_scheme_is_not_followed(canary, tmp_path: Path):
    base, hits, handler = canary
    handler.redirect_to = "file:///etc/passwd"
    with pytest.raises(SourceError, match="must use http or https"):
        download(f"{base}/redirect", tmp_path / "source", max_bytes=10_000_000, timeout=10, allow_private=True)
    assert hits == ["/redirect"]


def test_more_than_five_redirects_fail_with_a_clear_error(canary, tmp_path: Path):
    base, hits, _ = canary
    with pytest.raises(SourceError, match="more than 5 redirects"):
        download(f"{base}/loop0", tmp_path / "source", max_bytes=10_000_000, timeout=10, allow_private=True)
    assert len(hits) == 6


def test_a_source_above_the_size_limit_is_refused(canary, tmp_path: Path):
    base, _, _ = canary
    with pytest.raises(SourceError, match="larger than the 1 MB limit"):
        download(f"{base}/big", tmp_path / "source", max_bytes=1024 * 1024, timeout=10, allow_private=True)


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path):
    with pytest.raises(SourceError, match="could not be reached"):
        download("http://127.0.0.1:9/clip.mp4", tmp_path / "source", max_bytes=1000, timeout=5, allow_private=True)


@pytest.mark.parametrize("path", ["/trickle", "/trickle-headers"])
def test_a_trickling_sender_is_cut_at_the_download_timeout_not_when_it_finishes(canary, tmp_path: Path, path):
    # 150 bytes at one per 0.2 s take 30 s; each byte would restart a read timeout, so only a wall-clock
    # deadline ends the download at 2 s. The bound is far from both: it tells the two apart on any machine.
    base, _, _ = canary
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"longer than 2 seconds \(TRANSMUTE_DOWNLOAD_TIMEOUT\)"):
        download(f"{base}{path}", tmp_path / "source", max_bytes=10_000_000, timeout=2, allow_private=True)
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("target, message", [
    ("http://user:secret@{host}/clip.mp4", "user name or password"),
    ("ftp://{host}/clip.mp4", "http or https"),
    ("http://{host}/" + "a" * 2100, "longer than 2048"),
])
def test_a_redirect_hop_is_held_to_the_rules_of_the_url_a_client_gives(canary, tmp_path: Path, target, message):
    base, hits, handler = canary
    handler.redirect_to = target.format(host=base.removeprefix("http://"))
    with pytest.raises(SourceError, match=f"redirects to an address transmute does not fetch: .*{message}"):
        download(f"{base}/redirect", tmp_path / "source", max_bytes=10_000_000, timeout=10, allow_private=True)
    assert hits == ["/redirect"]


@pytest.mark.parametrize("location", ["http://10.0.0.1/clip.mp4", "http://0x7f000001/clip.mp4", "//[::1]/a.mp4"])
def test_a_redirect_to_a_private_address_is_refused_by_the_address_rules(location):
    # A public server cannot be run in a test: hand the hook the answer such a server would give.
    redirect = requests.Response()
    redirect.status_code, redirect.url = 302, "http://93.184.215.14/clip.mp4"
    redirect.headers["Location"] = location
    with pytest.raises(SourceError, match=r"redirects to an address .*private, local or reserved"):
        _redirect_checker(allow_private=False)(redirect)


@pytest.fixture
def hung_dns(monkeypatch) -> Iterator[str]:
    """A host name whose lookup hangs (a DNS server that never answers) until the test ends."""
    hung, released = "hung-dns.example", threading.Event()
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == hung:
            released.wait(120)
            raise socket.gaierror("no answer")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.delenv("TRANSMUTE_ALLOW_PRIVATE_URLS", raising=False)
    try:
        yield hung
    finally:
        released.set()


def test_a_host_that_does_not_resolve_in_time_is_a_400_naming_it_and_uploads_keep_going(hung_dns, tmp_path, clips):
    with embedded_client(tmp_path / "data", env={"TRANSMUTE_RESOLVE_TIMEOUT": "1"}) as client:
        # More hung lookups than the threads uploads use (anyio's default pool has 40).
        with ThreadPoolExecutor(max_workers=50) as pool:
            answers = list(pool.map(lambda _: client.post("/api/tasks/create/",
                                                          json={"url": f"http://{hung_dns}/clip.mp4"}), range(50)))
            upload = client.post("/api/tasks/create/", files={"file": ("a.mp4", clips["small"].read_bytes())})
        assert upload.status_code == 200, upload.text
        for answer in answers:
            assert answer.status_code == 400
            assert f"The host name '{hung_dns}' in 'url' did not resolve within 1 seconds" in answer.json()["error"]
