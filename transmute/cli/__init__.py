"""The `transmute` command: one click group, each command registered once, here."""

from __future__ import annotations

import click

from transmute.cli.base import TransmuteGroup
from transmute.cli.check import check
from transmute.cli.convert import convert, formats
from transmute.cli.services import api, healthcheck, serve, worker
from transmute.cli.settings import settings
from transmute.cli.submit import submit
from transmute.core.plugins import use_plugins
from transmute.settings import PluginConfig


@click.group(cls=TransmuteGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="transmute")
def main() -> None:
    """transmute: convert videos to GIF (and any format a plugin adds)."""
    use_plugins(PluginConfig.from_env().plugins)


for command in (convert, formats, submit, serve, api, worker, check, healthcheck, settings):
    main.add_command(command)
