"""A conversion request's parameters: the format it names, and that format's options, validated once at the
edge (API, CLI) into the format's own typed Struct."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transmute.core.errors import InvalidParameter
from transmute.core.options import FormatOptions, parse_options, shown
from transmute.core.plugins import PluginManager, get_format

DEFAULT_FORMAT = "gif"


def parse_params(values: Mapping[str, Any], *, from_text: bool = False,
                 manager: PluginManager | None = None) -> FormatOptions:
    """Validate raw parameters (a JSON object, or form fields and command-line text when `from_text`) into
    the options of the format they name (gif when none): an instance of that format's `options` Struct.

    Raises InvalidParameter (UnknownFormat for a format no plugin provides) naming the first bad field and
    what it accepts.
    """
    name = values.get("format", DEFAULT_FORMAT)
    if not isinstance(name, str) or not 0 < len(name.strip()) <= 32:
        raise InvalidParameter("format", f"'format' must be the name of an installed format; got {shown(name)}.")
    output_format = get_format(name, manager)
    return parse_options(output_format.options, {**values, "format": output_format.name}, from_text=from_text,
                         format_name=output_format.name)
