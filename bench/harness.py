"""The bench's plumbing: processes on free loopback ports, always stopped; RSS sampling; wrk; clips.

Everything here is bounded (every wait has a deadline) and loopback only.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from transmute.media.process import ffmpeg_program

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TRANSMUTE = str(BIN / "transmute")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load() -> float:
    """The 1-minute load average now."""
    return round(os.getloadavg()[0], 2)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-y", *args], check=True, timeout=600)


def make_clip(path: Path, graph: str, *, crf: int = 20, preset: str = "veryfast") -> Path:
    """A lavfi graph encoded with x264 (yuv420p)."""
    if not path.exists():
        ffmpeg("-f", "lavfi", "-i", graph, "-c:v", "libx264", "-preset", preset, "-crf", str(crf),
               "-pix_fmt", "yuv420p", str(path))
    return path


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kib = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    # the ffmpeg conversions run (the references of figures 1 and 2 too)
    version = subprocess.run([ffmpeg_program(), "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    return {"nproc": os.cpu_count(), "model": model, "memory_gib": round(memory_kib / 1024 / 1024, 1),
            "python": sys.version.split()[0], "ffmpeg": " ".join(version.split()[:3])}


# ------------------------------------------------------------------------------------------ processes


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the process; SIGKILL its whole group when it does not end in time (and any leftovers)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # leftovers of the group (an orphaned ffmpeg)


class Processes:
    """Every process the bench starts, logged under one folder and stopped by `close()` (in a finally)."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs = logs
        self.env = env
        self.running: list[subprocess.Popen] = []
        self._files: list[Any] = []

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("ab")
        self._files.append(log)
        process = subprocess.Popen(args, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
        self.running.append(process)
        return process

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self, process: subprocess.Popen) -> None:
        stop(process)
        with contextlib.suppress(ValueError):
            self.running.remove(process)

    def close(self) -> None:
        for process in reversed(self.running):
            stop(process)
        self.running.clear()
        for log in self._files:
            log.close()


class ExitedEarly(RuntimeError):
    """A server the bench started exited before it answered."""


def wait_http(url: str, process: subprocess.Popen, what: str, timeout: float = 60,
              said: Callable[[], str] | None = None) -> None:
    """Wait until `url` answers 200; ExitedEarly (with the end of what the server `said`) if it exits first."""
    def ready() -> bool:
        if process.poll() is not None:
            raise ExitedEarly(f"{what} exited with {process.returncode} before answering"
                              + (f"; it said:\n{said()}" if said else ""))
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, timeout, what, interval=0.1)


# ------------------------------------------------------------------------------------------ memory


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for thread in Path(f"/proc/{current}/task").glob("*"):
            try:
                kids = [int(item) for item in (thread / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


class RssSampler:
    """Peak resident memory of a process (and, with `tree`, the sum over it and its descendants)."""

    def __init__(self, pid: int, *, tree: bool = False, interval: float = 0.01) -> None:
        self.pid, self.tree, self.interval = pid, tree, interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        pids = [self.pid, *descendants(self.pid)] if self.tree else [self.pid]
        return sum(_rss_kib(pid) for pid in pids)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak_kib = self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024


def run_tree_peak(command: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run a command; (wall seconds, peak RSS MiB of it and its children summed)."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               env=env, start_new_session=True)
    try:
        with RssSampler(process.pid, tree=True, interval=0.02) as sampler:
            _, err = process.communicate(timeout=timeout)
    finally:
        stop(process, timeout=5)
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({process.returncode}): {err.decode(errors='replace')[-800:]}")
    return time.monotonic() - started, sampler.peak_mib


def timed(command: list[str], timeout: float = 600, env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr.decode(errors='replace')[-800:]}")
    return time.monotonic() - started


# ------------------------------------------------------------------------------------------ wrk


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not match:
        return math.nan
    return float(match.group(1)) * _UNITS[match.group(2)]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed; run scripts/bench.sh (it installs it) or apt-get install wrk")
    return found


def wrk(url: str, *, seconds: float, connections: int = 32, threads: int = 1, script: Path | None = None,
        timeout: str = "5s") -> WrkResult:
    command = [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
               f"--timeout={timeout}"]
    if script is not None:
        command += ["-s", str(script)]
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 60)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed: {out[-500:]} {done.stderr[-500:]}")
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    total = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        requests_per_second=rps,
        p50_ms=_ms(p50.group(1)) if p50 else math.nan,
        p99_ms=_ms(p99.group(1)) if p99 else math.nan,
        requests=int(total.group(1)) if total else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(x) for x in errors.groups()) if errors else 0,
    )


