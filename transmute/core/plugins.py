"""The plugin manager: the built-in format plugins, registered explicitly, and third-party ones found through
the `transmute.plugins` entry-point group; the table of formats they provide, built once per process."""

from __future__ import annotations

import importlib
from functools import cache

import pluggy

from transmute.core import hookspecs
from transmute.core.errors import PluginError, UnknownFormat
from transmute.core.formats import OutputFormat, check_format

ENTRY_POINT_GROUP = "transmute.plugins"
_pinned = ""
"""The plugins the process-wide manager loads: TRANSMUTE_PLUGINS, handed in by the process's start (use_plugins)."""

DEFAULT_PLUGINS: tuple[str, ...] = (
    "transmute.plugins.gif",
    "transmute.plugins.still",
    "transmute.plugins.sprite",
    "transmute.plugins.mp3",
    "transmute.plugins.mp4",
    "transmute.plugins.webm",
    "transmute.plugins.webp",
    "transmute.plugins.apng",
)
"""The built-in format plugins: ordinary plugins, registered by module name."""


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, keeping the format table its plugins provide until a plugin comes or goes."""

    def __init__(self) -> None:
        super().__init__("transmute")
        self.add_hookspecs(hookspecs)
        self._formats: dict[str, OutputFormat] | None = None

    def register(self, plugin: object, name: str | None = None) -> str | None:
        self._formats = None
        return super().register(plugin, name)

    def unregister(self, plugin: object | None = None, name: str | None = None) -> object | None:
        self._formats = None
        return super().unregister(plugin, name)

    def formats(self) -> dict[str, OutputFormat]:
        """Every output format the registered plugins provide, by name (built once)."""
        if self._formats is None:
            self._formats = _collect_formats(self)
        return self._formats


def create_plugin_manager(only: str = "") -> PluginManager:
    """A manager with the built-in plugins and every plugin of the entry-point group, or only those named in
    `only` (a comma-separated list of names: `gif` for a built-in, an entry point's name for the others)."""
    manager = PluginManager()
    names = {name.strip() for name in only.split(",") if name.strip()}
    for module in DEFAULT_PLUGINS:
        short = module.rsplit(".", 1)[-1]
        if not names or short in names:
            _register_builtin(manager, module, short)
    _load_entry_points(manager, names)
    missing = names - {name for name, _ in manager.list_name_plugin()}
    if missing:
        raise PluginError(f"TRANSMUTE_PLUGINS names plugins that are not installed: {', '.join(sorted(missing))}.")
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as error:
        raise PluginError(f"The transmute plugin {error.plugin!r} implements a hook transmute does not have: "
                          f"{error}.") from None
    return manager


def _register_builtin(manager: PluginManager, module: str, name: str) -> None:
    try:
        manager.register(importlib.import_module(module), name)
    except Exception as error:
        raise PluginError(f"The built-in plugin {name!r} ({module}) failed to load: {type(error).__name__}: "
                          f"{error}.") from error


def _load_entry_points(manager: PluginManager, names: set[str]) -> None:
    """Load the group's entry points (those in `names` only, when given); a plugin that fails to import stops
    the start with one PluginError naming it."""
    from importlib.metadata import entry_points

    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if (names and entry_point.name not in names) or manager.get_plugin(entry_point.name) is not None:
            continue
        try:
            plugin = entry_point.load()
        except Exception as error:
            raise PluginError(f"The transmute plugin {entry_point.name!r} ({entry_point.value}) failed to load: "
                              f"{type(error).__name__}: {error}.") from error
        manager.register(plugin, entry_point.name)


def use_plugins(only: str) -> None:
    """Have the process-wide manager load only the plugins named in `only` (all when empty)."""
    global _pinned
    if only != _pinned:
        _pinned = only
        plugin_manager.cache_clear()


def _collect_formats(manager: PluginManager) -> dict[str, OutputFormat]:
    found: dict[str, OutputFormat] = {}
    for name, plugin in manager.list_name_plugin():
        plugin_name = _label(name, plugin)
        hook = getattr(plugin, "transmute_output_formats", None)
        if hook is None:
            continue
        try:
            provided = hook()
        except Exception as error:
            raise PluginError(f"The transmute plugin {plugin_name!r} failed to list its formats "
                              f"({type(error).__name__}: {error}).") from error
        for output_format in provided or ():
            check_format(output_format, plugin_name)
            if output_format.name in found:
                raise PluginError(f"Two plugins provide the format {output_format.name!r} (one is {plugin_name!r}).")
            found[output_format.name] = output_format
    return found


def _label(name: str, plugin: object) -> str:
    """How a message names a plugin: its registered name, or its module or class when registered without one."""
    if not name.isdigit():
        return name
    return getattr(plugin, "__name__", type(plugin).__name__)


@cache
def plugin_manager() -> PluginManager:
    """The process-wide plugin manager (tests register throw-away plugins on it, then unregister them)."""
    return create_plugin_manager(_pinned)


def output_formats(manager: PluginManager | None = None) -> dict[str, OutputFormat]:
    """Every output format the registered plugins provide, by name."""
    return (manager or plugin_manager()).formats()


def get_format(name: str, manager: PluginManager | None = None) -> OutputFormat:
    """The output format called `name`; UnknownFormat when no plugin provides it."""
    formats = output_formats(manager)
    try:
        return formats[name.strip().lower()]
    except KeyError:
        raise UnknownFormat(name, list(formats)) from None
