"""Where test helpers live: test modules and fixtures import shared helpers from tests.support only, and no
module imports a conftest (pytest finds fixtures by folder; an import would register them twice)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_modules(path: Path) -> list[str]:
    """The absolute module names a file imports."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_the_tests_import_helpers_only_from_tests_support_and_never_a_conftest():
    wrong = {}
    for path in sorted(TESTS.rglob("*.py")):
        outside = [name for name in imported_modules(path)
                   if name.split(".")[0] == "tests" and not (name == "tests.support" or
                                                             name.startswith("tests.support."))]
        conftests = [name for name in imported_modules(path) if name.split(".")[-1] == "conftest"]
        if outside or conftests:
            wrong[str(path.relative_to(TESTS))] = sorted(set(outside + conftests))
    assert wrong == {}
