"""Format options: reusable constraints, the options every video-output format shares, and how raw request
values (JSON, form fields, command-line text) become a format's typed options, or a 400 naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import msgspec
from msgspec import Meta

from transmute.core.errors import InvalidParameter

BOOLEAN_WORDS = "true/false, 1/0, yes/no, on/off"

Width = Annotated[int, Meta(ge=16, le=4096, description="Output width in pixels; height keeps the aspect ratio.")]
Fps = Annotated[int, Meta(ge=1, le=50, description="Output frame rate.")]
StartTime = Annotated[float, Meta(ge=0, le=86_400, description="Start of the span in the source, in seconds.",
                                  extra={"accepts": "a number of seconds from 0 to 86400"})]
EndTime = Annotated[float, Meta(ge=0, le=86_400, description="End of the span in the source, in seconds (clamped to "
                                                          "the source's end); after start_time.",
                                extra={"accepts": "a number of seconds from 0 to 86400, greater than start_time"})]
Speed = Annotated[float, Meta(ge=0.25, le=4.0, description="Playback speed: output length = span / speed.")]
Percent = Annotated[int, Meta(ge=0, le=100)]

DEFAULT_WIDTH = 480
"""Width used when the client gives none and does not keep the original size (never wider than the source)."""


class FormatOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every format's options: the format itself. A format with no options of its own uses it as it is;
    a parsed instance is what travels in the convert message and reaches the plugin."""

    format: Annotated[str, Meta(min_length=1, max_length=32, description="Target format.")] = "gif"

    def to_dict(self) -> dict[str, Any]:
        """Every option, defaults included, as plain JSON-ready values."""
        return msgspec.to_builtins(self)


class VideoOptions(FormatOptions, kw_only=True):
    """The options every video-output format shares (the spec's): which span, at what size, rate and speed,
    in which order and colours. A format extends it with its own, or starts from FormatOptions instead."""

    width: Width | None = None
    keep_original_size: Annotated[bool, Meta(description="Keep the source's display size; width is ignored.")] = False
    fps: Fps = 15
    start_time: StartTime = 0.0
    end_time: EndTime | None = None
    speed: Speed = 1.0
    grayscale: Annotated[bool, Meta(description="Gray output.")] = False
    reverse: Annotated[bool, Meta(description="Play the span backwards.")] = False
    boomerang: Annotated[bool, Meta(description="Play the span forward, then backward.")] = False

    def __post_init__(self) -> None:
        if self.end_time is not None and self.end_time <= self.start_time:
            raise InvalidParameter(
                "end_time",
                f"'end_time' must be greater than 'start_time' ({self.start_time:g}); got {self.end_time:g}.",
            )
        # -0 is 0: keep the stored options and ffmpeg's arguments free of "-0".
        self.start_time += 0.0
        if self.end_time is not None:
            self.end_time += 0.0


class OptionInfo(msgspec.Struct, kw_only=True):
    """One option as `/api/formats/`, `transmute formats` and the CLI show it."""

    name: str
    type: str
    """boolean, integer, number, string or choice."""
    default: Any = None
    description: str = ""
    allowed: str = ""
    """What it accepts, in words (the same words a 400 uses)."""
    minimum: float | None = None
    maximum: float | None = None
    choices: list[str] | None = None


@cache
def describe_options(options: type[FormatOptions]) -> tuple[OptionInfo, ...]:
    """The options of a Struct, in declaration order, read from its type annotations and `Meta` (`format`,
    which every Struct has, first)."""
    info = msgspec.inspect.type_info(options)
    hints = get_type_hints(options, include_extras=True)
    described = tuple(_describe(field, hints[field.name]) for field in info.fields)  # type: ignore[attr-defined]
    (chosen,) = (option for option in described if option.name == "format")
    return (msgspec.structs.replace(chosen, allowed="the name of an installed format"),
            *(option for option in described if option.name != "format"))


def accepts(options: type[FormatOptions], name: str) -> str:
    """What the option `name` accepts, in words."""
    return next(option.allowed for option in describe_options(options) if option.name == name)


