"""The code's shape, as CONTRIBUTING.md describes it: short functions, one layer per folder."""

from __future__ import annotations

import ast

from bot.settings import ROOT

MAX_FUNCTION_LINES = 60
LAYERS = ("ingest", "index", "answer", "admin", "frontends")
#: Below every layer: the settings, and the one error type users are shown as it is.
BASE = ("__init__.py", "settings.py", "errors.py")


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_no_function_is_longer_than_sixty_lines() -> None:
    long = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        for fn in _functions(ast.parse(path.read_text(encoding="utf-8"))):
            lines = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                long.append(f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name} ({lines} lines)")
    assert not long, "\n".join(long)


def test_every_module_lives_in_a_layer() -> None:
    loose = [p.name for p in (ROOT / "bot").glob("*.py") if p.name not in BASE]
    assert not loose, f"put these in one of bot/{{{','.join(LAYERS)}}}/: {loose}"
    assert {p.name for p in (ROOT / "bot").iterdir() if p.is_dir() and p.name[0] != "_"} == set(
        LAYERS
    )
