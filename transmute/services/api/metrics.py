"""The gateway's Prometheus metrics, served at `GET /metrics` (Litestar's Prometheus plugin).

- `transmute_http_requests_total`, `transmute_http_request_duration_seconds`,
  `transmute_http_requests_in_progress`, `transmute_http_requests_error_total`: Litestar's middleware,
  labelled by method, route template (not the raw path: task ids would explode the label set), status.
- `transmute_tasks_created_total{format}`: tasks recorded by the create route, counted where the task is
  recorded (`CountingTaskStore.create`), which also makes the new task's id current for the request's logs.

Every metric lives in prometheus_client's default registry, so in embedded mode (`transmute serve`) the
same `/metrics` also shows the worker threads' conversion metrics. With `transmute api --workers N`, set
PROMETHEUS_MULTIPROC_DIR to a shared empty folder to get whole numbers from any process (the deployment
runs one process per pod instead).
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import Counter

from transmute.core.logs import current_task_id
from transmute.core.models import PROJECT_EVENT_ACTOR, Task
from transmute.core.store import TaskStore

TASKS_CREATED = Counter("transmute_tasks_created", "Conversion tasks created, by target format", ["format"])


def prometheus_config() -> PrometheusConfig:
    # Probes and scrapes are not traffic: leave them out of the request metrics.
    return PrometheusConfig(app_name="transmute", prefix="transmute_http", group_path=True,
                            exclude=[r"^/metrics", r"^/health"])


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False


class CountingTaskStore(TaskStore):
    """The task store, counting the tasks it records (the create route is the only caller of `create`)."""

    async def create(self, **fields: Any) -> Task:  # type: ignore[override]
        task = await super().create(**fields)
        TASKS_CREATED.labels(format=task.target_format).inc()
        current_task_id.set(task.id)  # the rest of this request's log lines are about this task
        return task


class ProjectorLogContext(Middleware):
    """Log lines written while the projector applies an event carry the event's `task_id`."""

    def __init__(self) -> None:
        self._local = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        if message.actor_name == PROJECT_EVENT_ACTOR:
            payload = message.args[0] if message.args else None
            task_id = payload.get("task_id") if isinstance(payload, dict) else None
            self._local.token = current_task_id.set(task_id)

    def _leave(self) -> None:
        token = getattr(self._local, "token", None)
        if token is not None:
            self._local.token = None
            current_task_id.reset(token)

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        self._leave()

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._leave()


def install_projector_log_context(broker: dramatiq.Broker) -> None:
    if not any(isinstance(item, ProjectorLogContext) for item in broker.middleware):
        broker.add_middleware(ProjectorLogContext())

