"""How transmute runs: the value the services are given, so none of them has to guess it from a type."""

from __future__ import annotations

import enum


class RunMode(enum.Enum):
    """Embedded: gateway, worker threads and projector in one process on the in-process broker
    (`transmute serve`). Distributed: `transmute api` and `transmute worker` over RabbitMQ."""

    EMBEDDED = "embedded"
    DISTRIBUTED = "distributed"

    @property
    def in_process_broker(self) -> bool:
        return self is RunMode.EMBEDDED
