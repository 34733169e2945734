"""The plugin manager: built-in and third-party format plugins, found through entry points."""

from __future__ import annotations

from functools import cache

import pluggy

from transmute.core import hookspecs
from transmute.core.errors import PluginError, UnknownFormat
from transmute.core.formats import OutputFormat

ENTRY_POINT_GROUP = "transmute.plugins"
_pinned = ""
"""The plugins the process-wide manager loads: TRANSMUTE_PLUGINS, handed in by the process's start (use_plugins)."""


def create_plugin_manager(only: str = "") -> pluggy.PluginManager:
    """A manager with every plugin of the entry-point group loaded, or only those named in `only`.

    `only` (the setting TRANSMUTE_PLUGINS) is a comma-separated list of entry-point names; built-in plugins
    (such as `gif`) are registered the same way as third-party ones.
    """
    manager = pluggy.PluginManager("transmute")
    manager.add_hookspecs(hookspecs)
    names = {name.strip() for name in only.split(",") if name.strip()}
    if not names:
        _load(manager)
        return manager
    for name in sorted(names):
        _load(manager, name)
    missing = names - {name for name, _ in manager.list_name_plugin()}
    if missing:
        raise PluginError(f"TRANSMUTE_PLUGINS names plugins that are not installed: {', '.join(sorted(missing))}.")
    return manager


def _load(manager: pluggy.PluginManager, name: str | None = None) -> None:
    """Load entry points of the group; a plugin that fails to import becomes one PluginError."""
    try:
        manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
    except PluginError:
        raise
    except Exception as error:
        raise PluginError(f"A transmute plugin failed to load ({type(error).__name__}: {error}).") from error


def use_plugins(only: str) -> None:
    """Have the process-wide manager load only the plugins named in `only` (all when empty)."""
    global _pinned
    if only != _pinned:
        _pinned = only
        plugin_manager.cache_clear()


@cache
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (tests register throw-away plugins on it, then unregister them)."""
    return create_plugin_manager(_pinned)


def output_formats(manager: pluggy.PluginManager | None = None) -> dict[str, OutputFormat]:
    """Every output format the registered plugins provide, by name."""
    manager = manager or plugin_manager()
    found: dict[str, OutputFormat] = {}
    try:
        results = manager.hook.transmute_output_formats()
    except Exception as error:
        raise PluginError(f"A transmute plugin failed to list its formats ({type(error).__name__}: {error}).") \
            from error
    for provided in results:
        for output_format in provided or ():
            if not isinstance(output_format, OutputFormat):
                raise PluginError(f"A plugin returned {output_format!r}, which is not an OutputFormat.")
            if output_format.name in found:
                raise PluginError(f"Two plugins provide the format {output_format.name!r}.")
            found[output_format.name] = output_format
    return found


def get_format(name: str, manager: pluggy.PluginManager | None = None) -> OutputFormat:
    """The output format called `name`; UnknownFormat when no plugin provides it."""
    formats = output_formats(manager)
    try:
        return formats[name.strip().lower()]
    except KeyError:
        raise UnknownFormat(name, list(formats)) from None
