"""The server commands: `transmute serve` (embedded), `transmute api` and `transmute worker` (distributed),
and `transmute healthcheck worker` (the worker's container probe).

What they say about themselves is logged (so with TRANSMUTE_LOG_FORMAT=json every line is JSON).
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from transmute.logs import LOG_LEVEL_ENV, configure_logging
from transmute.settings import LoggingConfig, OpsConfig

log = logging.getLogger("transmute")
HEARTBEAT_FILE_ENV = OpsConfig.env_name("heartbeat_file")

LOG_LEVEL_OPTION = click.option(
    "--log-level", default=lambda: LoggingConfig.from_env().level, show_default=False,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help=f"Least severe log lines written (default: {LOG_LEVEL_ENV}, else info).")
"""Every server command's --log-level: TRANSMUTE_LOG_LEVEL, documented as the default, is its default."""


def check_plugins() -> None:
    """Load the format plugins now, before anything starts: a plugin that fails to load or breaks the contract
    stops the command with one line naming it (a PluginError), not a traceback from a server's start-up hook
    or a worker process that dies over and over."""
    from transmute.core.plugins import output_formats

    output_formats()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option(
    "--data-dir",
    default="./data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the task database, uploads and results are kept.",
)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="Conversion threads.")
@LOG_LEVEL_OPTION
def serve(host: str, port: int, data_dir: Path, workers: int, log_level: str) -> None:
    """Run everything in one process: the API, conversion threads and the task store (SQLite)."""
    import uvicorn

    from transmute.cli.embedded import create_embedded_app
    from transmute.logs import uvicorn_log_config
    from transmute.services.api.server import uvicorn_options

    configure_logging(log_level)
    check_plugins()
    app = create_embedded_app(data_dir, threads=workers)
    log.info("transmute: serving on http://%s:%d (data in %s)", host, port, data_dir.resolve())
    uvicorn.run(app, host=host, port=port, log_level=log_level, log_config=uvicorn_log_config(),
                timeout_graceful_shutdown=10, **uvicorn_options())


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Gateway processes (each a replica with its own projector and reconciler).")
@LOG_LEVEL_OPTION
def api(host: str, port: int, workers: int, log_level: str) -> None:
    """Run the gateway of distributed mode (RabbitMQ, PostgreSQL, S3; configured by TRANSMUTE_* variables)."""
    from transmute.cli.check import API_CHECKS, check_or_exit
    from transmute.services.api.runner import run_api

    configure_logging(log_level)
    check_plugins()
    check_or_exit(API_CHECKS)
    run_api(host=host, port=port, workers=workers, log_level=log_level)


@click.command()
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Worker processes (a dead one is replaced).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Conversions at once in each process.")
@LOG_LEVEL_OPTION
def worker(processes: int, threads: int, log_level: str) -> None:
    """Run conversion workers of distributed mode (they need the broker and the object storage only)."""
    from transmute.cli.check import WORKER_CHECKS, check_or_exit
    from transmute.services.worker.supervisor import run_worker

    configure_logging(log_level)
    check_plugins()
    check_or_exit(WORKER_CHECKS)
    log.info("transmute: %d worker process(es), %d thread(s) each", processes, threads)
    run_worker(processes=processes, threads=threads, log_level=log_level)


@click.group()
def healthcheck() -> None:
    """Exit 0 when a transmute process in this container is healthy, 1 with one line otherwise."""


@healthcheck.command("worker")
@click.option("--max-age", default=60.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds the heartbeat file may be old.")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"The heartbeat file (default: {HEARTBEAT_FILE_ENV}, else "
                   f"{OpsConfig.model_fields['heartbeat_file'].default}).")
@click.option("--instance", default=0, show_default=True, type=click.IntRange(0),
              help="Which worker on this host: the nth started while others ran (its start-up log says).")
def healthcheck_worker(max_age: float, path: Path | None, instance: int) -> None:
    """Is `transmute worker` alive? Its heartbeat file is touched every 10 s while its processes' worker
    threads and broker consumers run (the Deployment's liveness, readiness and startup probe)."""
    from transmute.services.worker.heartbeat import check_heartbeat, heartbeat_age
    from transmute.services.worker.instance import instance_heartbeat

    path = path or instance_heartbeat(OpsConfig.from_env().heartbeat_file, instance)
    problem = check_heartbeat(path, max_age)
    if problem is not None:
        from transmute.cli.base import fail

        fail(problem)
    click.echo(f"transmute: worker heartbeat {heartbeat_age(path) or 0:.0f} s old.")
