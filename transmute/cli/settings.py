"""`transmute settings`: every `TRANSMUTE_*` setting with its current value and where it came from, secrets
masked; `--markdown` writes docs/settings.md from the same declarations."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

import click

from transmute.cli.base import EXIT_USAGE, fail
from transmute.settings import SECTIONS, AtLeast, ConfigError, Section

MASK = "****"
TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "text", Path: "path"}


@dataclass(frozen=True)
class Row:
    """One setting as `transmute settings` shows it."""

    section: str
    name: str
    type: str
    default: str
    meaning: str
    secret: bool
    value: str = ""
    source: str = "default"


def type_name(field: Any) -> str:
    """How the docs name a field's type: `number, at least 1`, `text or json`, `list`..."""
    annotation = field.annotation
    if get_origin(annotation) is Literal:
        return " or ".join(f"`{choice}`" for choice in get_args(annotation))
    if get_origin(annotation) is UnionType:
        annotation = next(arg for arg in get_args(annotation) if arg is not NoneType)
    name = TYPE_NAMES.get(annotation, "list" if get_origin(annotation) is tuple else "text")
    minimum = next((item.minimum for item in field.metadata if isinstance(item, AtLeast)), None)
    return name if minimum is None else f"{name}, at least {minimum:g}"


def shown(value: Any) -> str:
    """A value as the environment would spell it."""
    if value is None or value == () or value == "":
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float | int):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "/".join(map(str, reversed(value))) if len(value) == 2 and isinstance(value[1], int) \
            else ",".join(map(str, value))
    return str(value)


def masked(text: str) -> str:
    """A secret as it may be shown: a URL keeps all but its password, anything else is masked whole."""
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme and parts.netloc:
        if parts.password is None:
            return text
        return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)).geturl()
    return MASK


def declared(section: type[Section]) -> list[Row]:
    """The section's settings as declared: name, type, default and meaning."""
    rows = []
    for name, field in section.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        default = str(extra.get("shown_default", "")) or shown(field.default) or "unset"
        rows.append(Row(section=section.title, name=section.env_name(name), type=type_name(field), default=default,
                        meaning=field.description or "", secret=bool(extra.get("secret"))))
    return rows


def current(section: type[Section]) -> list[Row]:
    """The section's settings with their values from the environment (a bad one: ConfigError)."""
    loaded = section.from_env()
    from_env = section.set_by_environment()
    rows = []
    for row, name in zip(declared(section), section.model_fields, strict=True):
        value = shown(getattr(loaded, name))
        rows.append(Row(**{**asdict(row), "value": masked(value) if row.secret else value,
                           "source": "environment" if name in from_env else "default"}))
    return rows


def markdown() -> str:
    """docs/settings.md: every setting, grouped by concern."""
    lines = ["# Settings", "",
             "Every setting is an environment variable; an empty one counts as unset. Generated from",
             "`transmute/settings.py` by `transmute settings --markdown > docs/settings.md` (a test fails when",
             "this file and the declarations differ). `transmute settings` shows the values a process would use.", ""]
    for section in SECTIONS:
        lines += [f"## {section.title}", "", (section.__doc__ or "").strip(), "",
                  "| variable | type | default | meaning |", "|---|---|---|---|"]
        for row in declared(section):
            secret = " Secret (masked by `transmute settings`; a URL's password only)." if row.secret else ""
            cell = row.meaning.replace("|", "\\|")
            lines.append(f"| `{row.name}` | {row.type} | {row.default} | {cell}{secret} |")
        lines.append("")
    return "\n".join(lines)


@click.command("settings")
@click.option("--json", "as_json", is_flag=True, help="Print the settings as a JSON list.")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print docs/settings.md (the declarations only).")
def settings(as_json: bool, as_markdown: bool) -> None:
    """Show every TRANSMUTE_* setting: its value from the environment and where it came from (secrets masked)."""
    if as_markdown:
        click.echo(markdown(), nl=False)
        return
    try:
        rows = [row for section in SECTIONS for row in current(section)]
    except ConfigError as error:
        fail(error.message, EXIT_USAGE)
    if as_json:
        click.echo(json.dumps([{key: value for key, value in asdict(row).items() if key != "meaning"}
                               for row in rows], indent=2))
        return
    width = max(len(row.name) for row in rows)
    for title in dict.fromkeys(row.section for row in rows):
        click.echo(f"{title}:")
        for row in (row for row in rows if row.section == title):
            click.echo(f"  {row.name:<{width}}  {row.value or '(unset)'}  ({row.source})")
