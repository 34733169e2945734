"""The convert actor: fetch a task's source, convert it with the format's plugin, store the result.

It reports every change of state as an event and never writes the task store. Delivery is at least
once, so every step is idempotent: the result key is fixed by the task id, and the projector ignores
events of a task that already finished.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import dramatiq
import msgspec
from dramatiq.middleware import CurrentMessage

from transmute.core.config import LimitsConfig
from transmute.core.conversion import convert_file
from transmute.core.errors import (
    ConversionCancelled,
    InvalidParameter,
    MediaError,
    SourceError,
    StorageError,
    TransmuteError,
)
from transmute.core.fetch import download
from transmute.core.models import CONVERT_ACTOR, CONVERT_QUEUE, ConvertMessage, TaskResult
from transmute.core.params import parse_params
from transmute.core.storage import ObjectStorage
from transmute.services.worker.events import TaskReporter

log = logging.getLogger("transmute.worker")


def result_key(task_id: str, extension: str) -> str:
    """Where a task's result is stored; fixed by the task id, so a redelivered task overwrites, not adds."""
    return f"results/task_{task_id}_result.{extension}"


@dataclass
class Converter:
    """What the convert actor needs: the broker to report on, the storage, and the limits."""

    broker: dramatiq.Broker
    storage: ObjectStorage
    limits: LimitsConfig
    scratch_dir: Path | None = None
    shutdown: threading.Event = field(default_factory=threading.Event)
    """Set when the process stops: running conversions end at once and their tasks stay unfinished."""

    def __call__(self, payload: dict) -> None:
        message = msgspec.convert(payload, ConvertMessage)
        reporter = TaskReporter(self.broker, message.task_id)
        try:
            self.run(message, reporter)
        except ConversionCancelled:
            if not self.shutdown.is_set():
                raise
            # Not the input's fault: the task stays unfinished and is resumed when a worker starts again.
            log.info("task %s: interrupted by shutdown; it will resume", message.task_id)
        except (MediaError, SourceError, InvalidParameter) as exc:
            # The input is at fault: retrying cannot help.
            log.info("task %s failed: %s", message.task_id, exc.message)
            reporter.failed(exc.message)
        except Exception as exc:
            # Storage or broker trouble, or a bug: retry with back-off, and fail the task on the last try.
            current = CurrentMessage.get_current_message()
            retries = current.options.get("retries", 0) if current else self.limits.max_retries
            if retries < self.limits.max_retries:
                log.warning("task %s: attempt %d failed, will retry: %s", message.task_id, retries + 1, exc)
                raise
            log.exception("task %s failed after %d attempts", message.task_id, retries + 1)
            detail = exc.message if isinstance(exc, TransmuteError) else "an internal error"
            reporter.failed(f"The conversion failed after {retries + 1} attempts: {detail}")

    def run(self, message: ConvertMessage, reporter: TaskReporter) -> None:
        params = parse_params(message.params)
        work_dir = Path(tempfile.mkdtemp(prefix=f"transmute-{message.task_id}-", dir=self.scratch_dir))
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
                try:
                    self.storage.get_file(message.source_key, source)
                except StorageError as exc:
                    if self.storage.size(message.source_key) is None:
                        raise SourceError("The uploaded source is no longer in storage; upload it again.") from exc
                    raise
            else:
                raise SourceError("The task has neither an uploaded file nor a URL.")
            output = work_dir / "output"
            output_format = convert_file(
                source,
                output,
                params,
                work_dir=work_dir,
                progress=reporter.progress,
                cancel=self.shutdown,
                timeout=self.limits.conversion_timeout,
            )
            key = result_key(message.task_id, output_format.extension)
            size = self.storage.put_file(key, output, content_type=output_format.mime_type)
            reporter.done(
                TaskResult(
                    key=key,
                    filename=key.rsplit("/", 1)[-1],
                    size=size,
                    mime_type=output_format.mime_type,
                    format=output_format.name,
                )
            )
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)


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
        max_retries=limits.max_retries,
        min_backoff=1_000,
        max_backoff=30_000,
        time_limit=time_limit_ms,
    )
