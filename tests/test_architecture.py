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


#: One concern per module: past this many lines a module holds several (CONTRIBUTING.md).
MAX_MODULE_LINES = 500


def test_no_module_is_longer_than_five_hundred_lines() -> None:
    long = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            long.append(f"{path.relative_to(ROOT)} ({lines} lines)")
    assert not long, "\n".join(long)


def test_every_module_is_named_in_the_architecture_doc() -> None:
    """docs/architecture.md names every module of bot/ (a package's __init__ only when it
    holds code), so a newcomer finds each one's concern there."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        rel = path.relative_to(ROOT / "bot")
        if path.name == "__init__.py" and not ast.parse(path.read_text()).body[1:]:
            continue  # a docstring (or nothing) alone
        if len(rel.parts) == 1:  # bot/settings.py, bot/errors.py, bot/__init__.py
            named = f"bot/{rel.name}" in doc
        else:  # named inside its layer's block: "bot/answer/" then "    windows.py"
            named = f"bot/{rel.parts[0]}/" in doc and f"    {'/'.join(rel.parts[1:])} " in doc
        if not named:
            missing.append(str(rel))
    assert not missing, f"not in docs/architecture.md: {missing}"


def test_the_version_is_the_latest_release() -> None:
    """pyproject.toml, the package and the CHANGELOG's newest release say the same."""
    import re
    import tomllib

    import bot

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    releases = re.findall(r"^## (\d+\.\d+\.\d+) — \d{4}-\d{2}-\d{2}$",
                          (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.M)  # fmt: skip
    assert version == bot.__version__ == releases[0]
