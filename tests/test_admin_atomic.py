"""Every admin action happens entirely or not at all, on any file system, under any crash:
the folder and the live index never disagree, and every action is in the audit log.

File systems are simulated where a test cannot mount one: the calls a library on another
device, or a read-only one, refuses are made to fail as they do there (``EXDEV`` for a
link from another device, ``EROFS`` for any write in a read-only folder).
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest

from bot.admin.library import LibraryAdmin, recover
from bot.answer.engine import Engine
from tests.conftest import kill_at

ESSAY = (
    "---\ntitle: Night convoys\nauthor: K. Writer\n---\n"
    "Supply convoys move at night because drones watch the roads by day. "
    "The drivers learned to run without lights, and the engineers built new bridges "
    "faster than the artillery could find them. The front held because the trucks came.\n"
)
QUESTION = "Why do supply convoys move at night?"


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _served(admin: LibraryAdmin) -> set[str]:
    """The essays a new process would serve."""
    return set(Engine(admin.settings, admin.engine.embedder).snapshot().docs)


def _agree(admin: LibraryAdmin) -> None:
    """The live index is the library folder: nothing served that is not there."""
    reader = Engine(admin.settings, admin.engine.embedder)
    assert not reader.is_stale()
    on_disk = {p.stem for p in admin.settings.seeds_dir.iterdir() if not p.name.startswith(".")}
    assert _served(admin) <= on_disk


@pytest.fixture
def admin(private_engine: Engine) -> LibraryAdmin:
    private_engine.index()
    return LibraryAdmin(private_engine)


@pytest.fixture
def other_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hard links between folders fail as between file systems (the library on a share,
    INDEX_DIR on local disk: the layout docs/cli.md describes)."""
    link = os.link

    def cross_device(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if Path(src).resolve().parent != Path(dst).resolve().parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(src))
        link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", cross_device)


@pytest.fixture
def read_only(admin: LibraryAdmin, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The library folder refuses every write, as a read-only mount does."""
    folder = admin.settings.seeds_dir.resolve()

    def inside(path: Any) -> bool:
        return isinstance(path, str | os.PathLike) and Path(path).resolve().parent == folder

    def refuse(path: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    def guard(real: Any, *where: int) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if any(inside(args[i]) for i in where if i < len(args)):
                refuse(args[where[0]])
            return real(*args, **kwargs)

        return call

    real_open = io.open

    def opener(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(m in mode for m in "wxa+") and inside(file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", opener)
    monkeypatch.setattr("builtins.open", opener)
    for name, where in (("link", (1,)), ("rename", (0, 1)), ("replace", (0, 1)),
                        ("unlink", (0,)), ("remove", (0,))):  # fmt: skip
        monkeypatch.setattr(os, name, guard(getattr(os, name), *where))
    return folder


def test_add_with_the_library_on_another_file_system(
    admin: LibraryAdmin, other_device: None
) -> None:
    """The file is prepared beside its place, never linked across file systems."""
    change = admin.add("convoys.md", ESSAY.encode())
    assert (
        "Supply convoys move at night"
        in (admin.settings.seeds_dir / f"{change.doc_id}.md").read_text()
    )
    assert change.doc_id in _served(admin)
    assert admin.audit.entries(1)[0].ok is True
    _agree(admin)


def test_a_failed_add_never_goes_live(admin: LibraryAdmin, read_only: Path) -> None:
    before = _files(admin.settings.seeds_dir)
    served = _served(admin)
    with pytest.raises(OSError, match="Read-only"):
        admin.add("convoys.md", ESSAY.encode())
    assert _files(admin.settings.seeds_dir) == before
    assert _served(admin) == served  # the refused essay is not served
    last = admin.audit.entries(1)[0]
    assert (last.action, last.ok) == ("add", False) and "Read-only" in last.detail["reason"]
    assert not admin.audit.pending()
    _agree(admin)


def test_a_failed_remove_changes_nothing(admin: LibraryAdmin, read_only: Path) -> None:
    before = _files(admin.settings.seeds_dir)
    with pytest.raises(OSError, match="Read-only"):
        admin.remove("ryan-putin-cannot-afford-a-peace-deal")
    assert _files(admin.settings.seeds_dir) == before
    assert "ryan-putin-cannot-afford-a-peace-deal" in _served(admin)
    last = admin.audit.entries(1)[0]
    assert (last.action, last.ok) == ("remove", False)
    _agree(admin)


def test_backups_of_one_essay_are_never_overwritten(
    admin: LibraryAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Remove, re-add and remove again within one second: both versions are kept."""
    monkeypatch.setattr("bot.admin.transaction.time.strftime", lambda *a: "20261206T000000")
    first = admin.add("convoys.md", ESSAY.encode())
    admin.remove(first.doc_id)
    second = ESSAY.replace("by day", "by day and by night")
    again = admin.add("convoys.md", second.encode())
    assert again.doc_id == first.doc_id
    admin.remove(again.doc_id)
    kept = sorted((admin.settings.index_dir / "removed").iterdir())
    assert len(kept) == 2
    bodies = [p.read_text() for p in kept]
    assert sum("by day and by night" in b for b in bodies) == 1
    assert all("drones watch the roads by day" in b for b in bodies)


#: Runs a remove that reports each indexing stage on stdout and, at the target stage,
#: waits (reading stdin) until the test kills it.
REMOVE = """
import sys
from bot.admin.library import LibraryAdmin
from bot.answer.engine import Engine
from bot.settings import Settings

def progress(stage, done, total):
    print(stage, flush=True)
    if stage == sys.argv[1]:
        sys.stdin.read()

LibraryAdmin(Engine(Settings.from_env())).remove(sys.argv[2], "test", progress)
"""


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["write-sqlite", "prune"])
def test_kill_during_remove_is_finished_or_undone_at_the_next_start(
    admin: LibraryAdmin, stage: str
) -> None:
    doc_id = "ryan-putin-cannot-afford-a-peace-deal"
    folder = admin.settings.seeds_dir
    before = _files(folder)
    kill_at(stage, REMOVE, [doc_id], admin.settings)
    # Killed: its intent is in the log, and nothing is served that the folder lacks.
    (intent,) = admin.audit.pending()
    assert (intent.action, intent.target) == ("remove", doc_id)
    assert _served(admin) <= {p.stem for p in folder.iterdir()}
    went_live = stage == "prune"  # the index had switched without the essay
    (line,) = recover(Engine(admin.settings, admin.engine.embedder))  # the next start
    assert ("completed" if went_live else "undone") in line
    assert (doc_id in _served(admin)) is not went_live
    assert (f"{doc_id}.md" in _files(folder)) is not went_live
    if not went_live:
        assert _files(folder) == before
    entry = admin.audit.entries(1)[0]
    assert (entry.action, entry.ok) == ("remove", went_live)
    assert list((admin.settings.index_dir / "removed").glob(f"*-{doc_id}.md"))
    _agree(admin)


def test_a_failed_edit_changes_nothing(admin: LibraryAdmin, read_only: Path) -> None:
    before = _files(admin.settings.seeds_dir)
    with pytest.raises(OSError, match="Read-only"):
        admin.edit("ryan-putin-cannot-afford-a-peace-deal", author="Someone Else")
    assert _files(admin.settings.seeds_dir) == before
    ex = Engine(admin.settings, admin.engine.embedder).ask(QUESTION).excerpts
    assert all(e.author != "Someone Else" for e in ex)
    last = admin.audit.entries(1)[0]
    assert (last.action, last.ok) == ("edit", False) and not admin.audit.pending()
    _agree(admin)
