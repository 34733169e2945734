"""Swagger UI at /schema/swagger from the files the `swagger-ui-py` package installs, served at /swagger-ui/: the
docs page loads nothing from another host (an offline install shows it too)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from litestar import Response, Router
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from transmute.services.api.errors import error_response

ASSETS = "/swagger-ui"


def swagger_ui_folder() -> Path:
    """The swagger-ui dist files of swagger-ui-py (found without importing it: only its files are used)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The swagger-ui-py package is missing: reinstall transmute.")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def swagger_plugin() -> SwaggerRenderPlugin:
    """Litestar's Swagger page, pointed at our copies of its script and style."""
    return SwaggerRenderPlugin(
        js_url=f"{ASSETS}/swagger-ui-bundle.js",
        css_url=f"{ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f'<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">',
    )


def swagger_assets() -> Router:
    """The route serving the swagger-ui files."""
    return create_static_files_router(path=ASSETS, directories=[swagger_ui_folder()], include_in_schema=False,
                                      name="swagger-ui")


async def _not_found_as_json(response: Response) -> Response:
    """Litestar answers an unknown page under /schema (/schema/redoc: not offered) with an HTML 404; every error of
    this server is JSON."""
    if response.status_code != 404:
        return response
    return error_response(404, "No such page of the API docs: Swagger UI is at /schema (also /schema/swagger), the "
                               "OpenAPI document at /schema/openapi.json.")


def docs_router(path: str) -> Router:
    """The router Litestar hangs the docs pages on, with its 404s made JSON."""
    return Router(path, route_handlers=[], include_in_schema=False, after_request=_not_found_as_json)
