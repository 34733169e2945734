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


def register(group: click.Group) -> None:
    """Add the server commands to the `transmute` group."""
    group.add_command(serve)
