"""Reading needs nothing writable or intact beyond the index it reads.

Every reading command, and the Discord bot, answers when the audit log or the community's
store is damaged, locked or unreadable, when the disk is full, when INDEX_DIR is
read-only, and when the question log cannot be written: one warning line, then the
answer. An admin action refuses in one line that names the cause (exit 2) and changes
nothing. The faults are SQLite's and the OS's own: random bytes where a database was, an
exclusive lock held by another connection, a page limit that makes SQLite report
SQLITE_FULL, connections opened read-only; file writes refused with ENOSPC or EROFS.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.admin.audit import AuditLog
from bot.answer.engine import Engine
from bot.answer.feedback import Asker
from bot.frontends.cli import main
from bot.index.embed import Embedder
from tests.discord_harness import bot_settings, running_bot

ESSAY = "---\ntitle: Night convoys\nauthor: A. Writer\n---\n" + (
    "The convoys moved at night along the river road, and nobody spoke of them by day. " * 6
)
#: Every reading command, as a reader types it.
READING = [
    ["ask", "Why can't Putin afford a peace deal?"],
    ["summary", "ryan-putin-cannot-afford-a-peace-deal"],
    ["summary", "--topic", "NATO"],
    ["perspectives", "Can the war end in a real peace?"],
    ["sources", "Russia never keeps the treaties it signs."],
    ["whosaid", "Putin has nothing to show for the huge costs of this war"],
    ["essays"],
]


@pytest.fixture
def served(
    seed_index: Path, library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A copy of the seed index with the model's export (the CLI loads its own), served
    on a copy of the library; returns the index folder."""
    index = tmp_path / "served-index"
    shutil.copytree(seed_index, index, ignore=shutil.ignore_patterns(".lock"))
    monkeypatch.setenv("INDEX_DIR", str(index))
    monkeypatch.setenv("SEEDS_DIR", str(library))
    return index


def _answers_every_reading_command(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> list[str]:
    """Run each reading command; each must exit 0 with output, and say at most one
    warning line. Returns the warnings."""
    said = []
    for argv in READING:
        caplog.clear()
        assert main(argv) == 0, (argv, capsys.readouterr().err)
        out, err = capsys.readouterr()
        assert out.strip() and "Traceback" not in err, argv
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) <= 1, (argv, warnings)
        said.extend(warnings)
    return said


