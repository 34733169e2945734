"""After `kill -9`, what the killed `transmute serve` left under the data folder (its conversion's scratch
folder, half-written objects) is removed at the next start; what a live process holds is not."""

from __future__ import annotations

import fcntl
import os
import time

import httpx

from tests.support.media import E2EMedia
from tests.support.servers import TASK_DEADLINE
from tests.support.tasks import queue_upload, status
from tests.support.waiting import wait_for
from transmute.storage.scratch import scratch_folder

LONG_AGO = time.time() - 3600


def test_a_killed_servers_scratch_and_partial_files_go_at_the_next_start_but_not_a_live_ones(
        start_server, e2e_media: E2EMedia, tmp_path) -> None:
    server = start_server(workers=1)
    with httpx.Client(timeout=30) as client:
        task = queue_upload(client, e2e_media.long, base=server.url, keep_original_size="true", high_quality="true")
        wait_for(lambda: status(client, task, base=server.url)["progress"] > 0, TASK_DEADLINE,
                 lambda: f"the conversion to be under way:\n{server.log()}", interval=0.05)
    server.kill_group()  # kill -9 mid-conversion
    (killed_scratch,) = (server.data_dir / "tmp").glob(f"transmute-{task}-*")
    assert (killed_scratch / "source").exists()

    objects = server.data_dir / "objects"
    dead_partial = objects / "results" / ".partial-killed"
    dead_partial.parent.mkdir(parents=True, exist_ok=True)
    dead_partial.write_bytes(b"half a result")
    kept_object = objects / "results" / "task_0_result.gif"
    kept_object.write_bytes(b"GIF89a")
    # Another process's live conversion and live write (this test process holds their locks), made to look
    # old: only the lock tells them from leftovers.
    live_partial = objects / "sources" / ".partial-live"
    live_partial.parent.mkdir(parents=True, exist_ok=True)
    with scratch_folder(server.data_dir / "tmp", "transmute-live-") as live_scratch, \
            live_partial.open("wb") as writing:
        fcntl.flock(writing.fileno(), fcntl.LOCK_EX)
        for path in (live_scratch, live_partial, dead_partial):
            os.utime(path, (LONG_AGO, LONG_AGO))

        server.start()  # the same data folder

        assert not killed_scratch.exists()
        assert not dead_partial.exists()
        assert live_scratch.is_dir() and live_partial.exists() and kept_object.exists()
        assert "removed 1 scratch folder(s) and 1 partial file(s) left by stopped processes" in server.log(tail=None)
        with httpx.Client(timeout=30) as client:
            assert server.wait_finished(client, task)["status"] == "done"  # the task itself resumed
    server.kill_group()
