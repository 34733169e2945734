"""`transmute submit`: send videos (files or URLs) to a transmute server, follow them, fetch the results."""

from __future__ import annotations

import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from transmute.cli.base import EXIT_FAILED, EXIT_USAGE, fail

DEFAULT_JOBS = 4


@dataclass
class Outcome:
    """What became of one input: one row of the summary table."""

    source: str
    task_id: str = "-"
    status: str = "error"
    detail: str = ""


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`-p key=value` pairs as options: JSON values where they read as JSON (`320`, `true`), text otherwise."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"-p takes key=value, like -p width=320; got {pair!r}.", EXIT_USAGE)
        try:
            options[key.strip()] = json.loads(value)
        except ValueError:
            options[key.strip()] = value
    return options


class Submission:
    """Several inputs sent at once (at most `jobs` at a time), each with its bars, and what became of each."""

    def __init__(self, client: Any, progress: Any, options: dict[str, Any], *, wait: bool, output: Path | None,
                 timeout: float | None) -> None:
        self.client = client
        self.progress = progress
        self.options = options
        self.wait = wait or output is not None
        self.output = output
        self.timeout = timeout
        self._names = threading.Lock()

    def run(self, sources: list[str], jobs: int) -> list[Outcome]:
        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="submit")
        try:
            futures = [pool.submit(self.one, source) for source in sources]
            return [future.result() for future in futures]
        finally:
            # Interrupted: inputs not started never start; those under way end when the caller closes the client.
            pool.shutdown(wait=False, cancel_futures=True)

    def one(self, source: str) -> Outcome:
        from transmute.client import TransmuteError
        from transmute.client.uploads import is_url

        outcome = Outcome(source)
        name = source if is_url(source) else Path(source).name
        bar = self.progress.add_task(f"{name}: upload", total=None)
        try:
            created = self.client.create(source, upload_progress=lambda sent, total: self.progress.update(
                bar, completed=sent, total=total), **self.options)
            outcome.task_id, outcome.status = created.task_id, created.status
            if not self.wait:
                self.progress.update(bar, description=f"{name}: {created.status}", completed=1, total=1)
                return outcome
            self.progress.update(bar, description=f"{name}: convert", completed=0, total=100)
            final = self.client.wait(created.task_id, timeout=self.timeout, on_progress=lambda status: self.progress
                                     .update(bar, description=f"{name}: {status.status}", completed=status.progress))
            outcome.status, outcome.detail = final.status, final.error_message
            if final.status == "done" and self.output is not None:
                outcome.detail = str(self._download(created.task_id, source))
        except TransmuteError as error:
            outcome.detail = error.message
            if outcome.task_id != "-" and error.status_code is None and self.wait:
                outcome.status = "unfinished"  # gave up waiting (timeout), or the server went away
        except OSError as error:
            outcome.detail = f"{error.strerror or error} ({error.filename})" if error.filename else str(error)
        return outcome

    def _download(self, task_id: str, source: str) -> Path:
        """The result, named after its input (`clip.mp4` gives `clip.gif`) unless that name is taken."""
        assert self.output is not None
        written = self.client.download(task_id, self.output)
        stem = Path(source.rstrip("/").rsplit("/", 1)[-1]).stem or written.stem
        with self._names:
            wanted = written.with_name(stem + written.suffix)
            if wanted != written and not wanted.exists():
                written = written.replace(wanted)
        return written


def summary_table(outcomes: list[Outcome]) -> Any:
    from rich.table import Table

    table = Table(title="transmute submit", title_justify="left")
    table.add_column("input", overflow="fold")
    table.add_column("task")
    table.add_column("status")
    table.add_column("result", overflow="fold")
    for outcome in outcomes:
        style = {"done": "green", "queued": None, "running": None}.get(outcome.status, "red")
        table.add_row(outcome.source, outcome.task_id, outcome.status, outcome.detail, style=style)
    return table


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--server", metavar="URL", help="The transmute server (default: TRANSMUTE_SERVER).")
@click.option("--api-key", metavar="KEY", help="Sent as 'Authorization: Bearer' (default: TRANSMUTE_API_KEY).")
@click.option("-f", "--format", "format_", metavar="F", help="Output format (default: the server's, gif).")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A conversion option, like -p width=320 -p fps=12 (repeat it); see 'transmute formats'.")
@click.option("--wait", is_flag=True, help="Follow each conversion to its end (exit 1 when any failed).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Download the results into DIR (implies --wait).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=DEFAULT_JOBS, show_default=True,
              help="Inputs sent and followed at once.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop waiting for a task after this long (default: no limit).")
def submit(inputs: tuple[str, ...], server: str | None, api_key: str | None, format_: str | None,
           params: tuple[str, ...], wait: bool, output: Path | None, jobs: int, timeout: float | None) -> None:
    """Send INPUT... (video files or http(s) URLs) to a transmute server as conversion tasks.

    Shows a bar for the upload and the conversion of each, then a table of what became of each; the exit
    status is 1 when any could not be created or (with --wait) did not end done.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from transmute.client import Client
    from transmute.client.uploads import is_url
    from transmute.settings import ClientConfig

    config = ClientConfig.from_env()
    server = server or config.server
    if not server:
        fail("Say which server: --server URL, or set TRANSMUTE_SERVER.", EXIT_USAGE)
    if not server.startswith(("http://", "https://")):
        fail(f"--server must be an http:// or https:// URL; got {server!r}.", EXIT_USAGE)
    for source in inputs:
        if not is_url(source) and not Path(source).is_file():
            fail(f"The input {source!r} is neither a file nor an http(s) URL.", EXIT_USAGE)
    options = parse_params(params) | ({"format": format_} if format_ else {})
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)

    stderr = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Client(server, api_key=api_key or config.api_key or None) as client, \
            Progress(*columns, console=stderr, disable=not stderr.is_terminal) as progress:
        outcomes = Submission(client, progress, options, wait=wait, output=output, timeout=timeout).run(
            list(inputs), jobs)
    Console(soft_wrap=False).print(summary_table(outcomes))
    succeeded = {"done"} if wait or output is not None else {"queued", "running", "done"}
    if any(outcome.status not in succeeded for outcome in outcomes):
        sys.exit(EXIT_FAILED)