def _refuses_an_add(library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """An admin add must exit 2 with one line and leave the library as it was."""
    before = sorted(p.name for p in library.iterdir())
    essay = tmp_path / "convoys.md"
    essay.write_text(ESSAY, encoding="utf-8")
    assert main(["add", str(essay)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert sorted(p.name for p in library.iterdir()) == before
    return err


def _leave_an_interrupted_change(index: Path) -> None:
    """An admin action's intent written down and never completed (its process died)."""
    AuditLog(index).begin("cli", "add", "convoys.md")
    assert AuditLog(index).pending()


# --- the audit log ----------------------------------------------------------------------


def test_a_damaged_audit_log_stops_no_reader_and_every_change(
    served: Path, library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    (served / "audit.sqlite").write_bytes(os.urandom(3000))
    warnings = _answers_every_reading_command(capsys, caplog)
    assert warnings and all("damaged" in w for w in warnings)
    err = _refuses_an_add(library, tmp_path, capsys)
    assert "audit log" in err and "damaged" in err and "move it aside" in err


def test_a_locked_audit_log_does_not_hold_up_a_reader(
    served: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Another process holds the log (a writer mid-commit, a stray sqlite3 shell): the
    reader looks briefly, says so, and answers."""
    _leave_an_interrupted_change(served)
    holder = sqlite3.connect(served / "audit.sqlite")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert main(READING[0]) == 0
        assert capsys.readouterr().out.startswith("> ")
        assert any("locked" in r.getMessage() for r in caplog.records)
    finally:
        holder.rollback()
        holder.close()


def test_an_interrupted_change_is_finished_by_the_next_admin_action(
    served: Path, library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Readers only try; the next change finishes what was left before its own."""
    _leave_an_interrupted_change(served)
    essay = tmp_path / "convoys.md"
    essay.write_text(ESSAY, encoding="utf-8")
    assert main(["add", str(essay)]) == 0
    assert not AuditLog(served).pending()
    actions = [(e.action, e.ok) for e in AuditLog(served).entries()]
    assert actions[:2] == [("add", True), ("add", False)]  # newest first: ours, the repaired


# --- a full disk ------------------------------------------------------------------------


def _path_of(file: Any) -> Path | None:
    """The file a path, or a SQLite ``file:`` URI, names (None for a descriptor)."""
    if not isinstance(file, str | os.PathLike):
        return None
    text = os.fspath(file)
    if isinstance(text, bytes):
        return None
    return Path(text.removeprefix("file:").split("?")[0]).resolve()


class Disk:
    """The disk of one folder, able to fill up: SQLite databases in it cannot grow (a real
    SQLITE_FULL from a page limit), and writing a file in it fails with ENOSPC."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.full = False

    def holds(self, path: Any) -> bool:
        where = _path_of(path)
        return where is not None and where.is_relative_to(self.folder)


@pytest.fixture
def disk(served: Path, monkeypatch: pytest.MonkeyPatch) -> Disk:
    disk = Disk(served)
    connect, real_open = sqlite3.connect, io.open

    def connecting(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = connect(database, *args, **kwargs)
        if disk.full and disk.holds(database):
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count = {max(pages, 1)}")
        return db

    def opening(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if disk.full and any(m in mode for m in "wxa+") and disk.holds(file):
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connecting)
    monkeypatch.setattr(io, "open", opening)
    monkeypatch.setattr("builtins.open", opening)
    return disk


def test_a_disk_that_fills_during_a_rebuild(
    served: Path, disk: Disk, library: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The disk fills while the new generation is written: the rebuild refuses in one
    line ("the disk is full", exit 2), the live index stands, every reader answers on the
    full disk, and once there is room the next change finishes what was left."""
    from bot.index import generations

    live = (served / "CURRENT").read_text()
    write_rows = generations.write_rows

    def filling(*args: Any, **kwargs: Any) -> Any:
        disk.full = True
        return write_rows(*args, **kwargs)

    monkeypatch.setattr(generations, "write_rows", filling)
    assert main(["index", "--rebuild"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "the disk is full" in err and err.count("\n") == 1, err
    assert (served / "CURRENT").read_text() == live
    _answers_every_reading_command(capsys, caplog)
    disk.full = False  # room again, and no more filling
    monkeypatch.setattr(generations, "write_rows", write_rows)
    essay = tmp_path / "convoys.md"
    essay.write_text(ESSAY, encoding="utf-8")
    assert main(["add", str(essay)]) == 0
    assert not AuditLog(served).pending()


# --- a read-only INDEX_DIR --------------------------------------------------------------


@pytest.fixture
def read_only(served: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """INDEX_DIR as a read-only mount has it, with a change left open in it (which a
    reader would otherwise finish): SQLite opens its databases read-only, and every write
    of a file in it fails with EROFS."""
    _leave_an_interrupted_change(served)
    disk = Disk(served)
    connect, real_open, os_open = sqlite3.connect, io.open, os.open

    def connecting(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if disk.holds(database) and "mode=ro" not in os.fspath(database):
            path = _path_of(database)
            assert path is not None
            return connect(f"{path.as_uri()}?mode=ro", *args, **{**kwargs, "uri": True})
        return connect(database, *args, **kwargs)

    def refuse(path: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))

    def opening(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(m in mode for m in "wxa+") and disk.holds(file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def low_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and disk.holds(path):
            refuse(path)
        return os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connecting)
    monkeypatch.setattr(io, "open", opening)
    monkeypatch.setattr("builtins.open", opening)
    monkeypatch.setattr(os, "open", low_open)
    for name in ("mkdir", "rename", "replace", "unlink", "rmdir"):
        real = getattr(os, name)

        def guarded(path: Any, *args: Any, _real: Any = real, _name: str = name,
                    **kwargs: Any) -> Any:  # fmt: skip
            if _name == "mkdir" and os.path.exists(path):  # as Linux: the name is taken
                raise FileExistsError(errno.EEXIST, "File exists", os.fspath(path))
            if disk.holds(path):
                refuse(path)
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, guarded)
    return served


def test_readers_answer_on_a_read_only_index_folder(
    read_only: Path, library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    warnings = _answers_every_reading_command(capsys, caplog)
    assert warnings and all("read-only" in w for w in warnings)
    err = _refuses_an_add(library, tmp_path, capsys)
    assert "read-only" in err


# --- the community's store and the question log -----------------------------------------


def test_a_damaged_store_of_ratings_stops_no_answer(
    served: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    (served / "feedback.sqlite").write_bytes(os.urandom(3000))
    assert main(READING[0]) == 0
    assert capsys.readouterr().out.startswith("> ")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "damaged" in warnings[0]


def test_a_question_log_that_cannot_be_written_stops_no_answer(
    private_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The store is locked by another process while questions are asked on Discord (each
    declined one is logged for `gaps`): the answers come, the warning is said once."""
    store = private_engine.settings.index_dir / "feedback.sqlite"
    private_engine.feedback.declined("warm", np.zeros(384, dtype=np.float32), "u0", None)
    assert store.exists()
    holder = sqlite3.connect(store)
    holder.execute("BEGIN EXCLUSIVE")
    caplog.set_level(logging.WARNING)
    try:
        for question in ("How do I bake sourdough bread?", "What is the capital of Peru?"):
            found = private_engine.ask(question, asker=Asker("u1", "guild"))
            assert found.abstained
        found = private_engine.ask("Why can't Putin afford a peace deal?", asker=Asker("u1"))
        assert found.excerpts
    finally:
        holder.rollback()
        holder.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(set(warnings)) >= 1 and all("locked" in w for w in warnings)


# --- the Discord bot --------------------------------------------------------------------


async def test_the_bot_starts_and_answers_with_a_damaged_audit_log(
    library: Path, private_index: Path, embedder: Embedder
) -> None:
    (private_index / "audit.sqlite").write_bytes(os.urandom(3000))
    async with running_bot(bot_settings(library, private_index), embedder) as harness:
        q = harness.server.interaction(
            "ask",
            [{"name": "question", "type": 3, "value": "Why can't Putin afford a peace deal?"}],
        )
        await harness.command(q)
        follow = await harness.followup(q)
        assert follow.json["embeds"]
        assert not harness.errors
