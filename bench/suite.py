"""The benchmark suite of issue 7: nine figures, each a ratio against a reference measured in the same run.

    .venv/bin/python -m bench            # the full run (about 10 minutes), writes docs/benchmarks.md
    .venv/bin/python -m bench --smoke    # tiny clips, 1 s of wrk, 20 MB upload: a CI check that it all runs

Figures (targets from the issue; the table says which are met):

1. Service overhead: POST (upload included) to status done / `transmute convert`, same clip and options.
2. Plugin speed: `transmute convert` / plain ffmpeg running the reference one-pass palette graph (GIF); for
   the other formats, the plugin as a worker runs it (convert_file) / the plain ffmpeg command writing the same.
3. Status route: requests/s and p99 with 32 connections (wrk) / a trivial Litestar JSON handler (uvicorn).
4. Create route (JSON with url): requests/s / the same trivial handler.
5. Memory: the gateway's peak RSS receiving a big upload and streaming a 50-task ZIP; a conversion's peak RSS.
6. Queue latency: enqueue-to-start on RabbitMQ with an idle worker (Dramatiq, transmute's broker settings).
7. GIF quality: size and SSIM per quality level / a naive ffmpeg GIF and the reference palette graph.
8. Scaling: clips per minute with one and two worker processes.
9. GIF quality against gifski (issue 13): per clip, `high_quality`'s SSIM / gifski's, with size and time, and the
   target's verdict per clip (gifski alone, and with its frame extraction counted).
10. Open event streams (issue 15): the status route's time per request with 1,000 `/events/` streams open on the
    one gateway process / with none; and the gateway's memory per open stream.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    BIN,
    ROOT,
    STALL_PATH,
    TRANSMUTE,
    Infra,
    Processes,
    RssSampler,
    ensure_wrk,
    ffmpeg,
    file_server,
    free_port,
    load,
    machine,
    make_clip,
    median,
    percentile,
    run_tree_peak,
    timed,
    wait_for,
    wait_http,
    wrk,
)
from bench.streams import open_streams

DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
GIF_OPTIONS = {"width": "480", "fps": "15"}


@dataclass(frozen=True)
class Scale:
    """How big the run is: the full run, or the CI smoke."""

    name: str
    hd: str  # the overhead clip (lavfi size and duration)
    hd_seconds: int
    long_seconds: int  # the conversion-memory clip
    repeats: int  # runs of each overhead measurement (median)
    wrk_seconds: int
    upload_mb: int
    zip_tasks: int
    zip_result_mb: float
    latency_messages: int
    scaling_clips: int
    scaling_clip: str
    quality_size: str
    quality_seconds: float
    streams: int = 1000
    parallel: bool = False


FULL = Scale(name="full", hd="1280x720", hd_seconds=10, long_seconds=60, repeats=3, wrk_seconds=8, upload_mb=500,
             zip_tasks=50, zip_result_mb=10, latency_messages=200, scaling_clips=8, scaling_clip="640x360:duration=4",
             quality_size="640x360", quality_seconds=3)
SMOKE = Scale(name="smoke", hd="320x180", hd_seconds=2, long_seconds=3, repeats=1, wrk_seconds=1, upload_mb=20,
              zip_tasks=5, zip_result_mb=0.2, latency_messages=10, scaling_clips=2, scaling_clip="160x120:duration=1",
              quality_size="160x90", quality_seconds=0.5, streams=100, parallel=True)


@dataclass
class Row:
    figure: int
    name: str
    value: float
    unit: str
    reference: float
    reference_name: str
    ratio: float
    target: str = ""
    """Like `ratio <= 1.10` or `value <= 150`; empty when the issue sets none."""
    met: bool | None = None
    """Computed from `target` when it is `subject op bound`; given when the target has several parts."""
    load: float = field(default_factory=load)
    note: str = ""
    skipped: bool = False
    """Not measured (a tool is missing): value, reference and ratio are NaN and `note` says why."""

    def __post_init__(self) -> None:
        if self.target and self.met is None and not self.skipped:
            subject, op, bound = self.target.split()
            number = self.ratio if subject == "ratio" else self.value
            self.met = number <= float(bound) if op == "<=" else number >= float(bound)


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference else math.nan


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')} load {load():.2f}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ servers


class Embedded:
    """`transmute serve` on a free port with its own data dir."""

    def __init__(self, processes: Processes, data_dir: Path, name: str, workers: int = 1,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = name
        self.process = processes.spawn(name, [TRANSMUTE, "serve", "--port", str(self.port), "--data-dir",
                                              str(data_dir), "--workers", str(workers)], env)
        wait_http(f"{self.url}/api/formats/", self.process, name)


def start_trivial(processes: Processes) -> str:
    port = free_port()
    process = processes.spawn("trivial", [str(BIN / "uvicorn"), "bench.trivial:app", "--host", "127.0.0.1",
                                          "--port", str(port), "--log-level", "info"])
    wait_http(f"http://127.0.0.1:{port}/ping", process, "the trivial server")
    return f"http://127.0.0.1:{port}"


class Distributed:
    """`transmute api` (one process) and, on demand, `transmute worker --processes N`, on this run's infra."""

    def __init__(self, processes: Processes, infra: Infra, data_dir: Path) -> None:
        self.processes = processes
        self.env = {**infra.env(f"bench-{uuid.uuid4().hex[:8]}"), "TRANSMUTE_DATA_DIR": str(data_dir)}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.amqp_url = infra.amqp_url
        self.api = processes.spawn("api", [TRANSMUTE, "api", "--port", str(self.port)], self.env)
        wait_http(f"{self.url}/api/formats/", self.api, "transmute api")
        self.worker: subprocess.Popen | None = None

    def start_worker(self, processes: int) -> None:
        self.stop_worker()
        self.worker = self.processes.spawn(f"worker{processes}", [TRANSMUTE, "worker", "--processes", str(processes),
                                                                   "--threads", "1"], self.env)
        wait_for(lambda: self._consumers() >= processes, 60, f"{processes} worker process(es) to consume",
                 interval=0.2)

    def _consumers(self) -> int:
        import pika

        assert self.worker is not None
        if self.worker.poll() is not None:
            raise RuntimeError(f"transmute worker exited with {self.worker.returncode}")
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            return connection.channel().queue_declare("transmute.convert", passive=True).method.consumer_count
        except pika.exceptions.ChannelClosedByBroker:  # not declared yet: the worker is still starting
            return 0
        finally:
            if connection.is_open:
                connection.close()

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.processes.stop(self.worker)
            self.worker = None

    def purge_convert_queue(self) -> int:
        """Drop the convert messages the create-route figure left (once the gateway has sent its last one)."""
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            channel = connection.channel()
            last, deadline = -1, time.monotonic() + 30
            while time.monotonic() < deadline:
                count = channel.queue_declare("transmute.convert", passive=True).method.message_count
                if count == last:
                    break
                last = count
                time.sleep(1.0)
            return channel.queue_purge("transmute.convert").method.message_count
        finally:
            connection.close()


