"""The hooks a transmute plugin may implement."""

from __future__ import annotations

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("transmute")
hookimpl = HookimplMarker("transmute")


@hookspec
def transmute_output_formats():
    """Return the OutputFormat objects this plugin provides."""
