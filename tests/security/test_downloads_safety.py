"""What leaves the service is safe: Content-Disposition is well-formed for any name, ZIP entry names are
unique and stay inside the archive, and the batch ZIP streams in constant memory, with zip64 when needed.

No route puts a client's original file name in a header today (results are `task_<id>_result.<ext>`,
archives `transmute_results_<time>_<random>.zip`); content_disposition() is still tested with nasty names
so that it stays safe if one ever does."""

from __future__ import annotations

import email.message
import email.policy
import io
import re
import struct
import tracemalloc
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import anyio
import pytest
from litestar.testing import TestClient

from tests.support.embedded import embedded_client
from tests.support.media import make_clip
from tests.support.tasks import upload, wait_finished
from transmute.services.api.archive import ArchiveEntry, BatchArchive, _unique, needs_zip64
from transmute.services.api.tasks import content_disposition

NASTY_NAMES = [
    'quote".gif',
    "back\\slash.gif",
    "semi;colon.gif",
    "line\r\nSet-Cookie: stolen=1.gif",
    "nul\x00byte.gif",
    "tab\tand\x7fdel.gif",
    "../../etc/passwd",
    "/absolute/path.gif",
    "C:\\Windows\\win.ini",
    "видео с котом.gif",
    "emoji 🎞️.gif",
    "percent%20encoded%2F.gif",
    "filename*=UTF-8''evil.gif",
    "",
    " ",
    "x" * 1000,
]
_HEADER = re.compile(r'^(attachment|inline); filename="([\x20-\x7e]*)"; filename\*=UTF-8\'\'([A-Za-z0-9%._~-]*)$')


@pytest.mark.parametrize("name", NASTY_NAMES, ids=range(len(NASTY_NAMES)))
def test_content_disposition_is_well_formed_for_any_file_name(name: str) -> None:
    header = content_disposition(name)
    header.encode("latin-1")  # a header value must be ISO-8859-1; this one is plain ASCII
    match = _HEADER.match(header)
    assert match, header
    fallback, encoded = match.group(2), match.group(3)
    assert '"' not in fallback and "\\" not in fallback and ";" not in fallback
    assert "\r" not in header and "\n" not in header and "\x00" not in header
    decoded = unquote(encoded, errors="strict")
    for shown in (fallback, decoded):
        assert shown and "/" not in shown and "\\" not in shown
        assert all(ch.isprintable() for ch in shown)
    # A standard parser finds the one name and no parameter smuggled in by the name.
    message = email.message.EmailMessage(policy=email.policy.default)
    message["Content-Disposition"] = header
    assert dict(message["Content-Disposition"].params) == {"filename": fallback}


def test_content_disposition_keeps_a_unicode_name_in_filename_star() -> None:
    header = content_disposition("видео с котом.gif")
    assert header.startswith('attachment; filename="_____ _ _____.gif"; ')
    assert unquote(header.split("filename*=UTF-8''", 1)[1]) == "видео с котом.gif"
    inline = content_disposition("clip.gif", attachment=False)
    assert inline == "inline; filename=\"clip.gif\"; filename*=UTF-8''clip.gif"


@pytest.mark.parametrize("name", NASTY_NAMES, ids=range(len(NASTY_NAMES)))
def test_a_zip_entry_name_never_leaves_the_archive(name: str) -> None:
    entry = _unique(name, set())
    assert entry and "/" not in entry and "\\" not in entry
    assert not entry.startswith(".") and entry not in (".", "..")
    assert entry == entry.strip("/\\") and not re.match(r"^[A-Za-z]:[/\\]", entry)


def test_zip_entry_names_stay_unique_however_often_a_name_repeats() -> None:
    used: set[str] = set()
    names = [_unique(name, used) for name in ["a.gif", "a.gif", "dir/a.gif", "../a.gif", "a.gif", ".a.gif",
                                              "a", "a", "", "..", "."]]
    assert len(set(names)) == len(names), names
    assert names[:5] == ["a.gif", "a_2.gif", "a_3.gif", "a_4.gif", "a_5.gif"]


class _LazyStorage:
    """Object storage whose objects are zeros made chunk by chunk (nothing held, nothing on disk)."""

    def __init__(self, sizes: dict[str, int], chunk: int = 1024 * 1024) -> None:
        self.sizes, self.chunk = sizes, chunk

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        left = self.sizes[key]
        while left > 0:
            part = min(left, self.chunk)
            left -= part
            yield bytes(part)


def _archive(entries: list[tuple[str, int, int]]) -> BatchArchive:
    """entries: (name, declared size, bytes the storage really has)."""
    storage = _LazyStorage({name: real for name, _, real in entries})
    services = SimpleNamespace(storage=storage)
    when = datetime(2024, 1, 1, tzinfo=UTC)
    return BatchArchive(services=services,  # type: ignore[arg-type]
                        entries=[ArchiveEntry(name=name, key=name, size=size, modified_at=when)
                                 for name, size, _ in entries])


def test_zip64_is_chosen_when_a_member_or_an_offset_would_pass_4_gib() -> None:
    assert needs_zip64([2**32 + 1]) is True
    assert needs_zip64([2**31, 2**31]) is True  # the second member starts past 4 GiB
    assert needs_zip64([2**32 - 2 * 2**20]) is False
    assert needs_zip64([10 * 2**20] * 50) is False


