"""API keys scope every task route to their owner; the rate limit answers 429 with Retry-After."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from tests.support.embedded import embedded_client
from tests.support.media import make_clip
from tests.support.servers import TRANSMUTE
from tests.support.tasks import wait_finished
from transmute.settings import ConfigError, SecurityConfig, parse_rate

ALICE = "alice-key-0123456789abcdef"
BOB = "bob-key-0123456789abcdef00"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("keys") / "clip.mp4", "testsrc2=size=96x64:rate=5:duration=1")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    keys_file = tmp_path_factory.mktemp("keys-config") / "keys.txt"
    keys_file.write_text(f"# one key a line\n{ALICE}\n\n{BOB}\n")
    with embedded_client(tmp_path_factory.mktemp("keys-data"), env={"TRANSMUTE_API_KEYS": f"@{keys_file}"}) as client:
        yield client


def as_alice(**headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ALICE}", **headers}


def as_bob() -> dict[str, str]:
    return {"X-API-Key": BOB}


def create(client: TestClient, clip: Path, headers: dict[str, str]) -> str:
    with clip.open("rb") as handle:
        response = client.post("/api/tasks/create/", files={"file": ("clip.mp4", handle, "video/mp4")},
                               data={"width": "32", "fps": "5"}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["task_id"]


def finished(client: TestClient, task_id: str, headers: dict[str, str]) -> dict:
    client.headers.update(headers)
    try:
        return wait_finished(client, task_id)
    finally:
        for name in headers:
            client.headers.pop(name, None)


@pytest.mark.parametrize(
    "path", ["/api/tasks/", "/api/tasks/1/status/", "/api/formats/", "/media/results/task_1_result.gif"]
)
def test_every_api_and_media_route_needs_a_key(keyed: TestClient, path: str):
    response = keyed.get(path)
    assert response.status_code == 401
    assert response.json()["success"] is False
    assert "API key is required" in response.json()["error"]
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_wrong_key_is_refused_with_401(keyed: TestClient):
    response = keyed.get("/api/tasks/", headers={"Authorization": "Bearer not-a-real-key-at-all"})
    assert response.status_code == 401
    assert response.json() == {"success": False, "error": "The API key is not valid."}


def test_health_and_the_schema_stay_open_without_a_key(keyed: TestClient):
    assert keyed.get("/health/live").status_code == 200
    assert keyed.get("/schema/openapi.json").status_code == 200


def test_both_header_styles_are_accepted(keyed: TestClient):
    assert keyed.get("/api/tasks/", headers=as_alice()).status_code == 200
    assert keyed.get("/api/tasks/", headers=as_bob()).status_code == 200


def test_a_key_sees_lists_downloads_and_batches_only_its_own_tasks(keyed: TestClient, clip: Path):
    alice_task = create(keyed, clip, as_alice())
    bob_task = create(keyed, clip, as_bob())
    assert finished(keyed, alice_task, as_alice())["status"] == "done"
    assert finished(keyed, bob_task, as_bob())["status"] == "done"

    listed = keyed.get("/api/tasks/", headers=as_alice()).json()
    assert [task["task_id"] for task in listed["tasks"]] == [alice_task]
    assert listed["pagination"]["total"] == 1

    for route in ("status", "result", "download"):
        assert keyed.get(f"/api/tasks/{alice_task}/{route}/", headers=as_alice()).status_code == 200
        response = keyed.get(f"/api/tasks/{bob_task}/{route}/", headers=as_alice())
        assert response.status_code == 404, route
        assert response.json()["success"] is False

    bob_result = keyed.get(f"/api/tasks/{bob_task}/result/", headers=as_bob()).json()["result"]
    assert keyed.get(bob_result["output_url"], headers=as_bob()).status_code == 200
    assert keyed.get(bob_result["output_url"], headers=as_alice()).status_code == 404

    batch = keyed.get(f"/api/tasks/batch-download/?task_ids={alice_task},{bob_task}", headers=as_alice())
    assert batch.status_code == 200
    assert batch.headers["x-total-tasks"] == "2"
    assert batch.headers["x-successful-tasks"] == "1"
    assert zipfile.ZipFile(io.BytesIO(batch.content)).namelist() == [f"task_{alice_task}_result.gif"]


@pytest.mark.parametrize("value, expected", [("120/minute", ("minute", 120)), ("5/second", ("second", 5)),
                                             ("1000 / hours", ("hour", 1000)), ("0", None), ("", None)])
def test_rate_limits_are_read_as_count_per_unit(value: str, expected):
    assert parse_rate(value) == expected


@pytest.mark.parametrize("value", ["fast", "10/day", "ten/minute", "10"])
def test_a_malformed_rate_limit_is_a_clear_configuration_error(value: str):
    with pytest.raises(ConfigError, match="TRANSMUTE_RATE_LIMIT must look like 120/minute"):
        parse_rate(value)


def test_short_api_keys_are_refused(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRANSMUTE_API_KEYS", "short")
    with pytest.raises(ConfigError, match="at least 16 characters"):
        SecurityConfig.from_env()


def test_past_the_rate_limit_the_answer_is_429_json_with_retry_after(tmp_path: Path):
    with embedded_client(tmp_path, env={"TRANSMUTE_RATE_LIMIT": "3/minute"}) as client:
        answers = [client.get("/api/tasks/") for _ in range(4)]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
        refused = answers[-1]
        assert refused.json()["success"] is False
        assert "limit is 3 requests per 60 s" in refused.json()["error"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert [answer.headers.get("retry-after") for answer in answers[:3]] == [None] * 3, "only a 429 says retry"
        assert answers[2].headers["ratelimit-remaining"] == "0"
        assert client.get("/health/live").status_code == 200, "health probes are never rate limited"


def test_with_keys_on_each_key_has_its_own_rate_limit(tmp_path: Path):
    env = {"TRANSMUTE_RATE_LIMIT": "2/minute", "TRANSMUTE_API_KEYS": f"{ALICE},{BOB}"}
    with embedded_client(tmp_path, env=env) as client:
        alice = [client.get("/api/tasks/", headers=as_alice()).status_code for _ in range(3)]
        bob = [client.get("/api/tasks/", headers=as_bob()).status_code for _ in range(2)]
        assert alice == [200, 200, 429]
        assert bob == [200, 200]


# ------------------------------------------------------------------------ keys set but empty; key guessing


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["api", "--port", "1"]])
@pytest.mark.parametrize("keys", [", , ,", "", "@comments-only"])
def test_a_key_setting_that_holds_no_key_refuses_to_start_with_one_line(tmp_path: Path, command: list[str],
                                                                        keys: str):
    comments = tmp_path / "comments-only"
    comments.write_text("# the keys go here\n\n   # one a line\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRANSMUTE_")}
    env |= {"TRANSMUTE_API_KEYS": keys.replace("@comments-only", f"@{comments}"),
            "TRANSMUTE_BROKER_URL": "amqp://127.0.0.1:1/", "TRANSMUTE_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([str(TRANSMUTE), *command], env=env, capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert done.returncode != 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("transmute: error: TRANSMUTE_API_KEYS is set but holds no key"), \
        done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_wrong_or_missing_keys_are_rate_limited_per_client_address(tmp_path: Path):
    env = {"TRANSMUTE_RATE_LIMIT": "3/minute", "TRANSMUTE_API_KEYS": ALICE}
    with embedded_client(tmp_path, env=env) as client:
        guesses = [client.get("/api/tasks/", headers={"X-API-Key": f"guess-{n:016d}"}) for n in range(3)]
        assert [guess.status_code for guess in guesses] == [401, 401, 401]
        for refused in (client.get("/api/tasks/", headers={"X-API-Key": "guess-number-four-000"}),
                        client.get("/api/tasks/")):
            assert refused.status_code == 429
            assert refused.json()["success"] is False
            assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert client.get("/api/tasks/", headers=as_alice()).status_code == 200, "a valid key has its own count"


# ------------------------------------------------------------------------ clients behind a proxy


def statuses(server, client_addresses: list[str]) -> list[int]:
    """GET /api/tasks/ once per address, each as if a proxy on 127.0.0.1 forwarded it for that client."""
    return [httpx.get(f"{server.url}/api/tasks/", headers={"X-Forwarded-For": address}, timeout=10).status_code
            for address in client_addresses]


@pytest.mark.parametrize("trusted", ["127.0.0.1", "10.0.0.0/8,127.0.0.0/8", None], ids=["address", "cidr", "default"])
def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_rate_limit(start_server, trusted):
    env = {"TRANSMUTE_RATE_LIMIT": "3/minute"} | ({"TRANSMUTE_TRUSTED_PROXIES": trusted} if trusted else {})
    server = start_server(workers=1, env=env)
    assert statuses(server, ["203.0.113.7"] * 3) == [200, 200, 200]
    assert statuses(server, ["203.0.113.8"] * 3) == [200, 200, 200]
    assert statuses(server, ["203.0.113.7"]) == [429]
    # The proxy appends the address it saw: what the client wrote before it is not believed.
    assert statuses(server, ["198.51.100.1, 203.0.113.7"]) == [429]
    assert statuses(server, ["203.0.113.9"]) == [200]


def test_an_untrusted_peer_cannot_pick_its_rate_limit_bucket_with_x_forwarded_for(start_server):
    server = start_server(workers=1, env={"TRANSMUTE_RATE_LIMIT": "3/minute", "TRANSMUTE_TRUSTED_PROXIES": "none"})
    assert 429 in statuses(server, ["203.0.113.1", "203.0.113.2", "203.0.113.3"]), \
        "requests from one peer share one bucket, whatever X-Forwarded-For says"


def test_a_malformed_trusted_proxy_setting_refuses_to_start(tmp_path: Path):
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRANSMUTE_")}
    env |= {"TRANSMUTE_TRUSTED_PROXIES": "10.0.0.0/8, ingress.local"}
    done = subprocess.run([str(TRANSMUTE), "serve", "--port", "1", "--data-dir", str(tmp_path / "data")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "transmute: error: TRANSMUTE_TRUSTED_PROXIES must be IP addresses or networks (CIDR) separated by commas, "
        "or none; 'ingress.local' is neither.")