def _number(value: float) -> str:
    """A bound as a person writes it: 1048576, not 1.04858e+06 (`:g` keeps only 6 digits)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _describe(field: Any, annotation: Any) -> OptionInfo:
    kind, description, extra, default = field.type, "", {}, field.default
    if isinstance(kind, msgspec.inspect.UnionType):  # `X | None`: the X
        kind = next(choice for choice in kind.types if not isinstance(choice, msgspec.inspect.NoneType))
    while isinstance(kind, msgspec.inspect.Metadata):
        description = description or (kind.extra_json_schema or {}).get("description", "")
        extra = {**(kind.extra or {}), **extra}
        kind = kind.type
    default = None if default is msgspec.NODEFAULT else default
    if isinstance(kind, msgspec.inspect.BoolType):
        option = OptionInfo(name=field.name, type="boolean", allowed=f"a boolean ({BOOLEAN_WORDS})")
    elif isinstance(kind, msgspec.inspect.IntType | msgspec.inspect.FloatType):
        integer = isinstance(kind, msgspec.inspect.IntType)
        low, high = kind.ge, kind.le
        words = "an integer" if integer else "a number"
        allowed = f"{words} from {_number(low)} to {_number(high)}" if low is not None and high is not None else words
        option = OptionInfo(name=field.name, type="integer" if integer else "number", allowed=allowed,
                            minimum=low, maximum=high)
    elif isinstance(kind, msgspec.inspect.LiteralType):
        choices = [str(value) for value in _literal_values(annotation) or kind.values]
        option = OptionInfo(name=field.name, type="choice", allowed="one of " + ", ".join(choices), choices=choices)
    else:
        option = OptionInfo(name=field.name, type="string", allowed="text")
    return msgspec.structs.replace(option, default=default, description=description,
                                   allowed=extra.get("accepts", option.allowed))


def _literal_values(annotation: Any) -> tuple[Any, ...]:
    """The values of the Literal inside an annotation, in the order written (msgspec sorts them)."""
    while get_origin(annotation) is not None and get_origin(annotation) is not Literal:
        annotation = next((arg for arg in get_args(annotation) if arg is not type(None)), None)
    return get_args(annotation) if get_origin(annotation) is Literal else ()


def parse_options(options: type[FormatOptions], values: Mapping[str, Any], *, from_text: bool = False,
                  format_name: str = "") -> FormatOptions:
    """Validate raw values (a JSON object, or text from a form or a command line when `from_text`) into
    `options`. Raises InvalidParameter naming the first bad field and what it accepts."""
    described = {option.name: option for option in describe_options(options)}
    unknown = sorted(set(values) - set(described))
    if unknown:
        owner = f"the {format_name} format" if format_name else "this format"
        known = ", ".join(described)
        raise InvalidParameter(unknown[0], f"Unknown parameter {unknown[0]!r} for {owner}; known parameters: "
                                           f"{known}.")
    raw: dict[str, Any] = {}
    for name, value in values.items():
        option = described[name]
        if isinstance(value, str) and (from_text or option.type == "boolean"):
            value = _from_text(option, value)
        if option.type == "boolean":
            # msgspec would happily read true as 1 in lax mode, and "abc" errors must name the field.
            if type(value) is int and value in (0, 1):
                value = bool(value)
            elif not isinstance(value, bool):
                raise InvalidParameter(name, f"{name!r} must be {option.allowed}; got {shown(value)}.")
        raw[name] = value
    try:
        return msgspec.convert(raw, options, strict=not from_text)
    except msgspec.ValidationError as exc:
        field = _field_of(str(exc))
        allowed = described[field].allowed if field in described else "valid"
        raise InvalidParameter(field, f"{field!r} must be {allowed}; got {shown(raw.get(field))}.") from None


_BOOLEAN_VALUES = {"true": True, "1": True, "yes": True, "on": True,
                   "false": False, "0": False, "no": False, "off": False}


def _from_text(option: OptionInfo, text: str) -> Any:
    """The JSON value a form field's text stands for; the text itself when unsure."""
    text = text.strip()
    if option.type == "boolean":
        return _BOOLEAN_VALUES.get(text.lower(), text)
    if text == "" and option.default is None:
        return None
    return text


def shown(value: Any, limit: int = 80) -> str:
    """A client's value as an error message quotes it: its repr, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}... ({len(text)} characters)"


def _field_of(message: str) -> str:
    """The field a msgspec validation message points at (`... - at `$.width``)."""
    marker = "at `$."
    if marker in message:
        return message.split(marker, 1)[1].split("`", 1)[0].split("[", 1)[0]
    return "parameters"
