"""The gateway's probes: /health/live, and /health/ready naming the dependency that fails."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.embedded import embedded_client
from tests.support.proxy import TcpProxy


def test_the_liveness_route_answers_ok_with_no_checks(app):
    response = app.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {}}


def test_ready_answers_200_when_store_broker_and_storage_all_answer(app):
    response = app.get("/health/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"store": "ok", "broker": "ok", "storage": "ok"}}


def test_ready_answers_503_naming_the_storage_when_its_folder_is_not_writable(app):
    root = app.app.state.services.storage.root
    shutil.rmtree(root)  # (the tests run as root, for whom a chmod would not make a folder unwritable)
    response = app.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["store"] == "ok" and body["checks"]["broker"] == "ok"
    assert body["checks"]["storage"] == f"StorageError: The storage folder {root} is not writable."


def test_ready_answers_503_naming_the_store_when_the_database_port_is_closed(tmp_path: Path, database: str):
    proxy = TcpProxy("127.0.0.1:5432")
    url = database.replace("127.0.0.1:5432", proxy.address)
    with embedded_client(tmp_path / "data", env={"TRANSMUTE_DATABASE_URL": url}) as client:
        assert client.get("/health/ready").status_code == 200
        proxy.cut()  # nothing listens on the database's port any more
        response = client.get("/health/ready")
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["storage"] == "ok" and body["checks"]["broker"] == "ok"
        assert body["checks"]["store"] != "ok"
        assert "refused" in body["checks"]["store"].lower() or "connect" in body["checks"]["store"].lower()
        proxy.restore()
        assert client.get("/health/ready").status_code == 200

