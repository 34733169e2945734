"""`transmute convert` (one local file) and `transmute formats` (what the plugins provide)."""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from transmute.cli.base import EXIT_USAGE, fail, fail_for
from transmute.core.errors import MediaError, TransmuteError
from transmute.core.formats import ConversionLimits
from transmute.core.models import MediaInfo


def _progress_bar() -> Any:
    from tqdm import tqdm

    return tqdm(total=100, file=sys.stderr, disable=not sys.stderr.isatty(), unit="%", leave=False,
                bar_format="{l_bar}{bar}| {n:.0f}/100 [{elapsed}<{remaining}]")


class _CheckedLater:
    """A click type that shows in --help what a parameter takes, and passes the value on as typed:
    parse_params checks it, so the CLI's messages are the API's (`'fps' must be an integer from 1 to 50`)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        return value


class _IntShown(_CheckedLater, click.IntRange):
    pass


class _FloatShown(_CheckedLater, click.FloatRange):
    pass


class _ChoiceShown(_CheckedLater, click.Choice):
    pass


def _click_type(option: Any) -> click.ParamType:
    """The click type that shows in --help what an option takes (from its declaration in the format's Struct)."""
    if option.type == "integer":
        return _IntShown(min=option.minimum, max=option.maximum)
    if option.type == "number":
        return _FloatShown(min=option.minimum, max=option.maximum)
    if option.type == "choice":
        return _ChoiceShown(option.choices)
    return click.STRING


def format_options(format_name: str) -> list[click.Option]:
    """The command-line options of a format, one per field of its options Struct (`--high-quality`)."""
    from transmute.core.options import describe_options
    from transmute.core.plugins import get_format

    options = []
    for option in describe_options(get_format(format_name).options):
        if option.name == "format":
            continue
        flag = "--" + option.name.replace("_", "-")
        text = option.description.rstrip(".")
        text += "." if option.default in (None, False) else f" (default {option.default})."
        if option.type == "boolean":
            options.append(click.Option([flag], is_flag=True, default=None, help=text))
        else:
            # A string option's forms are in its description; its name reads better than click's "TEXT".
            metavar = option.name.upper() if option.type == "string" else None
            options.append(click.Option([flag], type=_click_type(option), help=text, metavar=metavar))
    return options


def _chosen_format(args: list[str]) -> str:
    """The format named on the command line (`-f X`, `--format X`, `--format=X`), gif when none."""
    for index, arg in enumerate(args):
        if arg in ("-f", "--format") and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--format="):
            return arg.split("=", 1)[1]
        if arg.startswith("-f") and len(arg) > 2:
            return arg[2:]
    return "gif"


class FormatCommand(click.Command):
    """A command whose options are those of the chosen format, read from its plugin when the command line is
    parsed: `transmute convert --format webp --help` lists webp's."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            self.params = [param for param in self.params if not getattr(param, "from_format", False)]
            for option in format_options(_chosen_format(args)):
                option.from_format = True  # type: ignore[attr-defined]
                self.params.append(option)
        except TransmuteError as error:
            fail_for(error)
        return super().parse_args(ctx, args)


@click.command(cls=FormatCommand)
@click.argument("input_path", metavar="INPUT")
@click.option("-o", "--output", "output_path", required=True, help="Where to write the result.")
@click.option("-f", "--format", "format_", help="Output format (default: gif); see 'transmute formats'. "
              "The options below are the chosen format's.")
@click.option("--timeout", type=float, default=None, help="Give up after this many seconds.")
def convert(input_path: str, output_path: str, format_: str | None, timeout: float | None,
            **options: Any) -> None:
    """Convert the video INPUT into OUTPUT (a GIF unless --format says otherwise)."""
    from transmute.core.params import parse_params
    from transmute.core.plugins import get_format
    from transmute.media.conversion import convert_file
    from transmute.settings import LimitsConfig

    values = {name: value for name, value in options.items() if value is not None}
    if format_ is not None:
        values["format"] = format_
    try:
        params = parse_params(values, from_text=True)
        if "://" in input_path or input_path == "-":
            fail(f"INPUT must be a local video file; got {input_path!r}.", EXIT_USAGE)
        # The person at the terminal names their own files: follow a link to the file it points at
        # (the conversion itself accepts only regular files).
        source = Path(input_path).resolve()
        if source.is_dir():
            fail(f"The input {input_path!r} is a folder; give a video file.", EXIT_USAGE)
        if not source.is_file():
            fail(f"The input file {input_path!r} does not exist.", EXIT_USAGE)
        target = Path(output_path)
        if not target.parent.is_dir():
            fail(f"The output folder {str(target.parent)!r} does not exist.", EXIT_USAGE)
        _check_extension(target, get_format(params.format))
        limits = LimitsConfig.from_env().for_conversion()
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="transmute-") as work_dir, _progress_bar() as bar:
            def progress(percent: float) -> None:
                bar.update(max(0.0, percent - bar.n))

            converted = convert_file(source, target, params, limits=limits, work_dir=Path(work_dir),
                                     progress=progress, timeout=timeout)
        for warning in converted.warnings:
            click.echo(f"transmute: warning: {warning}", err=True)
        click.echo(_summary(target, time.monotonic() - started, limits, converted.output_media))
    except (TransmuteError, KeyboardInterrupt) as error:
        fail_for(error)
    except OSError as error:
        fail(f"{error.strerror or error} ({error.filename})." if error.filename else str(error))


def _check_extension(target: Path, output_format: Any) -> None:
    """Refuse an output name whose extension says another format than the one written (x.png holding a GIF)."""
    from transmute.core.plugins import output_formats

    given = target.suffix.lstrip(".")
    if not given or given.lower() == output_format.extension.lower():
        return
    hint = f"name it {target.stem}.{output_format.extension}"
    matching = [name for name, fmt in sorted(output_formats().items()) if fmt.extension.lower() == given.lower()]
    if matching:
        hint += f", or pass --format {matching[0]}"
    fail(f"The output {str(target)!r} ends in .{given}, but the {output_format.name} format writes "
         f".{output_format.extension} files; {hint}.", EXIT_USAGE)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _summary(target: Path, seconds: float, limits: ConversionLimits, media: MediaInfo | None) -> str:
    """One line on what was written: path, size, and (as the plugin told, else when the output can be probed)
    picture and length."""
    from transmute.media.probe import probe

    details = [_size(target.stat().st_size)]
    if media is None:
        # a format without pictures (audio) or one ffprobe cannot read back: size only
        with contextlib.suppress(MediaError):
            media = probe(target, limits=limits)
    if media is not None:
        details.append(f"{media.width}x{media.height}")
        if media.frame_count:
            details.append(f"{media.frame_count} frames")
        details.append(f"{media.duration:.1f} s")
    return f"transmute: wrote {target} ({', '.join(details)}) in {seconds:.1f} s."


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the formats as a JSON list.")
def formats(as_json: bool) -> None:
    """List the output formats the installed plugins provide, with their parameters."""
    from transmute.core.plugins import output_formats

    try:
        found = output_formats()
    except TransmuteError as error:
        fail_for(error)
    described = [found[name].describe() for name in sorted(found)]
    if as_json:
        click.echo(json.dumps(described, indent=2))
        return
    for item in described:
        click.echo(f"{item['name']}  (.{item['extension']}, {item['mime_type']})  {item['description']}")
        for parameter in item["parameters"]:
            default = "none" if parameter["default"] is None else json.dumps(parameter["default"])
            click.echo(f"    {parameter['name']:<20} default {default:<10} {parameter['allowed']}")