# ------------------------------------------------------------------------------------------ client helpers


def upload(client: httpx.Client, clip: Path, **params: str) -> str:
    with clip.open("rb") as handle:
        response = client.post("/api/tasks/create/", files={"file": (clip.name, handle, "video/mp4")}, data=params)
    response.raise_for_status()
    return response.json()["task_id"]


def wait_done(client: httpx.Client, task_ids: list[str], timeout: float, interval: float = 0.02) -> float:
    """Poll until every task is done; the monotonic time the last one was seen done."""
    pending = set(task_ids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for task_id in list(pending):
            state = client.get(f"/api/tasks/{task_id}/status/").json()
            if state["status"] == "done":
                pending.discard(task_id)
            elif state["status"] == "failed":
                raise RuntimeError(f"task {task_id} failed: {state.get('error_message')}")
        if pending:
            time.sleep(interval)
    if pending:
        raise TimeoutError(f"{len(pending)} task(s) not done after {timeout:g} s")
    return time.monotonic()


def service_seconds(client: httpx.Client, clip: Path, timeout: float) -> float:
    started = time.monotonic()
    task_id = upload(client, clip, **GIF_OPTIONS)
    return wait_done(client, [task_id], timeout) - started


def done_task(base_url: str, clip: Path) -> str:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        task_id = upload(client, clip)
        wait_done(client, [task_id], 120)
    return task_id


def convert_command(clip: Path, out: Path, *extra: str) -> list[str]:
    return [TRANSMUTE, "convert", str(clip), "-o", str(out), *extra]


def reference_graph(clip: Path, out: Path) -> list[str]:
    from transmute.media.process import ffmpeg_program  # the ffmpeg transmute runs

    graph = ("fps=15,scale=480:-1:flags=lanczos,split[a][b];[a]palettegen=stats_mode=diff[p];"
             "[b][p]paletteuse=dither=bayer")
    return [ffmpeg_program(), "-v", "error", "-nostdin", "-y", "-i", str(clip), "-filter_complex", graph, "-loop",
            "0", str(out)]


# ------------------------------------------------------------------------------------------ figures


def fig_overhead(rows: list[Row], mode: str, base_url: str, clip: Path, work: Path, scale: Scale,
                 target: float, with_plugin_speed: bool) -> str:
    """Figures 1 (and 2 when asked): interleaved runs of the service, `transmute convert` and plain ffmpeg."""
    service, cli, plain = [], [], []
    task_timeout = 120 + 20 * scale.hd_seconds
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for _ in range(scale.repeats):
            cli.append(timed(convert_command(clip, work / "cli.gif", "--width", "480", "--fps", "15")))
            service.append(service_seconds(client, clip, task_timeout))
            if with_plugin_speed:
                plain.append(timed(reference_graph(clip, work / "plain.gif")))
        last = upload(client, clip, **GIF_OPTIONS)  # a done task for the status route
        wait_done(client, [last], task_timeout)
    runs = f"median of {scale.repeats}: service {', '.join(f'{x:.2f}' for x in service)}; " \
           f"convert {', '.join(f'{x:.2f}' for x in cli)}"
    rows.append(Row(1, f"service overhead, {mode}", median(service), "s", median(cli), "transmute convert",
                    _ratio(median(service), median(cli)), f"ratio <= {target:.2f}", note=runs))
    if with_plugin_speed:
        rows.append(Row(2, "plugin speed (transmute convert)", median(cli), "s", median(plain),
                        "ffmpeg one-pass palette graph", _ratio(median(cli), median(plain)), "ratio <= 1.25",
                        note=f"ffmpeg {', '.join(f'{x:.2f}' for x in plain)}"))
    return last


FORMAT_SPEED: dict[str, tuple[str, str, list[str]]] = {
    # format: (clip, what the plain command is, its arguments: what the plugin runs with its defaults)
    "mp4": ("hd-sound", "ffmpeg: libx264 crf 23 medium, AAC 128k, +faststart",
            ["-c:v", "libx264", "-crf", "23", "-preset", "medium", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a",
             "128k", "-movflags", "+faststart"]),
    "webm": ("hd-sound", "ffmpeg: libvpx-vp9 crf 32 cpu-used 4 row-mt, Opus 96k",
             ["-c:v", "libvpx-vp9", "-crf", "32", "-b:v", "0", "-deadline", "good", "-cpu-used", "4", "-row-mt",
              "1", "-pix_fmt", "yuv420p", "-c:a", "libopus", "-b:a", "96k"]),
    "webp": ("hd", "ffmpeg: libwebp quality 75, 480 px, 15 fps",
             ["-vf", "fps=15,scale=480:-1:flags=lanczos,format=yuv420p", "-c:v", "libwebp", "-quality", "75",
              "-compression_level", "4", "-loop", "0", "-f", "webp"]),
    "apng": ("hd", "ffmpeg: apng, 480 px, 15 fps",
             ["-vf", "fps=15,scale=480:-1:flags=lanczos+accurate_rnd+full_chroma_int+full_chroma_inp,format=rgb24",
              "-c:v", "apng", "-pred", "mixed", "-plays", "0", "-f", "apng"]),
    "mp3": ("hd-sound", "ffmpeg: libmp3lame 192k",
            ["-vn", "-c:a", "libmp3lame", "-b:a", "192k", "-map_metadata", "-1", "-write_xing", "1", "-f", "mp3"]),
    "sprite": ("hd", "ffmpeg: fps, scale, tile 5x5 of 160 px",
               ["-vf", "fps=25/{seconds},scale=160:-1:flags=lanczos,tile=5x5", "-frames:v", "1", "-q:v", "5"]),
}
"""Figure 2 for the formats besides GIF: the plain ffmpeg command that writes what the plugin writes."""


def hd_sound_clip(work: Path, scale: Scale) -> Path:
    """The HD clip with a sound track (the video formats keep it)."""
    clip = work / "clips" / "hd-sound.mp4"
    if not clip.exists():
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={scale.hd}:rate=30:duration={scale.hd_seconds}", "-f", "lavfi",
               "-i", f"sine=frequency=440:duration={scale.hd_seconds}", "-c:v", "libx264", "-preset", "veryfast",
               "-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(clip))
    return clip


def fig_format_speed(rows: list[Row], name: str, clips: dict[str, Path], work: Path, scale: Scale) -> None:
    """Figure 2 for a format besides GIF: the plugin as a worker runs it (convert_file: probe, plan, ffmpeg, in
    a warm process) / the plain ffmpeg command writing the same file, interleaved, median of the repeats."""
    from transmute.core.params import parse_params
    from transmute.core.plugins import get_format
    from transmute.media.conversion import convert_file
    from transmute.media.process import ffmpeg_program  # the ffmpeg the plugin runs
    from transmute.settings import LimitsConfig

    clip_name, reference, arguments = FORMAT_SPEED[name]
    clip = hd_sound_clip(work, scale) if clip_name == "hd-sound" else clips[clip_name]
    arguments = [argument.format(seconds=scale.hd_seconds) for argument in arguments]
    extension = get_format(name).extension
    limits = LimitsConfig.from_env().for_conversion()
    plugin, plain = [], []
    for _ in range(scale.repeats):
        started = time.monotonic()
        convert_file(clip, work / f"plugin.{extension}", parse_params({"format": name}), limits=limits, work_dir=work)
        plugin.append(time.monotonic() - started)
        plain.append(timed([ffmpeg_program(), "-v", "error", "-nostdin", "-y", "-i", str(clip), *arguments,
                            str(work / f"plain.{extension}")]))
    rows.append(Row(2, f"plugin speed, {name} (as a worker runs it)", median(plugin), "s", median(plain), reference,
                    _ratio(median(plugin), median(plain)), "ratio <= 1.10",
                    note=f"plugin {', '.join(f'{x:.2f}' for x in plugin)}; "
                         f"ffmpeg {', '.join(f'{x:.2f}' for x in plain)}"))


def running_task(base_url: str, stall_url: str) -> str:
    """A task whose worker is stuck downloading STALL_PATH: `running`, read from the database at every poll."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        response = client.post("/api/tasks/create/", json={"url": stall_url, "format": "gif"})
        response.raise_for_status()
        task_id = response.json()["task_id"]
        deadline = time.monotonic() + 60
        while client.get(f"/api/tasks/{task_id}/status/").json()["status"] != "running":
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} never started downloading {stall_url}")
            time.sleep(0.05)
    return task_id


def fig_status(rows: list[Row], mode: str, base_url: str, trivial: str, done_id: str, stall_url: str,
               release_stall: threading.Event, seconds: int) -> None:
    """Figure 3 for a done task (served from the gateway's memory once read) and a running one (its worker
    stuck on `stall_url` until `release_stall` is set: read from the database at every request)."""
    release_stall.clear()
    try:
        _status_rows(rows, mode, base_url, trivial, {"done": done_id, "running": running_task(base_url, stall_url)},
                     seconds)
    finally:
        release_stall.set()  # the stuck download ends; the conversion thread is free again


def _status_rows(rows: list[Row], mode: str, base_url: str, trivial: str, tasks: dict[str, str],
                 seconds: int) -> None:
    for state, task_id in tasks.items():
        route = f"{base_url}/api/tasks/{task_id}/status/"
        if seconds > 1:  # warm both (not in the smoke)
            wrk(f"{trivial}/ping", seconds=1)
            wrk(route, seconds=1)
        ref = wrk(f"{trivial}/ping", seconds=seconds)
        got = wrk(route, seconds=seconds)
        note = f"{got.requests} requests, {got.non_2xx} non-2xx, {got.errors} socket errors"
        rows.append(Row(3, f"status route req/s, {mode}, {state} task", got.requests_per_second, "req/s",
                        ref.requests_per_second, "trivial Litestar handler",
                        _ratio(got.requests_per_second, ref.requests_per_second), "ratio >= 0.5", note=note))
        rows.append(Row(3, f"status route p99, {mode}, {state} task", got.p99_ms, "ms", ref.p99_ms,
                        "trivial Litestar handler", _ratio(got.p99_ms, ref.p99_ms),
                        note=f"p50 {got.p50_ms:.1f} ms vs {ref.p50_ms:.1f} ms"))


def fig_create(rows: list[Row], mode: str, base_url: str, trivial: str, source_url: str, work: Path,
               seconds: int) -> int:
    script = work / f"create-{mode}.lua"
    body = json.dumps({"url": source_url, "format": "gif", "width": 64, "fps": 5})
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                      'wrk.headers["Content-Type"] = "application/json"\n')
    if seconds > 1:
        wrk(f"{trivial}/ping", seconds=1)
    ref = wrk(f"{trivial}/ping", seconds=seconds)
    got = wrk(f"{base_url}/api/tasks/create/", seconds=seconds, script=script)
    note = (f"{got.requests} tasks created, {got.non_2xx} non-2xx, {got.errors} socket errors; "
            f"p99 {got.p99_ms:.0f} ms vs {ref.p99_ms:.1f} ms")
    rows.append(Row(4, f"create route (JSON url) req/s, {mode}", got.requests_per_second, "req/s",
                    ref.requests_per_second, "trivial Litestar handler",
                    _ratio(got.requests_per_second, ref.requests_per_second), "ratio >= 0.25", note=note))
    return got.requests


def fig_upload_memory(rows: list[Row], server: Embedded, work: Path, megabytes: int) -> None:
    big = work / "big.mp4"
    with big.open("wb") as handle:
        handle.truncate(megabytes * 1_000_000)
    idle = RssSampler(server.process.pid).sample() / 1024
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-F", f"file=@{big};type=video/mp4",
               "-F", "format=gif", f"{server.url}/api/tasks/create/"]
    started = time.monotonic()
    with RssSampler(server.process.pid, interval=0.005) as sampler:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - started
    big.unlink()
    note = f"HTTP {done.stdout.strip()}, {took:.1f} s ({megabytes / took:.0f} MB/s)"
    rows.append(Row(5, f"gateway peak RSS, {megabytes} MB upload (embedded)", sampler.peak_mib, "MiB", idle,
                    "the same process idle", _ratio(sampler.peak_mib, idle), "value <= 150", note=note))


def seed_results(data_dir: Path, count: int, size: int) -> list[str]:
    """Done tasks with `size`-byte results straight in an embedded data dir (before its server starts)."""
    from transmute.core.models import TaskEvent, TaskResult, next_seq, utcnow
    from transmute.store import open_store

    objects = data_dir / "objects" / "results"
    objects.mkdir(parents=True, exist_ok=True)
    blob = data_dir / "blob.gif"
    blob.write_bytes(os.urandom(size))

    async def seed() -> list[str]:
        store = open_store(f"sqlite+aiosqlite:///{data_dir.resolve() / 'transmute.db'}")
        ids = []
        try:
            await store.create_schema()
            for index in range(count):
                task = await store.create(target_format="gif", source_type="file", params={"format": "gif"},
                                          original_filename=f"clip{index}.mp4", file_size=size)
                key = f"results/task_{task.id}_result.gif"
                os.link(blob, data_dir / "objects" / key)
                result = TaskResult(key=key, filename=f"clip{index}.gif", size=size, mime_type="image/gif",
                                    format="gif")
                await store.apply_event(TaskEvent(task_id=task.id, seq=next_seq(), kind="done", at=utcnow(),
                                                  result=result))
                ids.append(task.id)
        finally:
            await store.close()
        return ids

    return asyncio.run(seed())


def fig_zip_memory(rows: list[Row], server: Embedded, task_ids: list[str], result_mb: float) -> None:
    idle = RssSampler(server.process.pid).sample() / 1024
    received = 0
    started = time.monotonic()
    with RssSampler(server.process.pid, interval=0.005) as sampler, \
            httpx.stream("GET", f"{server.url}/api/tasks/batch-download/", params={"task_ids": ",".join(task_ids)},
                         timeout=120) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            received += len(chunk)
    took = time.monotonic() - started
    note = f"{received / 1e6:.0f} MB ZIP in {took:.1f} s ({received / 1e6 / took:.0f} MB/s)"
    rows.append(Row(5, f"gateway peak RSS, {len(task_ids)}-task ZIP of {result_mb:g} MB results (embedded)",
                    sampler.peak_mib, "MiB", idle, "the same process idle", _ratio(sampler.peak_mib, idle),
                    "value <= 150", note=note))


def fig_conversion_memory(rows: list[Row], clips: dict[str, Path], work: Path, scale: Scale) -> None:
    full = ["--keep-original-size"]
    short_s, short_mib = run_tree_peak(convert_command(clips["hd"], work / "short.gif", *full), timeout=600)
    long_s, long_mib = run_tree_peak(convert_command(clips["long"], work / "long.gif", *full), timeout=1200)
    rows.append(Row(5, f"conversion peak RSS, {scale.long_seconds} s {scale.hd} full size", long_mib, "MiB",
                    short_mib, f"the same for {scale.hd_seconds} s", _ratio(long_mib, short_mib), "value <= 400",
                    note=f"transmute convert + ffmpeg summed; {long_s:.1f} s vs {short_s:.1f} s"))


def raw_amqp_latency(amqp_url: str, count: int) -> list[float]:
    """Publish (with confirms) to consume on a plain queue with pika: the floor under Dramatiq's figure."""
    import pika

    queue = f"bench.raw.{uuid.uuid4().hex[:6]}"
    got: list[float] = []
    ready, arrived, stop = threading.Event(), threading.Event(), threading.Event()

    def consume() -> None:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = connection.channel()
        channel.queue_declare(queue, auto_delete=True)

        def on_message(ch: Any, method: Any, _props: Any, body: bytes) -> None:
            got.append(time.time() - float(body))
            ch.basic_ack(method.delivery_tag)
            arrived.set()

        channel.basic_qos(prefetch_count=1)
        channel.basic_consume(queue, on_message)
        ready.set()
        while not stop.is_set():
            connection.process_data_events(time_limit=0.05)
        connection.close()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    ready.wait(30)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for _ in range(count):
            arrived.clear()
            channel.basic_publish("", queue, str(time.time()).encode(),
                                  pika.BasicProperties(delivery_mode=2))
            arrived.wait(10)
            time.sleep(0.02)
    finally:
        connection.close()
        stop.set()
        thread.join(10)
    return got


def fig_queue_latency(rows: list[Row], processes: Processes, amqp_url: str, work: Path, count: int) -> None:
    import dramatiq

    from bench.latency_worker import ACTOR, QUEUE
    from transmute.services.broker import create_broker
    from transmute.settings import BrokerConfig

    out = work / "latency.txt"
    worker = processes.spawn("latency-worker", [sys.executable, "-m", "bench.latency_worker", amqp_url, str(out)])
    broker = create_broker(BrokerConfig(url=amqp_url))
    try:
        broker.declare_queue(QUEUE)
        wait_for(lambda: Path(f"{out}.ready").exists() or worker.poll() is not None, 60, "the latency worker")
        if worker.poll() is not None:
            raise RuntimeError(f"latency worker exited: {processes.log('latency-worker')}")
        time.sleep(0.5)

        def lines() -> int:
            return out.read_text().count("\n") if out.exists() else 0

        for index in range(count):
            message = dramatiq.Message(queue_name=QUEUE, actor_name=ACTOR, args=(time.time(), index), kwargs={},
                                       options={})
            broker.enqueue(message)
            wait_for(lambda i=index: lines() > i, 10, "the latency actor", interval=0.001)
            time.sleep(0.05)  # the worker is idle again before the next message
        seconds = [float(line.split()[1]) for line in out.read_text().splitlines()]
    finally:
        processes.stop(worker)
        with contextlib.suppress(Exception):
            broker.close()
    raw = raw_amqp_latency(amqp_url, count)
    ms = [s * 1000 for s in seconds]
    raw_ms = [s * 1000 for s in raw]
    for share, label, target in ((0.5, "p50", "value <= 20"), (0.99, "p99", "")):
        value, reference = percentile(ms, share), percentile(raw_ms, share)
        rows.append(Row(6, f"queue latency {label} (RabbitMQ, idle worker)", value, "ms", reference,
                        "raw pika publish-to-consume", _ratio(value, reference), target,
                        note=f"{len(ms)} messages; max {max(ms):.1f} ms"))


def fig_scaling(rows: list[Row], cluster: Distributed, source_url: str, scale: Scale) -> None:
    per_minute = {}
    for workers in (1, 2):
        cluster.start_worker(workers)
        with httpx.Client(base_url=cluster.url, timeout=60) as client:
            started = time.monotonic()
            ids = []
            for _ in range(scale.scaling_clips):
                response = client.post("/api/tasks/create/", json={"url": source_url, "fps": 15})
                response.raise_for_status()
                ids.append(response.json()["task_id"])
            finished = wait_done(client, ids, timeout=60 + 30 * scale.scaling_clips, interval=0.1)
        per_minute[workers] = scale.scaling_clips * 60 / (finished - started)
    rows.append(Row(8, "scaling: clips/min, 2 worker processes", per_minute[2], "clips/min", per_minute[1],
                    "1 worker process", _ratio(per_minute[2], per_minute[1]),
                    note=f"{scale.scaling_clips} clips ({scale.scaling_clip} s) from a URL, threads 1"))


QUALITY_SOURCES = {
    "testsrc2": "testsrc2=size={size}:rate=30:duration={seconds}",
    "mandelbrot": "mandelbrot=size={size}:rate=30,trim=duration={seconds}",
    "noisy": ("gradients=size={size}:rate=30:speed=0.05:duration={seconds}[g];"
              "life=size={size}:rate=30:mold=10:ratio=0.3:life_color=#f0e0a0:death_color=#402010,"
              "trim=duration={seconds},format=yuv420p[l];[g][l]blend=all_mode=overlay,noise=alls=18:allf=t+u"),
}
LEVELS = {"low": {"quality": "low"}, "medium": {"quality": "medium"}, "high": {"quality": "high"},
          "high_quality": {"high_quality": True}}


def fig_quality(rows: list[Row], work: Path, scale: Scale) -> list[dict[str, Any]]:
    from bench import gif_measure

    width = int(scale.quality_size.split("x")[0]) * 3 // 4
    details = []
    for name, graph in QUALITY_SOURCES.items():
        source = make_clip(work / f"q-{name}.mkv", graph.format(size=scale.quality_size,
                                                               seconds=scale.quality_seconds), crf=4)
        naive, ref = work / f"q-{name}-naive.gif", work / f"q-{name}-ref.gif"
        chain = f"fps=15,scale={width}:-1:flags=lanczos"
        ffmpeg("-i", str(source), "-vf", chain, "-loop", "0", str(naive))
        ffmpeg("-i", str(source), "-filter_complex",
               f"{chain},split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer",
               "-loop", "0", str(ref))
        base = {"naive": naive, "reference": ref}
        measured = {label: (path.stat().st_size / 1024, gif_measure.ssim(path, source))
                    for label, path in base.items()}
        for level, values in LEVELS.items():
            out = work / f"q-{name}-{level}.gif"
            seconds = gif_measure.convert(source, out, **{**values, "width": width})
            measured[level] = (out.stat().st_size / 1024, gif_measure.ssim(out, source))
            size, ssim = measured[level]
            ref_size, ref_ssim = measured["reference"]
            naive_size, naive_ssim = measured["naive"]
            rows.append(Row(7, f"GIF SSIM, {name}, {level}", ssim, "SSIM", ref_ssim, "reference palette graph",
                            _ratio(ssim, ref_ssim),
                            note=f"{size:.0f} KiB (x{size / ref_size:.2f} ref, x{size / naive_size:.2f} naive); "
                                 f"naive SSIM {naive_ssim:.3f}; {seconds:.1f} s"))
        for label, (size, ssim) in measured.items():
            details.append({"source": name, "setting": label, "kib": size, "ssim": ssim})
    return details


GIFSKI_TARGET = "SSIM >= gifski, size <= gifski, time <= gifski / 2"


def fig_gifski(rows: list[Row], work: Path, scale: Scale) -> list[dict[str, Any]]:
    """Figure 9: per clip, `high_quality` against gifski -Q 90 fed the same frames (bench/gifski.py)."""
    from bench import gifski

    found = gifski.find_gifski()
    if found is None:
        rows.append(Row(9, "GIF vs gifski", math.nan, "SSIM", math.nan, "gifski", math.nan, GIFSKI_TARGET,
                        skipped=True, note="skipped: gifski not found (scripts/bench.sh installs the npm package "
                                           f"gifski@{gifski.GIFSKI_VERSION} into .bench-tools/, or set BENCH_GIFSKI)"))
        return []
    binary, version = found
    width = int(scale.quality_size.split("x")[0]) * 3 // 4
    clips = gifski.make_clips(work / "gifski-clips", scale.quality_size, scale.quality_seconds)
    clips.update(gifski.real_clips())
    details = []
    for name, source in clips.items():
        say(f"figure 9: {name}")
        reference, best, default, plain = gifski.compare_clip(binary, name, source, work, width, scale.repeats)
        with_extraction = reference.seconds + reference.extract_seconds
        note = (f"{best.kib:.0f} KiB vs {reference.kib:.0f} (x{best.kib / reference.kib:.2f}), "
                f"{best.seconds:.2f} s vs {reference.seconds:.2f} (x{best.seconds / reference.seconds:.2f}; "
                f"gifski {reference.note}: x{best.seconds / with_extraction:.2f}, "
                f"{gifski.verdict(best, reference, with_extraction=True)} counting it); "
                f"default {default.ssim:.3f}, {default.kib:.0f} KiB; "
                f"ffmpeg plain {plain.ssim:.3f}, {plain.kib:.0f} KiB")
        rows.append(Row(9, f"GIF vs gifski, {name}, high_quality", best.ssim, "SSIM", reference.ssim,
                        f"{version} -Q {gifski.GIFSKI_QUALITY}", _ratio(best.ssim, reference.ssim), GIFSKI_TARGET,
                        met=gifski.meets_target(best, reference), note=note))
        details += [asdict(item) for item in (reference, best, default, plain)]
    return details


# ------------------------------------------------------------------------------------------ the run


def fig_open_streams(rows: list[Row], processes: Processes, work: Path, stall_url: str,
                     release_stall: threading.Event, scale: Scale) -> None:
    """Figure 10: the status route of a running task under wrk with `scale.streams` streams open on that task (one
    gateway process: `transmute serve`) against the same without them (before and after), and the gateway's RSS
    per open stream."""
    data = work / "embedded-streams"
    data.mkdir(exist_ok=True)
    # Each stream is a connection: the process must take them all, plus wrk's.
    server = Embedded(processes, data, "serve-streams", env={"TRANSMUTE_MAX_CONNECTIONS": str(scale.streams + 200)})
    release_stall.clear()
    try:
        task_id = running_task(server.url, stall_url)
        route = f"{server.url}/api/tasks/{task_id}/status/"
        if scale.wrk_seconds > 1:
            wrk(route, seconds=1)  # warm
        before = wrk(route, seconds=scale.wrk_seconds)
        rss_before = RssSampler(server.process.pid).sample()
        with open_streams(f"{server.url}/api/tasks/{task_id}/events/", scale.streams) as answered:
            rss_streams = RssSampler(server.process.pid).sample()
            during = wrk(route, seconds=scale.wrk_seconds)
        after = wrk(route, seconds=scale.wrk_seconds)  # the reference is measured on both sides (a busy machine)
        without = (before.requests_per_second + after.requests_per_second) / 2
        per_request = (1000 / during.requests_per_second, 1000 / without)
        rows.append(Row(10, f"status route with {scale.streams} open event streams: seconds per 1,000 requests",
                        per_request[0], "s", per_request[1], "no stream open", _ratio(*per_request), "ratio <= 1.2",
                        note=f"{during.requests_per_second:.0f} vs {without:.0f} req/s (before and after), "
                             f"{answered} of {scale.streams} streams open, {during.non_2xx} non-2xx"))
        per_stream = max(0, rss_streams - rss_before) / max(1, answered)
        rows.append(Row(10, "gateway memory per open event stream", per_stream, "KiB", rss_before,
                        "gateway RSS with no stream open", _ratio(per_stream, rss_before), "value <= 64",
                        note=f"RSS {rss_before / 1024:.0f} MiB -> {rss_streams / 1024:.0f} MiB with {answered} "
                             "streams"))
    finally:
        release_stall.set()
        processes.stop(server.process)


def make_clips(folder: Path, scale: Scale) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "hd": make_clip(folder / "hd.mp4", f"testsrc2=size={scale.hd}:rate=30:duration={scale.hd_seconds}"),
        "long": make_clip(folder / "long.mp4", f"testsrc2=size={scale.hd}:rate=30:duration={scale.long_seconds}",
                          preset="ultrafast"),
        "tiny": make_clip(folder / "tiny.mp4", "testsrc2=size=64x48:rate=5:duration=0.4"),
        "scaling": make_clip(folder / "scaling.mp4", f"testsrc2=size={scale.scaling_clip}:rate=30"),
    }


