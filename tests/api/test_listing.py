"""GET /api/tasks/: pagination, the status and format filters, and the six orders, over many tasks.

The tasks are written straight into the store of an app of this module's own (never sent to a worker),
so their number, statuses and times are known exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from litestar.testing import TestClient

from tests.support.embedded import embedded_client, run_in_app, store_of
from transmute.core.models import TaskEvent, TaskResult, next_seq, utcnow

TOTAL = 45
LIFE_ORDER = {"queued": 0, "running": 1, "done": 2, "failed": 3}
SUMMARY_FIELDS = {
    "task_id", "status", "progress", "created_at", "updated_at", "started_at", "completed_at", "expires_at",
    "error_message", "target_format", "original_filename", "file_size", "duration_seconds", "api_urls",
}


@dataclass(frozen=True)
class Known:
    id: int
    status: str
    format: str
    updated_at: datetime


@pytest.fixture(scope="module")
def listing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, list[Known]]]:
    with embedded_client(tmp_path_factory.mktemp("listing-data"), threads=1) as client:
        store = store_of(client)
        known: list[Known] = []
        base = utcnow() - timedelta(days=1)
        for i in range(TOTAL):
            target_format = "webp" if i % 3 == 0 else "gif"
            task = run_in_app(client, store.create, target_format=target_format, source_type="file",
                              params={"format": target_format}, original_filename=f"clip{i}.mp4", file_size=1000 + i,
                              source_key=f"sources/none-{i}")
            status = ("queued", "running", "done", "failed")[i % 4]
            # Events happen in an order unlike creation's, so the updated_at orders differ from created_at's.
            at = base + timedelta(minutes=(i * 7) % TOTAL)
            if status == "running":
                event = TaskEvent(task_id=task.id, seq=next_seq(), kind="progress", at=at, progress=30)
            elif status == "done":
                event = TaskEvent(task_id=task.id, seq=next_seq(), kind="done", at=at, progress=100, result=TaskResult(
                    key=f"results/task_{task.id}_result.gif", filename=f"task_{task.id}_result.gif", size=10,
                    mime_type="image/gif", format=target_format))
            elif status == "failed":
                event = TaskEvent(task_id=task.id, seq=next_seq(), kind="failed", at=at, error="Not a video.")
            if status != "queued":
                assert run_in_app(client, store.apply_event, event)
            updated = run_in_app(client, store.get, task.id).updated_at
            known.append(Known(id=int(task.id), status=status, format=target_format, updated_at=updated))
        yield client, known


def ids_of(body: dict) -> list[int]:
    return [int(task["task_id"]) for task in body["tasks"]]


def test_the_listing_defaults_to_20_newest_tasks_with_the_spec_pagination(listing) -> None:
    client, known = listing
    response = client.get("/api/tasks/")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["pagination"] == {"page": 1, "per_page": 20, "total": TOTAL, "pages": 3, "has_next": True,
                                  "has_previous": False}
    assert ids_of(body) == sorted((task.id for task in known), reverse=True)[:20]


def test_every_listed_task_has_the_spec_fields(listing) -> None:
    client, known = listing
    body = client.get("/api/tasks", params={"per_page": 100}).json()
    assert len(body["tasks"]) == TOTAL
    by_id = {task.id: task for task in known}
    for task in body["tasks"]:
        assert set(task) == SUMMARY_FIELDS
        expected = by_id[int(task["task_id"])]
        assert task["status"] == expected.status
        assert task["target_format"] == expected.format
        assert type(task["progress"]) is int
        assert task["created_at"].endswith("Z") and task["updated_at"].endswith("Z")
        assert task["original_filename"].startswith("clip")
        assert type(task["file_size"]) is int
        assert task["api_urls"]["download"] == f"/api/tasks/{task['task_id']}/download/"
        if expected.status == "failed":
            assert task["error_message"] == "Not a video."
        if expected.status == "done":
            assert task["progress"] == 100 and task["completed_at"].endswith("Z")


@pytest.mark.parametrize(("page", "per_page", "count", "pages", "has_next", "has_previous"), [
    (1, 20, 20, 3, True, False),
    (2, 20, 20, 3, True, True),
    (3, 20, 5, 3, False, True),
    (4, 20, 0, 3, False, True),
    (1, 45, 45, 1, False, False),
    (1, 44, 44, 2, True, False),
    (2, 44, 1, 2, False, True),
    (9, 5, 5, 9, False, True),
    (1, 1, 1, 45, True, False),
    (1, 100, 45, 1, False, False),
])
def test_a_page_holds_its_share_of_the_tasks_and_says_whether_others_follow_or_precede(
        listing, page: int, per_page: int, count: int, pages: int, has_next: bool, has_previous: bool) -> None:
    client, _ = listing
    body = client.get("/api/tasks/", params={"page": page, "per_page": per_page}).json()
    assert len(body["tasks"]) == count
    assert body["pagination"] == {"page": page, "per_page": per_page, "total": TOTAL, "pages": pages,
                                  "has_next": has_next, "has_previous": has_previous}


def test_pages_together_list_every_task_once(listing) -> None:
    client, known = listing
    seen: list[int] = []
    for page in (1, 2, 3, 4, 5):
        seen += ids_of(client.get("/api/tasks/", params={"page": page, "per_page": 10}).json())
    assert sorted(seen) == sorted(task.id for task in known)


def test_per_page_above_100_is_capped_at_100(listing) -> None:
    client, _ = listing
    body = client.get("/api/tasks/", params={"per_page": 500}).json()
    assert body["pagination"]["per_page"] == 100
    assert len(body["tasks"]) == TOTAL


@pytest.mark.parametrize("status", ["queued", "running", "done", "failed"])
def test_the_status_filter_lists_only_tasks_in_that_status(listing, status: str) -> None:
    client, known = listing
    body = client.get("/api/tasks/", params={"status": status, "per_page": 100}).json()
    expected = sorted((task.id for task in known if task.status == status), reverse=True)
    assert ids_of(body) == expected
    assert body["pagination"]["total"] == len(expected)


def test_the_format_filter_lists_only_tasks_to_that_format(listing) -> None:
    client, known = listing
    for target_format in ("gif", "webp", "GIF"):
        body = client.get("/api/tasks/", params={"format": target_format, "per_page": 100}).json()
        expected = [task.id for task in known if task.format == target_format.lower()]
        assert sorted(ids_of(body)) == sorted(expected)
        assert body["pagination"]["total"] == len(expected)
    assert client.get("/api/tasks/", params={"format": "mp3"}).json()["pagination"]["total"] == 0


def test_filters_combine_and_paginate_together(listing) -> None:
    client, known = listing
    expected = sorted((task.id for task in known if task.status == "done" and task.format == "gif"), reverse=True)
    body = client.get("/api/tasks/?page=1&per_page=3&status=done&format=gif&order=-created_at").json()
    assert ids_of(body) == expected[:3]
    pages = -(-len(expected) // 3)
    assert body["pagination"] == {"page": 1, "per_page": 3, "total": len(expected), "pages": pages,
                                  "has_next": pages > 1, "has_previous": False}


@pytest.mark.parametrize("order", ["created_at", "-created_at", "updated_at", "-updated_at", "status", "-status"])
def test_each_of_the_six_orders_sorts_as_named(listing, order: str) -> None:
    client, known = listing
    keys = {
        "created_at": lambda task: (task.id,),
        "updated_at": lambda task: (task.updated_at, task.id),
        "status": lambda task: (LIFE_ORDER[task.status], task.id),
    }[order.lstrip("-")]
    expected = [task.id for task in sorted(known, key=keys, reverse=order.startswith("-"))]
    assert ids_of(client.get("/api/tasks/", params={"order": order, "per_page": 100}).json()) == expected


def test_an_empty_listing_has_no_tasks_and_no_pages(tmp_path) -> None:
    with embedded_client(tmp_path, threads=1) as client:
        body = client.get("/api/tasks/").json()
    assert body == {"success": True, "tasks": [], "pagination": {
        "page": 1, "per_page": 20, "total": 0, "pages": 0, "has_next": False, "has_previous": False}}


@pytest.mark.parametrize(("query", "field"), [
    ("page=0", "page"), ("page=abc", "page"), ("per_page=0", "per_page"), ("per_page=-5", "per_page"),
    ("status=finished", "status"), ("order=name", "order"), ("order=-progress", "order"),
])
def test_bad_listing_parameters_are_400_errors_naming_the_parameter(listing, query: str, field: str) -> None:
    client, _ = listing
    response = client.get(f"/api/tasks/?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert f"'{field}'" in body["error"]
