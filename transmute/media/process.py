"""How every ffmpeg and ffprobe child is started and stopped: its own session, dying with its parent, under a
memory ceiling."""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

FFPROBE = "ffprobe"
PR_SET_PDEATHSIG = 1


@cache
def ffmpeg_program() -> str:
    """The ffmpeg every conversion runs: imageio-ffmpeg's (the one IMAGEIO_FFMPEG_EXE names, else the static build
    of a current ffmpeg its wheel carries), else `ffmpeg` on PATH, where the package has no build for the
    platform. The static build starts in about 0.01 s, where a distribution's, linked to some 200 shared
    libraries, takes 0.06-0.09 s, and it decodes, filters and writes in threads of their own (ffmpeg 7 and
    later): the same frames, 15-35 % sooner (docs/gif-quality.md, "The time of a whole `transmute convert`, and a
    static ffmpeg"). ffprobe stays the system's."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return "ffmpeg"


def _resolve_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    function.restype = ctypes.c_int
    return function


_PRCTL = _resolve_prctl()
"""libc's prctl, looked up once at import (never in the forked child, where only it may be called)."""


def _address_space_limit(memory_mb: float) -> tuple[int, int] | None:
    """The (soft, hard) RLIMIT_AS for a child allowed `memory_mb` MiB, never above this process's hard limit;
    None for no ceiling (0, or no `resource` limits on this platform)."""
    if memory_mb <= 0 or not hasattr(resource, "RLIMIT_AS"):
        return None
    wanted = int(memory_mb * 1024 * 1024)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    return wanted, wanted


def child_options(memory_mb: float = 0) -> dict[str, Any]:
    """subprocess options for every ffmpeg and ffprobe run: its own session (so a timeout kills its whole
    group), on Linux a preexec_fn that asks the kernel to SIGKILL it when the thread that started it
    dies (PR_SET_PDEATHSIG): a worker killed mid-conversion leaves no ffmpeg running, and with `memory_mb`
    a ceiling on its address space (RLIMIT_AS): past it, its allocations fail and it stops, instead of a
    hostile file taking the machine's memory.

    The preexec_fn runs between fork and exec, so it only calls the prctl resolved at import, getppid and
    setrlimit (limits computed before the fork): when the parent died before prctl took effect, the child
    leaves at once instead of running orphaned.
    """
    options: dict[str, Any] = {"start_new_session": True}
    prctl = _PRCTL
    address_space = _address_space_limit(memory_mb)
    parent = os.getpid()

    def prepare_child() -> None:
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, address_space)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:
                os._exit(1)

    if prctl is not None or address_space is not None:
        options["preexec_fn"] = prepare_child
    if address_space is not None:
        # glibc reserves 64 MB of address space per malloc arena, up to 8 arenas a core: with ffmpeg's one
        # thread a core, a many-core host ran out of the ceiling with little memory in use (32 threads failed
        # under 1536 MB; with 2 arenas 48 threads converted 1080p at the same speed).
        options["env"] = {**os.environ, "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2")}
    return options


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ffmpeg's whole process group (it runs in its own session), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


@contextlib.contextmanager
def exit_waiter(process: subprocess.Popen[bytes]) -> Iterator[Callable[[float], bool]]:
    """A function that waits up to its argument's seconds for `process` to end and says whether it has. Where
    Linux offers a pidfd it wakes the moment the process exits; elsewhere Popen.wait's polling notices an exit up
    to 50 ms late, which every short ffmpeg run would pay."""
    pidfd = None
    if hasattr(os, "pidfd_open"):
        with contextlib.suppress(OSError):
            pidfd = os.pidfd_open(process.pid)

    def wait(seconds: float) -> bool:
        if pidfd is not None:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            poller.poll(seconds * 1000)
            return process.poll() is not None
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    try:
        yield wait
    finally:
        if pidfd is not None:
            os.close(pidfd)