def run(scale: Scale, work: Path, only: set[int] | None = None) -> dict[str, Any]:
    ensure_wrk()
    wanted = only or set(range(1, 11))
    rows: list[Row] = []
    details: list[dict[str, Any]] = []
    gifski_details: list[dict[str, Any]] = []
    loads = [load()]
    began = time.monotonic()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    (work / "tmp").mkdir(exist_ok=True)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TRANSMUTE_")},
           "TRANSMUTE_ALLOW_PRIVATE_URLS": "true", "TMPDIR": str(work / "tmp"),
           "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH", ""), str(ROOT)]))}
    processes = Processes(work / "logs", env)
    infra = Infra()
    monitor_stop = threading.Event()
    release_stall = threading.Event()

    def monitor() -> None:
        while not monitor_stop.wait(5):
            loads.append(load())

    threading.Thread(target=monitor, daemon=True).start()
    offline: threading.Thread | None = None
    offline_result: dict[str, Any] = {}

    def offline_figures() -> None:
        """Figures 5 (conversion memory), 7 and 9: no server involved."""
        try:
            if 5 in wanted:
                say("figure 5: conversion memory")
                fig_conversion_memory(rows, clips, work, scale)
            if 7 in wanted:
                say("figure 7: GIF quality")
                offline_result["details"] = fig_quality(rows, work, scale)
            if 2 in wanted:
                for name in FORMAT_SPEED:
                    say(f"figure 2: plugin speed, {name}")
                    fig_format_speed(rows, name, clips, work, scale)
            if 9 in wanted:
                say("figure 9: GIF quality against gifski")
                offline_result["gifski"] = fig_gifski(rows, work, scale)
        except Exception as exc:
            offline_result["error"] = repr(exc)
            raise

    try:
        say(f"{scale.name} run in {work}: making clips")
        clips = make_clips(work / "clips", scale)
        if scale.parallel:
            # The smoke's numbers only have to exist: run the server-less figures alongside the others.
            offline = threading.Thread(target=offline_figures, daemon=True)
            offline.start()
        with file_server(clips["hd"].parent, release_stall) as clip_base:
            tiny_url, scaling_url = f"{clip_base}/tiny.mp4", f"{clip_base}/scaling.mp4"
            stall_url = f"{clip_base}{STALL_PATH}"
            trivial = start_trivial(processes) if wanted & {3, 4} else ""
            if wanted & {1, 2, 3, 5}:
                data = work / "embedded"
                data.mkdir(exist_ok=True)
                zip_ids = seed_results(data, scale.zip_tasks, int(scale.zip_result_mb * 1_000_000)) \
                    if 5 in wanted else []
                server = Embedded(processes, data, "serve")
                if wanted & {1, 2}:
                    say("figures 1-2: service overhead (embedded) and plugin speed")
                    done_id = fig_overhead(rows, "embedded", server.url, clips["hd"], work, scale, 1.10,
                                           with_plugin_speed=2 in wanted)
                else:
                    done_id = done_task(server.url, clips["tiny"])
                if 3 in wanted:
                    say("figure 3: status route")
                    fig_status(rows, "embedded", server.url, trivial, done_id, stall_url, release_stall,
                               scale.wrk_seconds)
                if 5 in wanted:
                    say("figure 5: gateway memory (upload, ZIP)")
                    fig_upload_memory(rows, server, work, scale.upload_mb)
                    fig_zip_memory(rows, server, zip_ids, scale.zip_result_mb)
                processes.stop(server.process)
            if 10 in wanted:
                say(f"figure 10: the status route with {scale.streams} open event streams")
                fig_open_streams(rows, processes, work, stall_url, release_stall, scale)
            if 4 in wanted:
                say("figure 4: create route (embedded, 1 conversion thread, tiny URL clip)")
                data = work / "embedded-create"
                data.mkdir(exist_ok=True)
                server = Embedded(processes, data, "serve-create")
                fig_create(rows, "embedded", server.url, trivial, tiny_url, work, scale.wrk_seconds)
                processes.stop(server.process)
            if wanted & {1, 3, 4, 6, 8}:
                say("distributed: RabbitMQ vhost, PostgreSQL database, moto S3, transmute api")
                infra.start(processes)
                cluster = Distributed(processes, infra, work / "distributed")
                if 4 in wanted:
                    say("figure 4: create route (distributed, no worker: messages wait in RabbitMQ)")
                    fig_create(rows, "distributed", cluster.url, trivial, tiny_url, work, scale.wrk_seconds)
                    cluster.purge_convert_queue()
                if 6 in wanted:
                    say("figure 6: queue latency")
                    fig_queue_latency(rows, processes, infra.amqp_url, work, scale.latency_messages)
                if wanted & {1, 3, 8}:
                    cluster.start_worker(1)
                if 1 in wanted or 3 in wanted:
                    if 1 in wanted:
                        say("figure 1: service overhead (distributed)")
                        done_id = fig_overhead(rows, "distributed", cluster.url, clips["hd"], work, scale, 1.20,
                                               with_plugin_speed=False)
                    else:
                        done_id = done_task(cluster.url, clips["tiny"])
                    if 3 in wanted:
                        say("figure 3: status route (distributed)")
                        fig_status(rows, "distributed", cluster.url, trivial, done_id, stall_url, release_stall,
                                   scale.wrk_seconds)
                if 8 in wanted:
                    say("figure 8: scaling")
                    fig_scaling(rows, cluster, scaling_url, scale)
                cluster.stop_worker()
        processes.close()
        if offline is None:
            offline = offline_figures()
        else:
            offline.join(timeout=600)
            if offline.is_alive() or "error" in offline_result:
                raise RuntimeError(f"the conversion-memory and quality figures failed: {offline_result}")
        details = offline_result.get("details", [])
        gifski_details = offline_result.get("gifski", [])
    finally:
        monitor_stop.set()
        processes.close()
        infra.close()
    loads.append(load())
    rows.sort(key=lambda row: row.figure)
    return {"scale": scale.name, "machine": machine(), "load": {"min": min(loads), "max": max(loads),
                                                                "mean": round(sum(loads) / len(loads), 2)},
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": round(time.monotonic() - began, 1),
            "rows": [asdict(row) for row in rows], "quality": details, "gifski": gifski_details}


