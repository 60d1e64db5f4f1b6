"""The layering CONTRIBUTING.md describes, checked: every query lives in db/, and the rules (domain/, fibo/,
captioners/) import no web or SQL code. Plain file reads and an AST walk: no database, under a second."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import tailorset

PACKAGE = Path(tailorset.__file__).parent
SQL_MODULES = ("sqlalchemy", "alembic", "psycopg", "asyncpg", "aiosqlite", "sqlite3")
WEB_MODULES = ("fastapi", "starlette", "uvicorn", "tailorset.api", "tailorset.app", "tailorset.schemas")
# A statement written out as text: SELECT … FROM, INSERT INTO, UPDATE … SET, DELETE FROM.
RAW_SQL = re.compile(r"\b(SELECT\b[\s\S]+\bFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b")


def _modules(*under: str) -> list[Path]:
    roots = [PACKAGE / part for part in under] if under else [PACKAGE]
    return sorted(path for root in roots for path in root.rglob("*.py"))


def _name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, wherever it sits (a function's too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _is(module: str, banned: tuple[str, ...]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in banned)


def _string_sql(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and RAW_SQL.search(node.value):
            lines.append(node.lineno)
    return lines


def _outside_db() -> list[Path]:
    return [path for path in _modules() if path.relative_to(PACKAGE).parts[0] != "db"]


def test_the_layout_finds_the_modules_it_checks():
    names = {_name(path) for path in _outside_db()}
    assert {"tailorset.cli", "tailorset.worker", "tailorset.services.health", "tailorset.api.health"} <= names
    assert not any(name.startswith("tailorset.db") for name in names)


@pytest.mark.parametrize("path", _outside_db(), ids=_name)
def test_sql_only_in_db(path):
    """A query outside db/ (a SQLAlchemy import, or a statement in a string) belongs behind a db function
    named after what it asks."""
    imports = [f"line {line}: {module}" for line, module in _imports(path) if _is(module, SQL_MODULES)]
    assert not imports, f"{_name(path)} imports SQL modules: {imports}"
    assert not _string_sql(path), f"{_name(path)} holds SQL text on lines {_string_sql(path)}"


@pytest.mark.parametrize("path", _modules("domain", "fibo", "captioners"), ids=_name)
def test_rules_import_no_web_or_sql(path):
    """domain/, fibo/ and captioners/ are plain Python: usable from a script, testable without a server."""
    banned = [
        f"line {line}: {module}"
        for line, module in _imports(path)
        if _is(module, SQL_MODULES + WEB_MODULES + ("tailorset.db", "tailorset.services"))
    ]
    assert not banned, f"{_name(path)} imports {banned}"


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The checks themselves, on a module that breaks both rules."""
    bad = tmp_path / "bad.py"
    bad.write_text("from sqlalchemy import select\ndef f():\n    import fastapi\n    return 'SELECT id FROM images'\n")
    modules = [module for _, module in _imports(bad)]
    assert _is(modules[0], SQL_MODULES) and _is(modules[1], WEB_MODULES)
    assert _string_sql(bad) == [4]


@pytest.mark.parametrize("path", _modules("services", "db") + [PACKAGE / "worker.py"], ids=_name)
def test_services_and_queries_import_no_web_code(path):
    """Services take plain values and mappings, not the API's pydantic bodies; the db layer knows no HTTP."""
    banned = [f"line {line}: {module}" for line, module in _imports(path) if _is(module, WEB_MODULES)]
    assert not banned, f"{_name(path)} imports {banned}"
