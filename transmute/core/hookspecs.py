"""The hooks a transmute plugin may implement (one flat module: the whole plugin contract)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:
    from transmute.core.formats import OutputFormat

hookspec = HookspecMarker("transmute")
hookimpl = HookimplMarker("transmute")


@hookspec
def transmute_output_formats() -> list[OutputFormat]:
    """The output formats this plugin provides: each its name, extension, MIME type, options and converter."""
