"""Conversion parameters: one msgspec model, its ranges and defaults, and the cross-field rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from transmute.core.errors import InvalidParameter

Width = Annotated[int, Meta(ge=16, le=4096, description="Output width in pixels; height keeps the aspect ratio.")]
Fps = Annotated[int, Meta(ge=1, le=50, description="Output frame rate.")]
Seconds = Annotated[float, Meta(ge=0, le=86_400, description="A time in the source, in seconds.")]
Speed = Annotated[float, Meta(ge=0.25, le=4.0, description="Playback speed: output length = span / speed.")]
Quality = Literal["low", "medium", "high"]
Dither = Literal[
    "bayer", "none", "floyd_steinberg", "sierra2", "sierra2_4a", "sierra3", "burkes", "atkinson", "heckbert"
]

QUALITIES: tuple[str, ...] = Quality.__args__
DITHERS: tuple[str, ...] = Dither.__args__
DEFAULT_WIDTH = 480
"""Width used when the client gives none and does not keep the original size (never wider than the source)."""


class ConversionParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Options of one conversion. Every field is optional; the defaults give a 480 px wide, 15 fps GIF."""

    format: Annotated[str, Meta(min_length=1, max_length=32, description="Target format.")] = "gif"
    width: Width | None = None
    keep_original_size: bool = False
    fps: Fps = 15
    start_time: Seconds = 0.0
    end_time: Seconds | None = None
    quality: Quality = "medium"
    high_quality: bool = False
    dither: Dither = "bayer"
    speed: Speed = 1.0
    grayscale: bool = False
    reverse: bool = False
    boomerang: bool = False

    def __post_init__(self) -> None:
        if self.end_time is not None and self.end_time <= self.start_time:
            raise InvalidParameter(
                "end_time",
                f"'end_time' must be greater than 'start_time' ({self.start_time:g}); got {self.end_time:g}.",
            )
        self.format = self.format.strip().lower()
        # -0 is 0: keep the stored parameters and ffmpeg's arguments free of "-0".
        self.start_time += 0.0
        if self.end_time is not None:
            self.end_time += 0.0

    def to_dict(self) -> dict[str, Any]:
        """Every parameter, defaults included, as plain JSON-ready values."""
        return msgspec.to_builtins(self)


PARAMETER_NAMES: tuple[str, ...] = ConversionParams.__struct_fields__

ALLOWED: dict[str, str] = {
    "format": "the name of an installed format",
    "width": "an integer from 16 to 4096",
    "keep_original_size": "a boolean (true/false, 1/0, yes/no, on/off)",
    "fps": "an integer from 1 to 50",
    "start_time": "a number of seconds from 0 to 86400",
    "end_time": "a number of seconds from 0 to 86400, greater than start_time",
    "quality": "one of " + ", ".join(QUALITIES),
    "high_quality": "a boolean (true/false, 1/0, yes/no, on/off)",
    "dither": "one of " + ", ".join(DITHERS),
    "speed": "a number from 0.25 to 4",
    "grayscale": "a boolean (true/false, 1/0, yes/no, on/off)",
    "reverse": "a boolean (true/false, 1/0, yes/no, on/off)",
    "boomerang": "a boolean (true/false, 1/0, yes/no, on/off)",
}
"""What each parameter accepts, in words, for error messages and `transmute formats`."""

_BOOLEAN_WORDS = {
    "true": True, "1": True, "yes": True, "on": True,
    "false": False, "0": False, "no": False, "off": False,
}
_BOOLEANS = {name for name in PARAMETER_NAMES if ConversionParams.__struct_defaults__[
    PARAMETER_NAMES.index(name)] is False}


def _from_text(name: str, text: str) -> Any:
    """Turn one form-field string into the JSON value it stands for; leave it as text when unsure."""
    text = text.strip()
    if name in _BOOLEANS:
        return _BOOLEAN_WORDS.get(text.lower(), text)
    if text == "" and name in ("width", "end_time"):
        return None
    return text


def parse_params(values: Mapping[str, Any], *, from_text: bool = False) -> ConversionParams:
    """Validate raw parameters (a JSON object, or form fields when `from_text`) into ConversionParams.

    Raises InvalidParameter naming the first bad field and what it accepts.
    """
    unknown = sorted(set(values) - set(PARAMETER_NAMES))
    if unknown:
        raise InvalidParameter(
            unknown[0], f"Unknown parameter {unknown[0]!r}; known parameters: {', '.join(PARAMETER_NAMES)}."
        )
    raw = {name: _from_text(name, value) if isinstance(value, str) and (from_text or name in _BOOLEANS)
           else value for name, value in values.items()}
    for name, value in raw.items():
        # msgspec would happily read true as 1 in lax mode, and "abc" errors must name the field.
        if name in _BOOLEANS and type(value) is int and value in (0, 1):
            raw[name] = bool(value)
        elif name in _BOOLEANS and not isinstance(value, bool):
            raise InvalidParameter(name, f"{name!r} must be {ALLOWED[name]}; got {_shown(value)}.")
    try:
        return msgspec.convert(raw, ConversionParams, strict=not from_text)
    except msgspec.ValidationError as exc:
        field = _field_of(str(exc))
        raise InvalidParameter(field, f"{field!r} must be {ALLOWED.get(field, 'valid')}; "
                                      f"got {_shown(raw.get(field))}.") from None


def _shown(value: Any, limit: int = 80) -> str:
    """A client's value as an error message quotes it: its repr, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}... ({len(text)} characters)"


def _field_of(message: str) -> str:
    """The field a msgspec validation message points at (`... - at `$.width``)."""
    marker = "at `$."
    if marker in message:
        return message.split(marker, 1)[1].split("`", 1)[0].split("[", 1)[0]
    return "parameters"
