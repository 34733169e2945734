"""The example third-party format (examples/transmute-plugin-thumbs), installed by pip and nothing else, in
distributed mode: the gateway lists and validates it, a worker converts it, S3 keeps a .png."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path

from tests.support.cluster import Cluster
from tests.support.tasks import create_upload, wait_all_finished


def test_the_installed_example_converts_through_the_api_and_a_worker(
    cluster: Cluster, cluster_clips, example_plugin: Path, tmp_path: Path
) -> None:
    cluster.env["PYTHONPATH"] = os.pathsep.join([str(example_plugin), cluster.env["PYTHONPATH"]])
    cluster.start_worker()
    cluster.start_api()
    with cluster.client() as client:
        formats = {item["name"]: item for item in client.get("/api/formats/").json()["formats"]}
        assert [option["name"] for option in formats["thumbs"]["parameters"]] == ["format", "count", "height"]
        refused = create_upload(client, cluster_clips["two"], format="thumbs", height=8)
        assert refused.status_code == 400 and refused.json()["details"] == {"field": "height"}

        created = create_upload(client, cluster_clips["two"], format="thumbs", count=3, height=40)
        assert created.status_code == 200, created.text
        task_id = created.json()["task_id"]
        finished = wait_all_finished(client, [task_id], timeout=60)[task_id]
        assert finished["status"] == "done", (finished, cluster.log("worker0"))

        result = client.get(f"/api/tasks/{task_id}/result/").json()["result"]
        assert result["output_url"] == f"/media/results/task_{task_id}_result.png"
        assert f"results/task_{task_id}_result.png" in cluster.objects("results/")
        download = client.get(f"/api/tasks/{task_id}/download/")
        assert download.headers["content-type"] == "image/png"
        strip = tmp_path / "strip.png"
        strip.write_bytes(download.content)
        shown = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height",
                                "-of", "csv=p=0", str(strip)], check=True, capture_output=True, text=True)
        assert shown.stdout.strip() == "png,159,40"  # 3 thumbnails of 53x40 (160x120 at 40 px high)
        archive = client.get("/api/tasks/batch-download/", params={"task_ids": task_id})
        with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
            assert [member.filename for member in zipped.infolist()] == [result["filename"]]
            assert result["filename"].endswith(".png")
