"""`transmute serve` starts cleanly: no Dramatiq warning about a middleware added twice, and a conversion still
reports through to its status (the worker threads and the projector each have their own in-process broker)."""

from __future__ import annotations

import httpx

from tests.support.media import make_clip


def test_an_embedded_start_and_conversion_log_no_duplicate_middleware_warning(start_server, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", "testsrc2=size=96x64:rate=5:duration=1")
    server = start_server(workers=1)
    with httpx.Client(base_url=server.url, timeout=30) as client, clip.open("rb") as handle:
        created = client.post("/api/tasks/create/", files={"file": ("clip.mp4", handle, "video/mp4")},
                              data={"width": "32"})
        assert created.status_code == 200, created.text
        assert server.wait_finished(client, created.json()["task_id"])["status"] == "done"
        text = client.get("/metrics").text
    assert 'transmute_conversions_total{format="gif",outcome="done"} 1.0' in text
    log = server.log(tail=None)
    assert "same type twice" not in log, log
    assert "Traceback" not in log, log
