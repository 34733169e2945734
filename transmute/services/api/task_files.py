"""A task's objects in storage, all of them: what a delete and the sweeper's removal of a record take away."""

from __future__ import annotations

import contextlib

from transmute.core.models import Task, attempts_prefix, result_key
from transmute.core.plugins import get_format
from transmute.storage.base import ObjectStorage


def task_keys(storage: ObjectStorage, task: Task) -> list[str]:
    """Every key the task may have in storage: its source, its result (also one a late run stored), its attempt
    markers."""
    keys = {key for key in (task.source_key, task.result.key if task.result else None) if key}
    with contextlib.suppress(Exception):  # a format no longer installed: its result key is the recorded one
        keys.add(result_key(task.id, get_format(task.target_format).extension))
    keys.update(storage.list_keys(attempts_prefix(task.id)))
    return sorted(keys)


def remove_task_files(storage: ObjectStorage, task: Task) -> None:
    """Remove every object of the task (blocking: call it from a thread)."""
    for key in task_keys(storage, task):
        storage.delete(key)
