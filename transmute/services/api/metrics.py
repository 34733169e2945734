"""The gateway's Prometheus metrics, served at `GET /metrics` (Litestar's Prometheus controller).

- `transmute_http_requests_total`, `transmute_http_request_duration_seconds`,
  `transmute_http_requests_in_progress`, `transmute_http_requests_error_total`: `RequestMetrics`, labelled
  by method, route template (not the raw path: task ids would explode the label set), status and app name,
  as Litestar's PrometheusMiddleware names them; `RequestMetrics` is a plain ASGI middleware that keeps the
  labelled children (cheap enough for the status route, which Litestar's middleware was not).
  The status is the one the client was answered with, also when a middleware refused the request (401,
  429); a request whose client went away before its answer was complete is counted as 499 (nginx's
  "client closed request"), so 5xx means a server fault.
- `transmute_queue_depth`: the tasks in `queued`, counted in the task store (at most once a second) when
  `/metrics` is scraped and when a create checks TRANSMUTE_MAX_QUEUED.
- `transmute_tasks_created_total{format}`: tasks recorded by the create route, counted as soon as the task is
  recorded (`count_created`), which also makes the new task's id current for the request's logs.

Every metric lives in prometheus_client's default registry, so in embedded mode (`transmute serve`) the
same `/metrics` also shows the worker threads' conversion metrics. With `transmute api --workers N`, set
PROMETHEUS_MULTIPROC_DIR to a shared empty folder to get whole numbers from any process (the deployment
runs one process per pod instead).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, ClassVar

import dramatiq
from dramatiq.middleware import Middleware
from litestar import Request, Response, get
from litestar.exceptions import HTTPException
from litestar.plugins.prometheus import PrometheusController
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Gauge, Histogram

from transmute.core.models import PROJECT_EVENT_ACTOR, Task
from transmute.logs import current_task_id

TASKS_CREATED = Counter("transmute_tasks_created", "Conversion tasks created, by target format", ["format"])
QUEUE_DEPTH = Gauge("transmute_queue_depth", "Tasks waiting to be converted (status queued in the task store)",
                    multiprocess_mode="max")


APP_NAME = "transmute"
_LABELS = ("method", "path", "status_code", "app_name")
HTTP_REQUESTS = Counter("transmute_http_requests_total", "Total requests", _LABELS)
HTTP_DURATION = Histogram("transmute_http_request_duration_seconds", "Request duration, in seconds", _LABELS)
HTTP_ERRORS = Counter("transmute_http_requests_error_total", "Total errors in requests", _LABELS)
HTTP_IN_PROGRESS = Gauge("transmute_http_requests_in_progress", "Total requests currently in progress",
                         _LABELS, multiprocess_mode="livesum")
CLIENT_CLOSED_REQUEST = 499
"""The status counted for a request whose client disconnected before its answer was complete (as nginx does)."""
_NOT_TRAFFIC = ("/metrics", "/health")
"""Probes and scrapes are not traffic: they stay out of the request metrics."""


class RequestMetrics:
    """Counts and times every HTTP request by method, route template and status (a plain ASGI middleware).

    Litestar installs it around each route's handler, so the scope already holds the route's template.
    """

    _children: ClassVar[dict[tuple[str, str, int], tuple[Any, Any]]] = {}
    _in_progress: ClassVar[dict[tuple[str, str], Any]] = {}

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        template = scope.get("path_template") or scope["path"]
        if scope["type"] != "http" or template.startswith(_NOT_TRAFFIC):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        gauge = self._in_progress.get((method, template))
        if gauge is None:
            gauge = self._in_progress[(method, template)] = HTTP_IN_PROGRESS.labels(method, template, 200, APP_NAME)
        status = 500  # unless a response starts
        answered = client_left = False
        start = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True
            await send(message)

        async def receive_watching() -> Message:
            nonlocal client_left
            message = await receive()
            client_left = client_left or (message["type"] == "http.disconnect" and not answered)
            return message

        gauge.inc()
        try:
            await self.app(scope, receive_watching, send_status)
        except HTTPException as refused:
            # Raised by a middleware (key check, rate limit): Litestar turns it into its answer further out.
            status = refused.status_code
            raise
        finally:
            if client_left:
                status = CLIENT_CLOSED_REQUEST
            elapsed = time.perf_counter() - start
            gauge.dec()
            key = (method, template, status)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (HTTP_REQUESTS.labels(method, template, status, APP_NAME),
                                                  HTTP_DURATION.labels(method, template, status, APP_NAME))
            children[0].inc()
            children[1].observe(elapsed)
            if status >= 500:
                HTTP_ERRORS.labels(method, template, status, APP_NAME).inc()


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False

    @get()
    async def get(self, request: Request) -> Response:
        services = request.app.state.get("services")
        if services is not None:
            with contextlib.suppress(Exception):  # the database away: the gauge keeps its last value
                await services.queue_depth.current()
        return await PrometheusController.get.fn(self)


def count_created(task: Task) -> None:
    """Count a task the create route just recorded."""
    TASKS_CREATED.labels(format=task.target_format).inc()
    current_task_id.set(task.id)  # the rest of this request's log lines are about this task


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

