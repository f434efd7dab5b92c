"""A damaged index heals itself: readers fall back to the newest intact generation, and
`index` rebuilds what is damaged; nothing needs deleting by hand."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path

import pytest

from bot.admin.library import LibraryAdmin
from bot.answer.engine import Engine
from bot.answer.results import Excerpt
from bot.errors import StoreUnavailable
from bot.frontends.cli import main
from bot.index.cache import EmbeddingCache
from bot.index.generations import current_generation, intact
from tests.conftest import SEEDS
from tests.published import assert_published

QUESTION = "Why can't Putin afford to end the war?"
ESSAY = (
    "---\ntitle: Night convoys\nauthor: K. Writer\n---\n"
    + "Supply convoys move at night because drones watch the roads. " * 6
    + "\n"
)


@pytest.fixture
def two_generations(private_engine: Engine) -> Engine:
    """An index with a live generation and the previous one beside it."""
    private_engine.index()
    private_engine.index(force=True)
    return private_engine


def _live(engine: Engine) -> Path:
    name = current_generation(engine.settings.index_dir)
    assert name is not None
    return engine.settings.index_dir / "generations" / name


def _answers(engine: Engine) -> bool:
    fresh = Engine(engine.settings, engine.embedder)  # a new reader, as a new process
    return any("afford to end the war" in e.quote for e in fresh.ask(QUESTION).excerpts)


@pytest.mark.parametrize(
    "damaged",
    ["passages.faiss", "library.sqlite", "sentences.npy", "passage_rows.npy", "sentence_rows.npy"],
)
def test_a_truncated_file_falls_back_then_index_rebuilds(
    two_generations: Engine, damaged: str, caplog: pytest.LogCaptureFixture
) -> None:
    live = _live(two_generations)
    path = live / damaged
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert not intact(live)
    with caplog.at_level(logging.WARNING):
        assert _answers(two_generations)  # served from the previous generation
    assert any("is damaged" in r.getMessage() for r in caplog.records)
    report = two_generations.index()  # plain `index`, no --rebuild
    assert report.rebuilt and intact(_live(two_generations), full=True)
    assert _answers(two_generations)


def test_a_changed_byte_is_caught_by_index(two_generations: Engine) -> None:
    path = _live(two_generations) / "sentences.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size: only the checksum tells
    path.write_bytes(bytes(data))
    assert two_generations.index().rebuilt
    assert intact(_live(two_generations), full=True)


@pytest.mark.parametrize("damage", ["manifest", "pointer"])
def test_a_broken_manifest_or_pointer_is_rebuilt_by_any_command(
    private_engine: Engine, damage: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    index_dir = private_engine.settings.index_dir
    if damage == "manifest":
        (_live(private_engine) / "manifest.json").write_text("{broken")
    else:
        (index_dir / "CURRENT").write_bytes(b"\xff\xfe")
    monkeypatch.setenv("SEEDS_DIR", str(private_engine.settings.seeds_dir))
    monkeypatch.setenv("INDEX_DIR", str(index_dir))
    assert main(["ask", QUESTION]) == 0
    assert "afford to end the war" in capsys.readouterr().out
    assert main(["index"]) == 0
    assert intact(_live(private_engine), full=True)


def test_a_damaged_embedding_cache_is_moved_aside(private_engine: Engine) -> None:
    cache = private_engine.settings.index_dir / "embeddings.sqlite"
    cache.write_bytes(b"this is not a database" * 100)
    admin = LibraryAdmin(private_engine)
    change = admin.add("convoys.md", ESSAY.encode())
    assert change.doc_id == "night-convoys"
    assert list(cache.parent.glob("embeddings.sqlite.damaged-*"))
    assert _answers(private_engine)


def _full_disk_error(tmp_path: Path) -> sqlite3.OperationalError:
    """A real SQLITE_FULL, as SQLite raises it when the disk fills."""
    db = sqlite3.connect(tmp_path / "tiny.sqlite")
    db.execute("CREATE TABLE t (x BLOB)")
    db.commit()
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    try:
        with db:
            db.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        db.close()
    raise AssertionError("SQLite stored more than its page limit")


def test_a_full_disk_keeps_the_embedding_cache(
    private_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache that cannot be opened or written for want of space is not damaged: the
    add fails with that reason, the cache stays where it is, intact, and nothing
    changed."""
    cache = private_engine.settings.index_dir / "embeddings.sqlite"
    before = hashlib.sha256(cache.read_bytes()).hexdigest()
    full = _full_disk_error(tmp_path)
    assert full.sqlite_errorname == "SQLITE_FULL"

    def no_space(path: Path) -> sqlite3.Connection:
        raise full

    monkeypatch.setattr(EmbeddingCache, "_open", staticmethod(no_space))
    admin = LibraryAdmin(private_engine)
    folder = sorted(p.name for p in private_engine.settings.seeds_dir.iterdir())
    with pytest.raises(StoreUnavailable, match="disk is full"):
        admin.add("convoys.md", ESSAY.encode())
    assert not list(cache.parent.glob("embeddings.sqlite.damaged-*"))
    assert hashlib.sha256(cache.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in private_engine.settings.seeds_dir.iterdir()) == folder


