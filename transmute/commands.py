"""The server commands: `transmute serve` (embedded), `transmute api` and `transmute worker` (distributed)."""

from __future__ import annotations

import logging
from pathlib import Path

import click


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per request is uvicorn's job; the HTTP client's own lines are noise here.
    logging.getLogger("httpx").setLevel(logging.WARNING)


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
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning"]))
def serve(host: str, port: int, data_dir: Path, workers: int, log_level: str) -> None:
    """Run everything in one process: the API, conversion threads and the task store (SQLite)."""
    import uvicorn

    from transmute.embedded import create_embedded_app

    _configure_logging(log_level)
    app = create_embedded_app(data_dir, threads=workers)
    click.echo(f"transmute: serving on http://{host}:{port} (data in {data_dir.resolve()})", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Gateway processes (each a replica with its own projector and reconciler).")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning"]))
def api(host: str, port: int, workers: int, log_level: str) -> None:
    """Run the gateway of distributed mode (RabbitMQ, PostgreSQL, S3; configured by TRANSMUTE_* variables)."""
    from transmute.distributed import run_api

    click.echo(f"transmute: gateway on http://{host}:{port} ({workers} process(es))", err=True)
    run_api(host=host, port=port, workers=workers, log_level=log_level)


@click.command()
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Worker processes (a dead one is replaced).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Conversions at once in each process.")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning"]))
def worker(processes: int, threads: int, log_level: str) -> None:
    """Run conversion workers of distributed mode (they need the broker and the object storage only)."""
    from transmute.distributed import run_worker

    click.echo(f"transmute: {processes} worker process(es), {threads} thread(s) each", err=True)
    run_worker(processes=processes, threads=threads, log_level=log_level)


def register(group: click.Group) -> None:
    """Add the server commands to the `transmute` group."""
    group.add_command(serve)
    group.add_command(api)
    group.add_command(worker)