def _local_headers(data: bytes) -> list[tuple[int, bytes]]:
    """(version needed, extra field) of every local file header in a ZIP."""
    found, position = [], 0
    while (position := data.find(b"PK\x03\x04", position)) >= 0:
        version, = struct.unpack_from("<H", data, position + 4)
        name_length, extra_length = struct.unpack_from("<HH", data, position + 26)
        start = position + 30 + name_length
        found.append((version, data[start:start + extra_length]))
        position = start
    return found


def test_an_archive_past_4_gib_is_zip64_throughout_and_a_smaller_one_zip32() -> None:
    # The sizes are what storage reported; the format is chosen from them before the first byte.
    big = b"".join(_archive([("big.gif", 2**32 + 10, 4096), ("small.gif", 4096, 4096)]).stream())
    small = b"".join(_archive([("one.gif", 4096, 4096), ("two.gif", 4096, 4096)]).stream())
    for data, version in ((big, 45), (small, 20)):
        headers = _local_headers(data)
        assert [found for found, _ in headers] == [version, version]
        assert all((extra[:2] == b"\x01\x00") is (version == 45) for _, extra in headers)  # zip64 extra field
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert [info.compress_type for info in archive.infolist()] == [zipfile.ZIP_STORED] * 2
            assert all(archive.read(name) == bytes(4096) for name in archive.namelist())


def test_every_member_is_stored_byte_for_byte_not_deflated() -> None:
    """The docs say stored; members were deflated at level 0 (a deflate stream of stored blocks)."""
    data = b"".join(_archive([("a.gif", 3000, 3000), ("b.gif", 0, 0), ("c.gif", 5 * 2**20, 5 * 2**20)]).stream())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_STORED, info
            assert info.compress_size == info.file_size
            assert archive.read(info) == bytes(info.file_size)


def test_a_batch_of_50_results_of_10_mb_streams_in_constant_memory() -> None:
    size = 10 * 1024 * 1024
    archive = _archive([(f"{n}.gif", size, size) for n in range(50)])
    tracemalloc.start()
    try:
        written = sum(len(chunk) for chunk in archive.stream())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written > 50 * size
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.1f} MB while streaming {written / 2**20:.0f} MB"


def test_the_batch_archive_streams_300_mb_in_constant_memory() -> None:
    size = 300 * 1024 * 1024
    archive = _archive([("a.gif", size, size), ("b.gif", 1024, 1024)])
    tracemalloc.start()
    try:
        written = sum(len(chunk) for chunk in archive.stream())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written > size
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.1f} MB while streaming {size / 2**20:.0f} MB"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with embedded_client(tmp_path_factory.mktemp("downloads-data"), threads=1) as client:
        yield client


@pytest.fixture(scope="module")
def done_ids(service: TestClient, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    clip = make_clip(tmp_path_factory.mktemp("downloads") / "clip.mp4", "testsrc2=size=64x48:rate=5:duration=1")
    ids = [upload(service, clip, filename=name, width=32, fps=5)["task_id"]
           for name in ('видео "1"\r\n.mp4', "../../etc/passwd")]
    for task_id in ids:
        assert wait_finished(service, task_id)["status"] == "done"
    return ids


def test_a_download_is_named_after_the_task_never_after_the_uploaded_name(service, done_ids) -> None:
    for task_id in done_ids:
        response = service.get(f"/api/tasks/{task_id}/download/")
        assert response.status_code == 200
        name = f"task_{task_id}_result.gif"
        assert response.headers["content-disposition"] == f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}"
        assert response.headers["content-length"] == str(len(response.content))


def test_the_batch_zip_has_safe_unique_names_and_a_well_formed_header(service, done_ids) -> None:
    response = service.get("/api/tasks/batch-download/?task_ids=" + ",".join(done_ids * 2))
    assert response.status_code == 200
    assert _HEADER.match(response.headers["content-disposition"])
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        assert archive.testzip() is None
    assert names == [f"task_{task_id}_result.gif" for task_id in done_ids]
    for name in names:
        assert "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".")


async def _asgi_get(app, path: str, query: str) -> tuple[int, int]:
    """GET through the app's ASGI interface, counting the body's bytes as they are sent (the TestClient
    would gather the whole body in memory, which is not what a server does)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    status, received, asked = 0, 0, False
    finished = anyio.Event()

    async def receive() -> dict:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()  # the client stays connected until the whole body arrived
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status, received
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                finished.set()

    await app(scope, receive, send)
    return status, received


def test_the_real_app_streams_a_300_mb_batch_zip_in_constant_memory(service, done_ids) -> None:
    storage = service.app.state.services.storage
    task = service.get(f"/api/tasks/{done_ids[0]}/result/").json()
    key = task["result"]["output_url"].removeprefix("/media/")
    path: Path = storage.path_of(key)
    size = 300 * 1024 * 1024
    with path.open("r+b") as handle:
        handle.truncate(size)  # sparse: 300 MB to read, nothing to write
    tracemalloc.start()
    try:
        status, received = service.blocking_portal.call(
            _asgi_get, service.app, "/api/tasks/batch-download/", f"task_ids={done_ids[0]}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 200
    assert received > size
    assert peak < 32 * 1024 * 1024, f"peak {peak / 2**20:.1f} MB while streaming {size / 2**20:.0f} MB"