def test_a_cache_that_fills_while_writing_fails_cleanly(
    private_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills while new vectors are written: the build stops with that reason,
    the cache keeps every vector it had, and the live index is the one before."""
    cache_path = private_engine.settings.index_dir / "embeddings.sqlite"
    live = current_generation(private_engine.settings.index_dir)
    opened = EmbeddingCache._open

    def filling(path: Path) -> sqlite3.Connection:
        db = opened(path)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")  # no room to grow
        return db

    monkeypatch.setattr(EmbeddingCache, "_open", staticmethod(filling))
    with pytest.raises(StoreUnavailable, match="disk is full"):
        LibraryAdmin(private_engine).add("convoys.md", ESSAY.encode())
    monkeypatch.setattr(EmbeddingCache, "_open", staticmethod(opened))
    assert not list(cache_path.parent.glob("embeddings.sqlite.damaged-*"))
    assert current_generation(private_engine.settings.index_dir) == live
    assert (
        "night-convoys"
        not in Engine(private_engine.settings, private_engine.embedder).snapshot().docs
    )
    reused = private_engine.index(force=True)
    assert reused.passages_embedded == 0  # every vector the cache had is still there


RYAN = "ryan-putin-cannot-afford-a-peace-deal"


def _alter_live(engine: Engine, column: str, old: bytes, new: bytes) -> None:
    """Same-size damage to one essay's column in the live generation's database, as
    SQLite stores it (the file's size, all a reader checks, is unchanged)."""
    path = _live(engine) / "library.sqlite"
    with sqlite3.connect(path) as db:
        (value,) = db.execute(f"SELECT {column} FROM docs WHERE doc_id = ?", (RYAN,)).fetchone()
        data = value.encode()
        assert len(old) == len(new) and old in data
        db.execute(f"UPDATE docs SET {column} = CAST(? AS TEXT) WHERE doc_id = ?",
                   (data.replace(old, new), RYAN))  # fmt: skip
    db.close()
    assert intact(_live(engine)) and not intact(_live(engine), full=True)


def _ask_fresh(engine: Engine) -> list[Excerpt]:
    return Engine(engine.settings, engine.embedder).ask(QUESTION).excerpts  # a new process


@pytest.mark.parametrize(
    "new",
    [b"affxrd", b"af\xff\xferd"],  # words the author never wrote; bytes that are not UTF-8
)
def test_altered_words_are_never_quoted(
    two_generations: Engine, new: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """The live generation's copy of an essay fails its checksum: the words quoted are
    the published ones (the library file still holds what was indexed)."""
    _alter_live(two_generations, "text", b"afford", new)
    with caplog.at_level(logging.WARNING):
        excerpts = _ask_fresh(two_generations)
    assert any("afford to end the war" in e.quote for e in excerpts)
    for e in excerpts:
        assert_published(e.quote, e.doc_id, SEEDS)
    assert any("is damaged" in r.getMessage() for r in caplog.records)


def test_altered_words_with_the_file_changed_too_come_from_an_intact_generation(
    two_generations: Engine,
) -> None:
    """When the library file no longer holds what was indexed either, the answer comes
    from the newest intact generation (the one before), still the published words."""
    _alter_live(two_generations, "text", b"afford", b"affxrd")
    essay = next(p for p in two_generations.settings.seeds_dir.iterdir() if "ryan" in p.name)
    essay.write_text(essay.read_text() + "\nA line added since.\n")
    excerpts = _ask_fresh(two_generations)
    assert any("afford to end the war" in e.quote for e in excerpts)
    for e in excerpts:
        assert_published(e.quote, e.doc_id, SEEDS)


def test_altered_metadata_is_never_attributed(two_generations: Engine) -> None:
    """An author's name changed in the live generation: it is passed over whole."""
    _alter_live(two_generations, "author", b"Mick Ryan", b"Mick Rxan")
    excerpts = _ask_fresh(two_generations)
    assert excerpts and all("Rxan" not in (e.essay.author or "") for e in excerpts)
    assert any(e.essay.author == "Mick Ryan" for e in excerpts)