# ------------------------------------------------------------------------------------------ a clip server


STALL_PATH = "/stall.mp4"
"""A source that never finishes downloading while the server's `release` event is unset: a task fetching it
stays `running` (its status read from the database each time) without using the CPU."""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args: Any, release: threading.Event, **kwargs: Any) -> None:
        self.release = release
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path != STALL_PATH:
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", "100000000")
        self.end_headers()
        # A byte a second keeps the fetcher's read timeout away; the cap ends it if nobody releases it.
        for _ in range(600):
            if self.release.wait(1.0):
                break
            self.wfile.write(b"\0")
            self.wfile.flush()
        self.close_connection = True


@contextlib.contextmanager
def file_server(folder: Path, release: threading.Event | None = None) -> Iterator[str]:
    """Files of `folder` over HTTP on loopback, plus STALL_PATH held open until `release` is set: the base URL."""
    release = release or threading.Event()
    handler = functools.partial(_QuietHandler, directory=str(folder), release=release)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------------------------ infrastructure


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-v", "ON_ERROR_STOP=1",
                    "-c", sql], check=True, capture_output=True, timeout=60)


MOTO_ATTEMPTS = 3


@dataclass
class Infra:
    """A RabbitMQ virtual host, a PostgreSQL database and a moto S3 server of this run's own."""

    vhost: str = field(default_factory=lambda: f"transmute_bench_{uuid.uuid4().hex[:8]}")
    database: str = field(default_factory=lambda: f"transmute_bench_{uuid.uuid4().hex[:8]}")
    s3_port: int = field(default_factory=free_port)
    moto: subprocess.Popen | None = None
    _made: list[str] = field(default_factory=list)

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:5672/{self.vhost}"

    @property
    def database_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.database}"

    @property
    def s3_endpoint(self) -> str:
        return f"127.0.0.1:{self.s3_port}"

    def start(self, processes: Processes) -> None:
        rabbitmqctl("add_vhost", self.vhost)
        self._made.append("vhost")
        rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        psql(f"CREATE DATABASE {self.database}")
        self._made.append("database")
        for attempt in range(MOTO_ATTEMPTS):
            self.moto = processes.spawn("moto", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.s3_port)])
            try:
                wait_http(f"http://{self.s3_endpoint}/moto-api/", self.moto, "the moto S3 server", timeout=60,
                          said=lambda: processes.log("moto"))
                return
            except ExitedEarly as error:
                # free_port's port may be taken by another process before moto binds it: try another
                if "Address already in use" not in str(error) or attempt + 1 == MOTO_ATTEMPTS:
                    raise
                self.s3_port = free_port()

    def close(self) -> None:
        if "database" in self._made:
            with contextlib.suppress(subprocess.SubprocessError):
                psql(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
        if "vhost" in self._made:
            with contextlib.suppress(subprocess.SubprocessError):
                rabbitmqctl("delete_vhost", self.vhost)

    def env(self, bucket: str) -> dict[str, str]:
        return {
            "TRANSMUTE_BROKER_URL": self.amqp_url,
            "TRANSMUTE_DATABASE_URL": self.database_url,
            "TRANSMUTE_S3_ENDPOINT": self.s3_endpoint,
            "TRANSMUTE_S3_ACCESS_KEY": "testing",
            "TRANSMUTE_S3_SECRET_KEY": "testing",
            "TRANSMUTE_S3_BUCKET": bucket,
            "TRANSMUTE_S3_SECURE": "false",
            "TRANSMUTE_S3_CREATE_BUCKET": "true",  # a fresh bucket per run
        }
