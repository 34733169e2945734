"""The catalogue of bad requests: every one gets a 4xx JSON error naming the problem, never a 500, and a
rejected create leaves no task behind. All against the real embedded app (one for the module)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.support.embedded import embedded_client, run_in_app, store_of
from tests.support.media import make_clip

CREATE = "/api/tasks/create/"
BATCH = "/api/tasks/batch-download/"
URL = "http://127.0.0.1:9/video.mp4"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("bad-requests") / "clip.mp4"
    return make_clip(path, "testsrc2=size=64x48:rate=5:duration=1").read_bytes()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with embedded_client(tmp_path_factory.mktemp("bad-requests-data"), threads=1) as test_client:
        yield test_client


def task_count(client: TestClient) -> int:
    return run_in_app(client, store_of(client).list, page=1, per_page=1).total


@dataclass
class Bad:
    """One bad request: how to send it, the status it must get, and words its error must contain."""

    send: Callable[[TestClient, bytes], Any]
    status: int | tuple[int, ...]
    says: tuple[str, ...] = ()
    field: str | None = None
    """The field `details.field` must name, when the error is about one parameter."""


def assert_one_details_shape(body: dict, field: str | None) -> None:
    """`details` has one shape everywhere: {"field": <the parameter>}, present when the error is about one."""
    if field:
        assert body["details"] == {"field": field}, body
    if "details" in body:
        assert set(body["details"]) == {"field"} and isinstance(body["details"]["field"], str), body


def as_json(body: Any) -> Callable[[TestClient, bytes], Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda client, clip: client.post(CREATE, content=raw, headers={"Content-Type": "application/json"})


def form(**fields: str) -> Callable[[TestClient, bytes], Any]:
    return lambda client, clip: client.post(CREATE, files={"file": ("clip.mp4", clip, "video/mp4")}, data=fields)


def raw(body: bytes, content_type: str | None, path: str = CREATE) -> Callable[[TestClient, bytes], Any]:
    headers = {"Content-Type": content_type} if content_type else {}
    return lambda client, clip: client.post(path, content=body, headers=headers)


def get(path: str) -> Callable[[TestClient, bytes], Any]:
    return lambda client, clip: client.get(path)


def url_with(**params: Any) -> Callable[[TestClient, bytes], Any]:
    return as_json({"url": URL, **params})


CREATES: dict[str, Bad] = {
    # wrong types and ranges, JSON
    "width as a string in JSON": Bad(url_with(width="480"), 400, ("'width'", "16 to 4096"), "width"),
    "width as a float in JSON": Bad(url_with(width=480.5), 400, ("'width'",), "width"),
    "width below the range": Bad(url_with(width=15), 400, ("'width'", "16 to 4096"), "width"),
    "width above the range": Bad(url_with(width=4097), 400, ("'width'",), "width"),
    "width of minus zero": Bad(as_json(b'{"url": "%s", "width": -0}' % URL.encode()), 400, ("'width'",), "width"),
    "width past 64 bits": Bad(url_with(width=10**30), 400, ("'width'",), "width"),
    "fps of zero": Bad(url_with(fps=0), 400, ("'fps'", "1 to 50"), "fps"),
    "fps above the range": Bad(url_with(fps=51), 400, ("'fps'",), "fps"),
    "fps as a list": Bad(url_with(fps=[15]), 400, ("'fps'",), "fps"),
    "fps as a boolean": Bad(url_with(fps=True), 400, ("'fps'",), "fps"),
    "negative start_time": Bad(url_with(start_time=-1), 400, ("'start_time'",), "start_time"),
    "start_time of 1e308": Bad(url_with(start_time=1e308), 400, ("'start_time'",), "start_time"),
    "start_time past the largest double": Bad(as_json(b'{"url": "%s", "start_time": 1e309}' % URL.encode()),
                                              400, ("not valid JSON",)),
    "end_time equal to start_time": Bad(url_with(start_time=5, end_time=5), 400, ("'end_time'", "greater"),
                                        "end_time"),
    "end_time before start_time": Bad(url_with(start_time=5, end_time=1), 400, ("'end_time'",), "end_time"),
    "speed of NaN": Bad(as_json(b'{"url": "%s", "speed": NaN}' % URL.encode()), 400, ("not valid JSON",)),
    "speed of Infinity": Bad(as_json(b'{"url": "%s", "speed": Infinity}' % URL.encode()), 400, ("not valid JSON",)),
    "speed below the range": Bad(url_with(speed=0.1), 400, ("'speed'", "0.25 to 4"), "speed"),
    "speed as an object": Bad(url_with(speed={"x": 1}), 400, ("'speed'",), "speed"),
    "quality not in the list": Bad(url_with(quality="ultra"), 400, ("'quality'", "low, medium, high"), "quality"),
    "dither not in the list": Bad(url_with(dither="random"), 400, ("'dither'",), "dither"),
    "grayscale as a string in JSON": Bad(url_with(grayscale="maybe"), 400, ("'grayscale'",), "grayscale"),
    "reverse as the number 2": Bad(url_with(reverse=2), 400, ("'reverse'",), "reverse"),
    "boomerang as null": Bad(url_with(boomerang=None), 400, ("'boomerang'",), "boomerang"),
    "keep_original_size as a list": Bad(url_with(keep_original_size=[]), 400, ("'keep_original_size'",),
                                        "keep_original_size"),
    "high_quality as an object": Bad(url_with(high_quality={}), 400, ("'high_quality'",), "high_quality"),
    "unknown format": Bad(url_with(format="tiff"), 400, ("'format'", "installed formats"), "format"),
    "format as a number": Bad(url_with(format=5), 400, ("'format'",), "format"),
    "format of 60 000 characters": Bad(url_with(format="x" * 60_000), 400, ("'format'",), "format"),
    "unknown parameter": Bad(url_with(colour="red"), 400, ("Unknown parameter 'colour'",), "colour"),
    "url of 60 000 characters": Bad(as_json({"url": URL + "a" * 60_000}), 400, ("'url'", "2048"), "url"),
    "url as a number": Bad(as_json({"url": 5}), 400, ("'url'",), "url"),
    "url missing": Bad(as_json({"width": 480}), 400, ("'url'", "required"), "url"),
    "url with a file scheme": Bad(as_json({"url": "file:///etc/passwd"}), 400, ("'url'", "http or https"), "url"),
    "file in JSON": Bad(as_json({"url": URL, "file": "x"}), 400, ("'file'",), "file"),
    "a parameter nested 1000 levels deep": Bad(as_json(b'{"url": "%s", "width": %s%s}' % (
        URL.encode(), b"[" * 1000, b"]" * 1000)), 400, ("nests arrays or objects more than 8 levels",)),
    "objects nested 5000 levels deep": Bad(as_json(b'{"a": ' * 5000 + b"1" + b"}" * 5000), 400,
                                           ("nests arrays or objects more than 8 levels",)),
    "a 65 KB JSON body": Bad(as_json({"url": URL, "format": "x" * 65 * 1024}), 413,
                             ("64 KB", "TRANSMUTE_MAX_JSON_KB")),
    # the body itself
    "malformed JSON": Bad(as_json(b'{"url": '), 400, ("not valid JSON",)),
    "JSON that is not UTF-8": Bad(as_json(b'{"url": "\xff\xfe"}'), 400, ("not valid JSON",)),
    "a JSON array": Bad(as_json(b"[1, 2]"), 400, ("must be an object",)),
    "a JSON string": Bad(as_json(b'"http://127.0.0.1:9/v.mp4"'), 400, ("must be an object",)),
    "JSON null": Bad(as_json(b"null"), 400, ("must be an object",)),
    "an empty JSON body": Bad(as_json(b""), 400, ("must be an object",)),
    "text/plain": Bad(raw(b"url=http://127.0.0.1:9/v.mp4", "text/plain"), 415, ("multipart/form-data", "text/plain")),
    "application/xml": Bad(raw(b"<task><url>x</url></task>", "application/xml"), 415, ("application/xml",)),
    "no Content-Type": Bad(raw(b"hello", None), 415, ("Content-Type",)),
    "multipart without a boundary": Bad(raw(b"--x\r\n\r\n--x--\r\n", "multipart/form-data"), 400,
                                        ("form data", "boundary")),
    "malformed multipart": Bad(raw(b"this is not multipart", "multipart/form-data; boundary=xyz"), 400,
                               ("form data",)),
    "truncated multipart": Bad(raw(b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
                                   b"abc", "multipart/form-data; boundary=xyz"), 400, ("form data",)),
    # multipart values
    "an empty file": Bad(lambda client, clip: client.post(CREATE, files={"file": ("a.mp4", b"", "video/mp4")}),
                         400, ("empty",), "file"),
    "no file and no url": Bad(lambda client, clip: client.post(CREATE, data={"width": "480"}), 400,
                              ("'file'", "required"), "file"),
    "file and url together": Bad(form(url=URL), 400, ("either 'file' or 'url'",), "file"),
    "file as a plain field": Bad(lambda client, clip: client.post(
        CREATE, content=b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nnot a file\r\n--b--\r\n',
        headers={"Content-Type": "multipart/form-data; boundary=b"}), 400, ("'file'", "uploaded file"), "file"),
    "a file part without a filename, not UTF-8": Bad(lambda client, clip: client.post(
        CREATE, content=b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\n\x89PNG\r\n--b--\r\n',
        headers={"Content-Type": "multipart/form-data; boundary=b"}), 400, ("form data", "UTF-8", "filename")),
    "a parameter sent as a file": Bad(lambda client, clip: client.post(
        CREATE, files={"file": ("a.mp4", clip, "video/mp4"), "width": ("w.txt", b"480", "text/plain")}),
        400, ("'width'", "not a file"), "width"),
    "a parameter sent twice": Bad(lambda client, clip: client.post(
        CREATE, files={"file": ("a.mp4", clip, "video/mp4")}, data={"fps": ["10", "12"]}),
        400, ("'fps'", "2 times"), "fps"),
    "width=abc in a form": Bad(form(width="abc"), 400, ("'width'", "'abc'"), "width"),
    "width=nan in a form": Bad(form(width="nan"), 400, ("'width'",), "width"),
    "fps=1.5 in a form": Bad(form(fps="1.5"), 400, ("'fps'",), "fps"),
    "speed=nan in a form": Bad(form(speed="nan"), 400, ("'speed'",), "speed"),
    "speed=inf in a form": Bad(form(speed="inf"), 400, ("'speed'",), "speed"),
    "speed=-inf in a form": Bad(form(speed="-inf"), 400, ("'speed'",), "speed"),
    "end_time=1e308 in a form": Bad(form(end_time="1e308"), 400, ("'end_time'",), "end_time"),
    "start_time=-1 in a form": Bad(form(start_time="-1"), 400, ("'start_time'",), "start_time"),
    "end_time before start_time in a form": Bad(form(start_time="3", end_time="2"), 400, ("'end_time'",),
                                                "end_time"),
    "grayscale=maybe in a form": Bad(form(grayscale="maybe"), 400, ("'grayscale'", "true/false"), "grayscale"),
    "format=tiff in a form": Bad(form(format="tiff"), 400, ("'format'",), "format"),
    "quality with a NUL in a form": Bad(form(quality="hi\x00gh"), 400, ("'quality'",), "quality"),
    "a huge dither in a form": Bad(form(dither="x" * 200_000), 400, ("'dither'",), "dither"),
}


@pytest.mark.parametrize("case", list(CREATES), ids=list(CREATES))
def test_a_bad_create_request_is_a_clear_4xx_and_creates_no_task(client: TestClient, clip: bytes, case: str) -> None:
    bad = CREATES[case]
    before = task_count(client)
    response = bad.send(client, clip)
    expected = bad.status if isinstance(bad.status, tuple) else (bad.status,)
    assert response.status_code in expected, (case, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False and isinstance(body["error"], str) and body["error"], body
    for words in bad.says:
        assert words in body["error"], (case, body["error"])
    assert_one_details_shape(body, bad.field)
    assert len(body["error"]) < 2000, "the error must not echo a huge value back whole"
    assert task_count(client) == before, f"{case}: a rejected create left a task behind"


ROUTES = [CREATE, "/api/tasks/", "/api/tasks/1/status/", "/api/tasks/1/result/", "/api/tasks/1/download/", BATCH,
          "/api/formats/"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("route", ROUTES)
def test_a_wrong_method_on_a_route_is_a_json_405(client: TestClient, route: str, method: str) -> None:
    response = client.request(method, route)
    assert response.status_code == 405, response.text
    assert response.json() == {"success": False, "error": f"{method} is not allowed on {route}."}


def test_get_on_the_create_route_is_a_json_405(client: TestClient) -> None:
    response = client.get(CREATE)
    assert response.status_code == 405
    assert response.json()["error"] == f"GET is not allowed on {CREATE}."


OTHERS: dict[str, Bad] = {
    # the list's query parameters
    "page=0": Bad(get("/api/tasks/?page=0"), 400, ("'page'",), "page"),
    "page=-1": Bad(get("/api/tasks/?page=-1"), 400, ("'page'",), "page"),
    "page=abc": Bad(get("/api/tasks/?page=abc"), 400, ("'page'",), "page"),
    "page=1.5": Bad(get("/api/tasks/?page=1.5"), 400, ("'page'",), "page"),
    "page past 64 bits": Bad(get("/api/tasks/?page=99999999999999999999999"), 400, ("'page'",), "page"),
    "per_page=0": Bad(get("/api/tasks/?per_page=0"), 400, ("'per_page'",), "per_page"),
    "per_page=abc": Bad(get("/api/tasks/?per_page=abc"), 400, ("'per_page'",), "per_page"),
    "per_page=-5": Bad(get("/api/tasks/?per_page=-5"), 400, ("'per_page'",), "per_page"),
    "status=bogus": Bad(get("/api/tasks/?status=bogus"), 400, ("'status'", "bogus"), "status"),
    "order=bogus": Bad(get("/api/tasks/?order=bogus"), 400, ("'order'", "bogus"), "order"),
    "format of 100 characters": Bad(get("/api/tasks/?format=" + "x" * 100), 400, ("'format'",), "format"),
    # batch ids in a JSON body
    "a batch id that is an object": Bad(raw(b'{"task_ids": [{}]}', "application/json", BATCH), 400,
                                        ("task id",), "task_ids"),
    "a batch id that is a nested list": Bad(raw(b'{"task_ids": [[1, 2]]}', "application/json", BATCH), 400,
                                            ("task id",), "task_ids"),
    "a batch id that is a boolean": Bad(raw(b'{"task_ids": [true]}', "application/json", BATCH), 400,
                                        ("task id",), "task_ids"),
    "a batch id that is null": Bad(raw(b'{"task_ids": [null]}', "application/json", BATCH), 400,
                                   ("task id",), "task_ids"),
    "a batch id that is a float": Bad(raw(b'{"task_ids": [1.5]}', "application/json", BATCH), 400,
                                      ("task id",), "task_ids"),
    "a batch id with a NUL": Bad(raw(b'{"task_ids": ["\\u0000"]}', "application/json", BATCH), 400,
                                 ("not a task id",), "task_ids"),
    "51 batch ids": Bad(raw(json.dumps({"task_ids": list(range(51))}).encode(), "application/json", BATCH), 400,
                        ("At most 50",), "task_ids"),
    "an empty batch": Bad(raw(b'{"task_ids": []}', "application/json", BATCH), 400, ("no task id",), "task_ids"),
    "batch ids as a string": Bad(raw(b'{"task_ids": "1,2"}', "application/json", BATCH), 400, ("list",),
                                 "task_ids"),
    "a batch body that is a list": Bad(raw(b"[1, 2]", "application/json", BATCH), 400, ("task_ids",), "task_ids"),
    "a malformed batch body": Bad(raw(b'{"task_ids": [1,', "application/json", BATCH), 400, ("not valid JSON",)),
    "a batch body that is not UTF-8": Bad(raw(b'{"task_ids": ["\xff"]}', "application/json", BATCH), 400,
                                          ("not valid JSON",)),
    "a batch body in text/plain": Bad(raw(b"1,2,3", "text/plain", BATCH), 415, ("application/json", "text/plain")),
    "a batch body without a Content-Type": Bad(raw(b'{"task_ids": [1]}', None, BATCH), 415, ("application/json",)),
    "batch ids nested 5000 levels deep": Bad(raw(b'{"task_ids": %s%s}' % (b"[" * 5000, b"]" * 5000),
                                                 "application/json", BATCH), 400, ("more than 8 levels",)),
    "a 65 KB batch body": Bad(raw(b'{"task_ids": [1]}' + b" " * 65 * 1024, "application/json", BATCH), 413,
                              ("64 KB", "TRANSMUTE_MAX_JSON_KB")),
    "a batch id that is a word": Bad(raw(b'{"task_ids": [1, "abc"]}', "application/json", BATCH), 400,
                                     ('"abc" is not a task id',), "task_ids"),
    "a batch id that is a path": Bad(raw(b'{"task_ids": ["../../etc"]}', "application/json", BATCH), 400,
                                     ('"../../etc" is not a task id',), "task_ids"),
    "a negative batch id": Bad(raw(b'{"task_ids": [-1]}', "application/json", BATCH), 400,
                               ("-1 is not a task id",), "task_ids"),
    # batch ids in the query
    "no task_ids in the query": Bad(get(BATCH), 400, ("'task_ids'", "required"), "task_ids"),
    "empty task_ids in the query": Bad(get(BATCH + "?task_ids="), 400, ("no task id",), "task_ids"),
    "only commas in task_ids": Bad(get(BATCH + "?task_ids=,,,"), 400, ("no task id",), "task_ids"),
    "51 ids in the query": Bad(get(BATCH + "?task_ids=" + ",".join(map(str, range(51)))), 400, ("At most 50",),
                               "task_ids"),
    "a 5000-character task_ids": Bad(get(BATCH + "?task_ids=" + "1," * 2500), 400, ("'task_ids'",)),
    "a word among the ids in the query": Bad(get(BATCH + "?task_ids=1,nope"), 400, ('"nope" is not a task id',),
                                             "task_ids"),
    "a path among the ids in the query": Bad(get(BATCH + "?task_ids=..%2F..%2Fetc"), 400,
                                             ('"../../etc" is not a task id',), "task_ids"),
    "an unknown id in the query": Bad(get(BATCH + "?task_ids=987654321"), 404,
                                      ("None of the 1", "task 987654321 does not exist")),
    # junk in path ids
    "an id of 5000 characters": Bad(get("/api/tasks/" + "9" * 5000 + "/status/"), 400, ("'task_id'",), "task_id"),
    "an encoded ../../etc/passwd id": Bad(get("/api/tasks/..%2F..%2Fetc%2Fpasswd/status/"), 404, ()),
    "a ../ id": Bad(get("/api/tasks/../../etc/passwd/download/"), 404, ("No such route",)),
    "an encoded .. id": Bad(get("/api/tasks/%2e%2e/result/"), 404, ("No task",)),
    "a unicode id": Bad(get("/api/tasks/%E2%98%83/status/"), 404, ("No task with id '☃'",)),
    "an id with a NUL": Bad(get("/api/tasks/%00/download/"), 404, ("No task",)),
    "an id that is not UTF-8": Bad(get("/api/tasks/%FF/result/"), 404, ("No task",)),
    "an encoded ../ in a media name": Bad(get("/media/results/..%2F..%2Ftransmute.db"), 404, ()),
    "a media name of 5000 characters": Bad(get("/media/results/" + "x" * 5000), (400, 404), ()),
}


@pytest.mark.parametrize("case", list(OTHERS), ids=list(OTHERS))
def test_a_bad_list_batch_or_path_request_is_a_clear_4xx(client: TestClient, clip: bytes, case: str) -> None:
    bad = OTHERS[case]
    response = bad.send(client, clip)
    expected = bad.status if isinstance(bad.status, tuple) else (bad.status,)
    assert response.status_code in expected, (case, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False and body["error"], body
    for words in bad.says:
        assert words in body["error"], (case, body["error"])
    assert_one_details_shape(body, bad.field)
    assert len(body["error"]) < 2000


def test_minus_zero_seconds_is_stored_as_zero(client: TestClient, clip: bytes) -> None:
    response = client.post(CREATE, files={"file": ("clip.mp4", clip, "video/mp4")},
                           data={"start_time": "-0", "width": "32"})
    assert response.status_code == 200, response.text
    status = client.get(response.json()["api_urls"]["status"]).json()
    assert json.dumps(status["metadata"]["conversion_params"]["start_time"]) == "0.0"


def test_the_catalogue_is_at_least_forty_requests() -> None:
    assert len(CREATES) + len(OTHERS) + 3 * len(ROUTES) >= 40

