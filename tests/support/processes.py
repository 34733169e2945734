"""Child processes seen through /proc: who a process started, whether a pid still runs, and stopping one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path


def children(pid: int) -> list[int]:
    """The pids of a process's direct children (started by any of its threads)."""
    found: list[int] = []
    for thread in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(item) for item in (thread / "children").read_text().split())
        except OSError:
            continue
    return found


def live_ffmpeg_children(pid: int) -> list[int]:
    """The running ffmpeg processes among a process's direct children."""
    found = []
    for child in children(pid):
        try:
            if b"ffmpeg" in Path(f"/proc/{child}/comm").read_bytes() and is_alive(child):
                found.append(child)
        except OSError:
            continue
    return found


def is_alive(pid: int) -> bool:
    """Whether `pid` is a running process (not gone, not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def ffmpeg_pids_with(marker: str) -> list[int]:
    """The ffmpeg processes on this machine whose command line contains `marker`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if marker.encode() in cmdline.read() and b"ffmpeg" in Path(f"/proc/{pid}/comm").read_bytes():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the process; SIGKILL its whole group when it does not end in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # leftovers of the group (an orphaned ffmpeg)
