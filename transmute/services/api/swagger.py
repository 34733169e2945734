"""Swagger UI at /schema/swagger from the files the `swagger-ui-py` package installs, served at /swagger-ui/: the
docs page loads nothing from another host (an offline install shows it too)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from litestar import Router
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

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
