"""Every hand-set number of the answering layer is named where it is used, with a line
saying what kind of number it is; scoring code holds no unnamed numbers.

Read from the source files themselves (the truth a newcomer reads): a number chosen by
looking at results must say so ("Judgment:"), so that it can be learned or removed
later; one that bounds cost ("Cost bound:"), a fact ("Definition:") or an outside limit
("Limit:") says that instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.settings import ROOT

ANSWER = ROOT / "bot" / "answer"
KINDS = ("#: Cost bound:", "#: Judgment:", "#: Definition:", "#: Limit:")
#: The modules that score: retrieval, quote choice, the reread, the decline, the road.
SCORING = ("retrieve", "windows", "late", "scope", "learned", "ask", "selection", "question",
           "names")  # fmt: skip
#: Numbers that are arithmetic, not choices: identities, a midpoint's 2, a guard
#: against dividing by zero.
ARITHMETIC = {0, 1, 2, -1, 1e-9}


def _is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return (isinstance(node, ast.Constant) and isinstance(node.value, int | float)
            and not isinstance(node.value, bool))  # fmt: skip


def _constants(path: Path) -> list[tuple[str, int]]:
    """Module-level NAME = <number> assignments: each name and its line."""
    out = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and target.id.isupper() and value is not None:
            if _is_number(value):
                out.append((target.id, node.lineno))
    return out


def _comment_block(lines: list[str], lineno: int) -> list[str]:
    """The ``#:`` lines right above line `lineno` (1-based), top first."""
    block: list[str] = []
    i = lineno - 2
    while i >= 0 and lines[i].startswith("#:"):
        block.insert(0, lines[i])
        i -= 1
    return block


@pytest.mark.parametrize("path", sorted(ANSWER.glob("*.py")), ids=lambda p: p.name)
def test_every_hand_set_number_says_what_kind_it_is(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    for name, lineno in _constants(path):
        block = _comment_block(lines, lineno)
        assert block, f"{path.name}: {name} has no #: comment"
        assert block[0].startswith(KINDS), f"{path.name}: {name}: {block[0]!r}"


@pytest.mark.parametrize("module", SCORING)
def test_scoring_code_holds_no_unnamed_numbers(module: str) -> None:
    tree = ast.parse((ANSWER / f"{module}.py").read_text(encoding="utf-8"))
    named = {lineno for _, lineno in _constants(ANSWER / f"{module}.py")}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            for deco in node.decorator_list:  # a cache's size is not a score
                for inner in ast.walk(deco):
                    inner.lineno = -1  # type: ignore[attr-defined]
        if isinstance(node, ast.ClassDef):  # a field's default is named by its field
            for field in node.body:
                if isinstance(field, ast.AnnAssign) and field.value is not None:
                    for inner in ast.walk(field.value):
                        inner.lineno = -1  # type: ignore[attr-defined]
    for node in ast.walk(tree):
        if _is_number(node) and getattr(node, "lineno", -1) not in named | {-1}:
            value = node.value if isinstance(node, ast.Constant) else -node.operand.value  # type: ignore[attr-defined]
            if value not in ARITHMETIC:
                found.append((node.lineno, value))
    assert not found, f"{module}.py: unnamed numbers at {found}"


def test_the_scoring_modules_exist() -> None:
    """The list above names the modules as they are (a renamed one is not skipped)."""
    assert all((ANSWER / f"{m}.py").is_file() for m in SCORING)


def test_the_hand_set_weights_say_what_kind_they_are() -> None:
    """The default weights (a model without learned answering) are numbers too: their
    one instance says how they were chosen."""
    lines = (ANSWER / "retrieve.py").read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("WEIGHTS = "))
    assert _comment_block(lines, at + 1)[0].startswith(KINDS)
