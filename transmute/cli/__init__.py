"""The `transmute` command: one click group, each command registered once, here."""

from __future__ import annotations

import click

from transmute.cli.base import TransmuteGroup
from transmute.cli.convert import convert, formats
from transmute.cli.services import api, healthcheck, serve, worker


@click.group(cls=TransmuteGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="transmute")
def main() -> None:
    """transmute: convert videos to GIF (and any format a plugin adds)."""


for command in (convert, formats, serve, api, worker, healthcheck):
    main.add_command(command)