# ------------------------------------------------------------------------------------------ report


def _num(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"


def table(result: dict[str, Any]) -> str:
    lines = ["| # | figure | value | reference | ratio | target | met | load 1m | notes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
        if row.get("skipped"):
            lines.append(f"| {row['figure']} | {row['name']} | - | - ({row['reference_name']}) | - | "
                         f"{row['target'] or '-'} | - | {row['load']:.2f} | {row['note']} |")
            continue
        lines.append(f"| {row['figure']} | {row['name']} | {_num(row['value'])} {row['unit']} | "
                     f"{_num(row['reference'])} {row['unit']} ({row['reference_name']}) | {_num(row['ratio'])} | "
                     f"{row['target'] or '-'} | {met} | {row['load']:.2f} | {row['note']} |")
    return "\n".join(lines)


def quality_table(result: dict[str, Any]) -> str:
    if not result["quality"]:
        return ""
    lines = ["| source | setting | size KiB | SSIM |", "|---|---|---|---|"]
    lines += [f"| {item['source']} | {item['setting']} | {item['kib']:.0f} | {item['ssim']:.4f} |"
              for item in result["quality"]]
    return "\n".join(lines)


def gifski_verdicts(result: dict[str, Any]) -> str:
    """Figure 9 per clip: gifski and high_quality side by side, the ratios, and the target's verdict (gifski's
    time alone, and with its frame extraction)."""
    from bench import gifski

    items = [gifski.Measured(**item) for item in result.get("gifski", [])]
    pairs = [(ref, best) for ref, best in itertools.pairwise(items)
             if ref.setting.startswith("gifski") and best.setting == "transmute high_quality"]
    lines = ["| clip | gifski KiB / SSIM / s (+ extraction) | high_quality KiB / SSIM / s | SSIM ratio | size ratio | "
             "time ratio | time ratio, extraction counted | target | target, extraction counted |",
             "|---|---|---|---|---|---|---|---|---|"]
    for ref, best in pairs:
        lines.append(
            f"| {ref.source} | {ref.kib:.0f} / {ref.ssim:.4f} / {ref.seconds:.2f} (+{ref.extract_seconds:.2f}) | "
            f"{best.kib:.0f} / {best.ssim:.4f} / {best.seconds:.2f} | {best.ssim / ref.ssim:.3f} | "
            f"{best.kib / ref.kib:.2f} | {best.seconds / ref.seconds:.2f} | "
            f"{best.seconds / (ref.seconds + ref.extract_seconds):.2f} | {gifski.verdict(best, ref)} | "
            f"{gifski.verdict(best, ref, with_extraction=True)} |")
    return "\n".join(lines)


def gifski_table(result: dict[str, Any]) -> str:
    if not result.get("gifski"):
        return ""
    lines = ["| clip | setting | size KiB | SSIM | SSIM, faithful rgb24 | time s | notes |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {item['source']} | {item['setting']} | {item['kib']:.0f} | {item['ssim']:.4f} | "
              f"{item.get('ssim_rgb', 0.0):.4f} | {item['seconds']:.2f} | {item['note']} |"
              for item in result["gifski"]]
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    met = [row for row in result["rows"] if row["met"] is not None]
    return "\n".join([
        START,
        f"Run `{result['scale']}` of {result['started']}, {result['seconds']:.0f} s. Machine: {m['nproc']} CPUs "
        f"({m['model']}), {m['memory_gib']} GiB RAM, Python {m['python']}, {m['ffmpeg']}. Load average (1 min) "
        f"during the run: min {result['load']['min']:.2f}, mean {result['load']['mean']:.2f}, max "
        f"{result['load']['max']:.2f} (other engineers' tests shared the machine; each ratio compares two "
        "measurements taken back to back). Targets met: "
        f"{sum(1 for row in met if row['met'])} of {len(met)}.",
        "",
        table(result),
        "",
        "GIF quality details (naive: ffmpeg's GIF encoder without a palette; reference: the one-pass "
        "palette graph `palettegen=stats_mode=diff`, `paletteuse=dither=bayer`):",
        "",
        quality_table(result),
        *(["", "GIF against gifski (figure 9; gifski fed PNG frames extracted at the same fps and lanczos scale, SSIM "
            "in yuv444p against those frames, as issue 13 measures; `real` clips: BENCH_GIF_CLIPS; high_quality "
            "and gifski timed alternately, median; the target: SSIM >= gifski's, size <= gifski's, time <= half "
            "gifski's, read strictly (gifski alone) and counting gifski's frame extraction):", "",
            gifski_verdicts(result), "", gifski_table(result)]
          if result.get("gifski") else []),
        END,
    ])


def write_doc(path: Path, result: dict[str, Any]) -> None:
    block = markdown(result)
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny clips and short runs (the CI check)")
    parser.add_argument("--out", type=Path, help="the markdown to update (default: docs/benchmarks.md for a full "
                                                 "run, none for --smoke)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--only", help="comma-separated figure numbers (default: all)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (logs, clips)")
    args = parser.parse_args(argv)
    scale = SMOKE if args.smoke else FULL
    only = {int(x) for x in args.only.split(",")} if args.only else None
    with contextlib.ExitStack() as stack:
        work = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="transmute-bench-")))
        work.mkdir(parents=True, exist_ok=True)
        result = run(scale, work, only)
    print(table(result))
    if result["quality"]:
        print()
        print(quality_table(result))
    if result.get("gifski"):
        print()
        print(gifski_table(result))
    out = args.out or (None if args.smoke else DOC)
    if out is not None:
        write_doc(out, result)
        say(f"wrote {out}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
