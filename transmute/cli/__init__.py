"""The `transmute` command: one click group, each command registered once, here (and imported when run)."""

from __future__ import annotations

import click

from transmute.cli.base import TransmuteGroup

COMMANDS = {
    "convert": "transmute.cli.convert:convert",
    "formats": "transmute.cli.convert:formats",
    "submit": "transmute.cli.submit:submit",
    "serve": "transmute.cli.services:serve",
    "api": "transmute.cli.services:api",
    "worker": "transmute.cli.services:worker",
    "check": "transmute.cli.check:check",
    "healthcheck": "transmute.cli.services:healthcheck",
    "settings": "transmute.cli.settings:settings",
}


@click.group(cls=TransmuteGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="transmute")
def main() -> None:
    """transmute: convert videos to GIF (and any format a plugin adds)."""
    from transmute.core.plugins import use_plugins
    from transmute.settings import PluginConfig

    use_plugins(PluginConfig.from_env().plugins)
