"""GET /api/formats/: the installed output formats and their parameters (beyond the spec)."""

from __future__ import annotations

import msgspec
from litestar import get

from transmute.core.plugins import output_formats
from transmute.core.wire import FormatInfo, FormatsResponse


@get("/api/formats/", tags=["formats"], summary="The installed output formats and their parameters")
async def list_formats() -> FormatsResponse:
    described = [fmt.describe() for fmt in output_formats().values()]
    return FormatsResponse(formats=msgspec.convert(described, list[FormatInfo]))
