"""The convert actor: fetch a task's source, convert it with the format's plugin, store the result.

It reports every change of state as an event and never writes the task store. Delivery is at least
once, so every step is idempotent: the result key is fixed by the task id, and the projector ignores
events of a task that already finished.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import dramatiq
import msgspec

from transmute.backoff import call_with_backoff, doubling
from transmute.core.errors import (
    ConversionCancelled,
    ConversionStalled,
    InvalidParameter,
    MediaError,
    SourceError,
    StorageError,
    TransmuteError,
)
from transmute.core.models import (
    CONVERT_ACTOR,
    CONVERT_QUEUE,
    ControlMessage,
    ConvertMessage,
    TaskResult,
    attempts_prefix,
    result_key,
)
from transmute.core.params import parse_params
from transmute.core.plugins import get_format
from transmute.fetch import download
from transmute.media.conversion import convert_file
from transmute.services.broker import send
from transmute.services.worker.cancels import Cancels, Stop
from transmute.services.worker.events import TaskReporter
from transmute.services.worker.retry_policy import ConversionRetries
from transmute.services.worker.stalls import StallWatch
from transmute.settings import LimitsConfig
from transmute.storage.base import ObjectStorage
from transmute.storage.scratch import make_scratch, remove_scratch

log = logging.getLogger("transmute.worker")


T = TypeVar("T")


@dataclass
class Converter:
    """What the convert actor needs: the broker to report on, the storage, and the limits."""

    broker: dramatiq.Broker
    storage: ObjectStorage
    limits: LimitsConfig
    scratch_dir: Path | None = None
    shutdown: threading.Event = field(default_factory=threading.Event)
    """Set when the process stops: running conversions end at once and their tasks stay unfinished."""

    requeue_interrupted: bool = False
    """Send a task interrupted by shutdown again (distributed mode: another worker takes it over)."""
    events_broker: dramatiq.Broker | None = None
    """Where task events go, when not on `broker` (embedded mode: the projector's own in-process broker)."""
    cancels: Cancels = field(default_factory=Cancels)
    """The cancels this process heard of (control messages), and the stop flags of its runs."""

    def control(self, message: ControlMessage) -> None:
        """Act on a control message from the gateway: a cancel stops the run if it goes on here, and makes this
        process skip the task's convert message if it comes later."""
        if message.action == "cancel" and self.cancels.cancel(message.task_id, message.attempt):
            log.info("task %s: cancelled while running; stopping it", message.task_id)

    def __call__(self, payload: dict) -> None:
        message = msgspec.convert(payload, ConvertMessage)
        reporter = TaskReporter(self.events_broker or self.broker, message.task_id, attempt=message.attempt)
        if self._cancelled(message):
            # The task is already `cancelled` in the store: nothing to run (the event only confirms it, for the
            # metrics and the logs; the store ignores it).
            log.info("task %s: cancelled before it started; skipped", message.task_id)
            reporter.cancelled()
            return
        marker = None
        fmt, began = str(message.params.get("format") or "?"), time.monotonic()

        def took() -> str:
            return f"{time.monotonic() - began:.1f} s"

        try:
            marker = self._begin_attempt(message, reporter)
            if marker is None:
                return
            log.info("task %s: started (%s, attempt %d)", message.task_id, fmt, message.attempt)
            self.run(message, reporter)
            log.info("task %s: done (%s) in %s", message.task_id, fmt, took())
            self._forget_attempts(message.task_id)
        except ConversionStalled as exc:
            self._stalled(message, payload, reporter, exc.message)
        except ConversionCancelled:
            if self._cancelled(message):
                # Stopped by the user: the run's scratch is gone (run's finally), its ffmpeg killed.
                log.info("task %s: cancelled; stopped", message.task_id)
                reporter.cancelled()
                self._forget_attempts(message.task_id)
                return
            if not self.shutdown.is_set():
                raise
            # Not the input's fault: the task stays unfinished and is resumed by another worker, or when a
            # worker starts again.
            if self.requeue_interrupted:
                # One more attempt: its progress starts again from 0, and the status's `attempt` says so.
                send(self.broker, CONVERT_QUEUE, CONVERT_ACTOR, {**payload, "attempt": message.attempt + 1})
                log.info("task %s: interrupted by shutdown after %s (%s); handed back to the queue, it resumes "
                         "from the start as attempt %d", message.task_id, took(), fmt, message.attempt + 1)
            else:
                log.info("task %s: interrupted by shutdown after %s (%s); it will resume", message.task_id, took(),
                         fmt)
        except (MediaError, SourceError, InvalidParameter) as exc:
            # The input is at fault: retrying cannot help.
            log.info("task %s failed (%s) after %s: %s", message.task_id, fmt, took(), exc.message)
            reporter.failed(exc.message)
            self._forget_attempts(message.task_id)
        except Exception as exc:
            # Storage or broker trouble, or a bug: Dramatiq tries again (see retries), and on the last attempt
            # the task fails here.
            attempt = self.retries.attempt()
            if self.retries.will_retry(attempt, exc):
                log.warning("task %s: attempt %d failed, will retry: %s", message.task_id, attempt, exc)
                raise
            log.exception("task %s failed after %d attempts", message.task_id, attempt)
            detail = exc.message if isinstance(exc, TransmuteError) else "an internal error"
            reporter.failed(f"The conversion failed after {attempt} attempts: {detail}")
            self._forget_attempts(message.task_id)
        finally:
            if marker is not None:
                self._quietly(self.storage.delete, marker)

    def _cancelled(self, message: ConvertMessage) -> bool:
        """Whether the user cancelled this run (a stalled run's retry: also when the cancel named the stalled
        attempt, the one the gateway knew the task by until the `stalled` event was applied)."""
        return self.cancels.is_cancelled(message.task_id, message.attempt) or bool(
            message.stalls and self.cancels.is_cancelled(message.task_id, message.attempt - 1))

    def _stalled(self, message: ConvertMessage, payload: dict, reporter: TaskReporter, where: str) -> None:
        """A run that stalled is tried once more, as the task's next attempt; one that stalls again fails it."""
        timeout = f"{self.limits.stall_timeout:g} s, TRANSMUTE_STALL_TIMEOUT"
        if message.stalls >= 1:
            log.warning("task %s: stalled again %s; failing it", message.task_id, where)
            reporter.failed(f"The conversion stalled {where}, on its second try as on its first ({timeout}), so it "
                            "was stopped: the source is probably damaged or cut short; check that it plays to the "
                            "end, or convert a shorter span.")
            self._forget_attempts(message.task_id)
            return
        log.warning("task %s: stalled %s; trying it once more", message.task_id, where)
        reporter.stalled(f"The conversion stalled {where} ({timeout}); it is tried once more.")
        again = msgspec.structs.replace(message, attempt=message.attempt + 1, stalls=message.stalls + 1)
        send(self.broker, CONVERT_QUEUE, CONVERT_ACTOR, msgspec.to_builtins(again))

    @property
    def retries(self) -> ConversionRetries:
        """The actor's retry policy (its actor options)."""
        return ConversionRetries(self.limits.max_retries)

    # ----------------------------------------------------------------------------- attempt markers

    def _begin_attempt(self, message: ConvertMessage, reporter: TaskReporter) -> str | None:
        """Count the task's attempts that ended with their worker dying, then mark this one as begun.

        Every attempt leaves a marker object in storage and removes it when it ends, however it ends, as
        long as its process lives. A marker left behind is an attempt whose worker was killed (SIGKILL,
        out of memory, a crash in ffmpeg's libraries...). Once `max_crashes` are left behind, the task
        fails instead of killing one more worker: None. Otherwise the new marker's key.
        """
        prefix = attempts_prefix(message.task_id)
        crashed = self._with_storage_retries("look up the task's earlier attempts",
                                             lambda: self.storage.list_keys(prefix))
        if len(crashed) >= self.limits.max_crashes:
            log.error("task %s: its worker died in %d attempts; failing it", message.task_id, len(crashed))
            reporter.failed(
                f"The conversion stopped its worker {len(crashed)} times in a row (the process was killed or "
                "crashed, for instance out of memory), so it was given up; try a shorter or smaller video."
            )
            self._forget_attempts(message.task_id)
            return None
        marker = f"{prefix}{time.time_ns()}-{uuid.uuid4().hex[:8]}"
        note = f"{socket.gethostname()} pid {os.getpid()}".encode()
        self._with_storage_retries("mark the attempt", lambda: self.storage.put_bytes(marker, note, "text/plain"))
        return marker

    def _forget_attempts(self, task_id: str) -> None:
        """The task is finished: its markers (its own and any crashed attempt's) are no longer needed."""
        try:
            for key in self.storage.list_keys(attempts_prefix(task_id)):
                self.storage.delete(key)
        except StorageError as exc:
            log.warning("task %s: could not remove its attempt markers: %s", task_id, exc.message)

    def _quietly(self, action: Callable[[str], object], key: str) -> None:
        try:
            self._with_storage_retries(f"remove {key}", lambda: action(key), deadline=30)
        except StorageError as exc:
            log.warning("could not remove %s: %s", key, exc.message)

    def _with_storage_retries(self, what: str, action: Callable[[], T], *, deadline: float | None = None) -> T:
        """Run a storage call; while the storage is unreachable, try again with back-off (1, 2, 4... 15 s)
        for up to `storage_retry_seconds`, then raise the last StorageError."""

        def retrying(exc: BaseException, pause: float) -> None:
            log.warning("could not %s (%s); trying again in %g s", what, getattr(exc, "message", exc), pause)

        within = self.limits.storage_retry_seconds if deadline is None else deadline
        return call_with_backoff(action, errors=StorageError, backoff=doubling(1.0, 15.0, within=within),
                                 on_retry=retrying, cancel=self.shutdown)

    # ----------------------------------------------------------------------------- the conversion

    def run(self, message: ConvertMessage, reporter: TaskReporter) -> None:
        params = parse_params(message.params)
        expected = get_format(params.format)
        key = result_key(message.task_id, expected.extension)
        stored = self._with_storage_retries("look up an earlier result", lambda: self.storage.size(key))
        if stored is not None:
            # Delivered again after an attempt that stored the result but whose `done` was not acknowledged:
            # the result is complete (objects are written whole), so report it instead of converting again.
            log.info("task %s: result already stored by an earlier attempt", message.task_id)
            reporter.done(self._result(key, stored, expected))
            return
        stalled = (message.attempt - 1,) if message.stalls else ()
        with self.cancels.running(message.task_id, message.attempt, self.shutdown, also=stalled) as stop:
            self._convert(message, reporter, params, stop)

    def _convert(self, message: ConvertMessage, reporter: TaskReporter, params: Any, stop: Stop) -> None:
        work_dir = make_scratch(self.scratch_dir, f"transmute-{message.task_id}-")  # locked while in use
        try:
            source = work_dir / "source"
            reporter.started()
            if message.source_type == "url" and message.source_url:
                size = download(
                    message.source_url,
                    source,
                    max_bytes=self.limits.max_download_bytes,
                    timeout=self.limits.download_timeout,
                )
                reporter.started(file_size=size)
            elif message.source_key:
                source_key = message.source_key
                if self._with_storage_retries("look up the source", lambda: self.storage.size(source_key)) is None:
                    raise SourceError("The uploaded source is no longer in storage; upload it again.")
                self._with_storage_retries("fetch the source", lambda: self.storage.get_file(source_key, source))
            else:
                raise SourceError("The task has neither an uploaded file nor a URL.")
            output = work_dir / "output"
            watch = StallWatch(self.limits.stall_timeout, stop, reporter.progress)
            try:
                with watch.watching():
                    converted = convert_file(
                        source,
                        output,
                        params,
                        work_dir=work_dir,
                        progress=watch.progress,
                        cancel=stop,
                        timeout=self.limits.conversion_timeout,
                        limits=self.limits.for_conversion(),
                        media=message.source_media,
                    )
            except ConversionCancelled:
                if watch.stalled is not None and not self._cancelled(message):
                    raise ConversionStalled(watch.stalled) from None
                raise
            output_format = converted.output_format
            key = result_key(message.task_id, output_format.extension)
            size = self._with_storage_retries(
                "store the result", lambda: self.storage.put_file(key, output, content_type=output_format.mime_type)
            )
            if stop.cancelled.is_set():
                # Cancelled (or deleted) while the result was being stored: no task points at it any more.
                self._quietly(self.storage.delete, key)
                raise ConversionCancelled("The conversion was cancelled.")
            reporter.done(self._result(key, size, output_format, converted.warnings, converted.metadata))
        finally:
            remove_scratch(work_dir)

    @staticmethod
    def _result(key: str, size: int, output_format, warnings: list[str] | None = None,
                metadata: dict[str, Any] | None = None) -> TaskResult:
        return TaskResult(
            key=key,
            filename=key.rsplit("/", 1)[-1],
            size=size,
            mime_type=output_format.mime_type,
            format=output_format.name,
            warnings=warnings or [],
            metadata=metadata or {},
        )


def register_convert_actor(converter: Converter) -> dramatiq.Actor:
    """Declare the convert actor on the converter's broker."""
    limits = converter.limits
    # Dramatiq's own time limit is only a backstop behind ffmpeg's timeout and the download's.
    time_limit_ms = int((limits.conversion_timeout + limits.download_timeout + 600) * 1000)
    return dramatiq.actor(
        converter,
        broker=converter.broker,
        actor_name=CONVERT_ACTOR,
        queue_name=CONVERT_QUEUE,
        time_limit=time_limit_ms,
        **converter.retries.actor_options(),
    )
