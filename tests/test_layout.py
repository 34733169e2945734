"""The package keeps DESIGN.md's layering rules and has no import loops (read from the import graph itself), and
loads without the clients only distributed mode needs."""

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "transmute"

MAY_IMPORT: dict[str, set[str]] = {
    "core": set(),
    "settings": {"core"},
    "logs": {"settings"},
    "media": {"core"},
    "plugins": {"core", "media"},
    "store": {"core"},
    "storage": {"core", "settings"},
    "fetch": {"core", "settings"},
    "backoff": set(),
    "services.broker": {"core", "settings", "logs", "backoff"},
    "services.control": {"core", "settings", "logs", "services.broker"},
    "services.api": {"core", "settings", "logs", "store", "storage", "fetch", "media", "services.broker",
                     "services.control"},
    "services.worker": {"core", "settings", "logs", "storage", "fetch", "media", "services.broker", "backoff",
                        "services.control"},
    "client": {"core"},
    "cli": {"*"},
}
"""Which rooms each room may import (besides itself). The CLI wires everything together; the gateway and the
worker never import each other; core imports nothing of the project outside itself; the client (transmute.client)
runs where only the package's models are: it talks to the gateway over HTTP, never imports it."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room_of(module: str) -> str | None:
    parts = module.split(".")[1:]
    if not parts:
        return None
    if parts[:1] == ["services"]:
        return f"services.{parts[1]}" if len(parts) > 1 else None
    return parts[0]


def imports_of(path: Path) -> Iterator[str]:
    """Every transmute module this file imports, at the top or inside a function."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("transmute"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("transmute"):
            yield node.module


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in imports_of(path):
            # `from transmute.store import schema` names a module; `from transmute.store.schema import X` a name.
            while imported not in modules and "." in imported:
                imported = imported.rsplit(".", 1)[0]
            if imported in modules and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


GRAPH = import_graph()


def test_every_module_belongs_to_a_room_with_rules():
    rooms = {room_of(module) for module in GRAPH} - {None}
    assert rooms <= set(MAY_IMPORT), f"rooms without layering rules: {sorted(rooms - set(MAY_IMPORT))}"


@pytest.mark.parametrize("room", sorted(MAY_IMPORT))
def test_each_room_imports_only_what_the_design_allows(room):
    allowed = MAY_IMPORT[room]
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items() if room_of(module) == room
        for target in targets
        if "*" not in allowed and room_of(target) not in (allowed | {room, None})
    )
    assert wrong == []


def test_there_are_no_import_loops():
    loops: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                loops.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert loops == []


DISTRIBUTED_DRIVERS = {"asyncpg": "transmute.store.postgres", "minio": "transmute.storage.s3", "pika": None}
"""The clients only distributed mode needs, and the one module that may import each (pika: Dramatiq's RabbitMQ
broker, imported by Dramatiq itself)."""


def test_every_module_but_the_drivers_own_loads_without_the_distributed_clients():
    blocked = "".join(f"sys.modules[{name!r}] = None\n" for name in DISTRIBUTED_DRIVERS)  # importing it fails
    skipped = {module for module in DISTRIBUTED_DRIVERS.values() if module}
    modules = sorted(module for module in GRAPH if module not in skipped)
    code = f"import importlib, sys\n{blocked}for module in {modules!r}:\n    importlib.import_module(module)\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
