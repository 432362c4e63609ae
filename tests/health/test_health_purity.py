"""tether.health is pure: it imports only the standard library, tether.core, tether.errors, a YAML
parser (for its rule library) and the CEL library, which evaluates expressions in memory."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import tether.health

ALLOWED = ("tether.core", "tether.errors", "tether.health", "yaml", "cel_expr_python")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_imports_are_pure() -> None:
    package = Path(tether.health.__file__).parent
    offending = [
        f"{path.name}: {name}"
        for path in sorted(package.glob("*.py"))
        for name in _imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith(ALLOWED)
    ]
    assert offending == []
