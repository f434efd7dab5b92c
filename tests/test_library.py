"""Library administration: formats, refusals that change nothing, edits, removal, audit."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from bot.admin.library import LibraryAdmin
from bot.admin.transaction import RejectedError
from bot.answer.engine import Engine
from bot.answer.results import Answer
from bot.frontends.cli import main
from tests.published import assert_published

ESSAY = (
    "Drone warfare has changed the front line beyond recognition. Cheap quadcopters now "
    "watch every road, and any vehicle that moves in daylight is hunted within minutes. "
    "Both armies have learned to disperse, to dig deeper and to move only at night.\n"
    "The lesson for Europe is plain: stockpiles of shells matter, but so do factories that "
    "can turn out a hundred thousand drones a month.\n"
)

HTML = """<!doctype html><html><head><title>Drones and the front | Field Notes</title>
<meta name="author" content="Jane Roe"><meta property="article:published_time"
content="2025-03-01"></head><body>
<nav><a href="/">Home</a> | <a href="/about">About us</a> | <a href="/shop">Shop</a></nav>
<article><h1>Drones and the front</h1>
<p>Drone warfare has changed the front line beyond recognition. Cheap quadcopters now watch
every road, and any vehicle that moves in daylight is hunted within minutes.</p>
<p>Both armies have learned to disperse, to dig deeper and to move only at night. The
lesson for Europe is plain: factories that can turn out drones by the hundred thousand
matter as much as stockpiles of shells.</p></article>
<section id="comments" class="comments"><h2>Comments</h2>
<div class="comment"><p>Spot on about the factories, we are far too slow to build.</p></div>
<div class="comment"><p>I think artillery still decides most battles, drones or not.</p></div>
</section>
<footer>Copyright 2025 Field Notes. All rights reserved. Privacy policy.</footer>
</body></html>"""


def _snapshot_of(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _pdf_bytes() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Shells and factories")
    pdf.set_author("Sam Writer")
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, ESSAY.replace("\n", "\n\n"))
    return bytes(pdf.output())


@pytest.fixture
def admin(private_engine: Engine) -> LibraryAdmin:
    private_engine.index()
    return LibraryAdmin(private_engine)


def test_add_markdown_with_front_matter(admin: LibraryAdmin) -> None:
    text = f"---\ntitle: Drones at the front\nauthor: Ann Author\ndate: 2025-05-01\n---\n{ESSAY}"
    change = admin.add("drones.md", text.encode())
    assert change.doc_id == "drones-at-the-front" and change.passages >= 1
    assert change.report.added == ["drones-at-the-front"]
    assert change.report.passages_reused > 0  # the seeds were not re-embedded
    ex = admin.engine.ask("How have drones changed the front line?").excerpts[0]
    assert (ex.doc_id, ex.author, ex.essay.date) == (
        "drones-at-the-front",
        "Ann Author",
        "2025-05-01",
    )


def test_add_html_page_with_chrome_and_comments(admin: LibraryAdmin) -> None:
    change = admin.add("page.html", HTML.encode())
    snap = admin.engine.snapshot()
    doc = snap.docs[change.doc_id]
    assert doc.meta.author == "Jane Roe" and doc.meta.date == "2025-03-01"
    kept = [doc.text[p.start : p.end] for p in doc.paragraphs]
    assert not any("Home" in k or "Copyright" in k or "Privacy" in k for k in kept)
    comments = [k for k, p in zip(kept, doc.paragraphs, strict=True) if p.role == "comment"]
    assert len(comments) == 2 and comments[0].startswith("Spot on about the factories")
    ans = admin.engine.ask("Did a commenter say we are too slow to build?", k=5)
    ex = next(e for e in ans.excerpts if "too slow to build" in e.quote)
    assert ex.role == "comment" and ex.author == "reader comment"


def test_add_pdf_made_in_the_test(admin: LibraryAdmin) -> None:
    change = admin.add("shells.pdf", _pdf_bytes())
    doc = admin.engine.snapshot().docs[change.doc_id]
    assert doc.meta.title == "Shells and factories" and doc.meta.author == "Sam Writer"
    ans = admin.engine.ask("Why do drone factories matter for Europe?")
    assert ans.excerpts[0].doc_id == change.doc_id
    assert_published(ans.excerpts[0].quote, change.doc_id, admin.settings.seeds_dir)


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16"])
def test_add_text_in_other_encodings(admin: LibraryAdmin, encoding: str) -> None:
    text = "Notes from Kharkiv\n" + ESSAY.replace("Drone warfare", "Drone warfare — “new” —")
    change = admin.add("notes.txt", text.encode(encoding), author="Olena Writer")
    doc = admin.engine.snapshot().docs[change.doc_id]
    assert "Drone warfare — “new” — has changed" in doc.text
    assert doc.meta.title == "Notes from Kharkiv" and doc.meta.author == "Olena Writer"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\n\t  \n", "empty"),
        ("binary.txt", bytes(range(256)) * 40, "binary"),
        ("short.txt", b"Title\nToo short to be an essay.\n", "minimum"),
        ("essay.docx", ESSAY.encode(), "unsupported file type"),
        ("fake.pdf", ESSAY.encode(), "not a PDF"),
        ("huge.txt", b"word " * 1_300_000, "limit"),
    ],
)
def test_refusals_change_nothing(admin: LibraryAdmin, name: str, data: bytes, reason: str) -> None:
    folder = admin.settings.seeds_dir
    before = _snapshot_of(folder)
    generation = admin.engine.snapshot().generation
    answer_before = admin.engine.ask("Why can't Putin afford to end the war?")
    with pytest.raises(RejectedError, match=reason):
        admin.add(name, data)
    assert _snapshot_of(folder) == before
    assert admin.engine.snapshot().generation == generation
    assert admin.engine.ask("Why can't Putin afford to end the war?") == answer_before
    last = admin.audit.entries(1)[0]
    assert (last.action, last.ok) == ("add", False) and reason in last.detail["reason"]


def test_exact_duplicate_names_the_essay(admin: LibraryAdmin) -> None:
    seed = next(admin.settings.seeds_dir.glob("ryan-*.md")).read_bytes()
    with pytest.raises(RejectedError, match="same text as essay 'ryan-putin-cannot-afford"):
        admin.add("copy.md", seed.replace(b"title: Why", b"title: Copy of Why"))


def test_edit_metadata_without_reembedding(admin: LibraryAdmin) -> None:
    admin.add("drones.md", f"---\ntitle: Drones\nauthor: Wrong Name\n---\n{ESSAY}".encode())
    change = admin.edit("drones", author="Right Name", date="2025-06-01")
    assert change.report.passages_embedded == 0 and change.report.changed == ["drones"]
    ex = admin.engine.ask("How have drones changed the front line?").excerpts[0]
    assert (ex.author, ex.essay.date) == ("Right Name", "2025-06-01")
    with pytest.raises(RejectedError, match="no essay with id"):
        admin.edit("nope", author="X")


def test_remove_keeps_a_copy_and_is_audited(admin: LibraryAdmin) -> None:
    admin.add("drones.md", f"---\ntitle: Drones\nauthor: A\n---\n{ESSAY}".encode())
    change = admin.remove("drones")
    assert change.report.removed == ["drones"]
    assert "drones" not in admin.engine.snapshot().docs
    assert list((admin.settings.index_dir / "removed").glob("*-drones.md"))
    actions = [(e.action, e.target, e.ok) for e in admin.audit.entries(5)]
    assert ("remove", "drones", True) in actions and ("add", "drones", True) in actions


def test_add_folder_accepts_and_refuses_each_file(admin: LibraryAdmin, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.md").write_text(f"---\ntitle: Good\nauthor: G\n---\n{ESSAY}")
    (inbox / "bad.txt").write_bytes(b"")
    results = admin.add_folder(inbox)
    assert [type(r).__name__ for r in results] == ["RejectedError", "Change"]


def test_concurrent_queries_during_reindex(admin: LibraryAdmin) -> None:
    engine = admin.engine
    errors: list[BaseException] = []
    stop = threading.Event()

    def ask_loop() -> None:
        while not stop.is_set():
            try:
                ans = engine.ask("Does Russia honour the treaties it signs?")
                for ex in ans.excerpts:
                    assert_published(ex.quote, ex.doc_id, admin.settings.seeds_dir)
                assert not ans.abstained
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=ask_loop) for _ in range(2)]
    for t in threads:
        t.start()
    reports = []
    writers = [
        threading.Thread(target=lambda: reports.append(admin.reindex(force=True))) for _ in range(2)
    ]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert len(reports) == 2 and len({r.generation for r in reports}) == 2
    assert any(r.waited_seconds > 0 for r in reports)  # the second writer waited its turn


def test_a_reader_answers_while_a_writer_holds_the_lock(admin: LibraryAdmin) -> None:
    """The writer stops inside its build (the lock held) until a reader has answered: the
    reader finds the lock taken, and answers from the live index all the same."""
    writing, answered = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "write-sqlite" and not writing.is_set():
            writing.set()
            assert answered.wait(120), "no reader answered while the writer held the lock"

    def reader() -> None:
        assert writing.wait(120)
        try:
            FileLock(str(admin.settings.index_dir / ".lock")).acquire(timeout=0)
            seen["locked"] = False
        except Timeout:
            seen["locked"] = True
        seen["answer"] = admin.engine.ask("Does Russia honour the treaties it signs?")
        answered.set()

    thread = threading.Thread(target=reader)
    thread.start()
    report = admin.reindex(force=True, progress=progress)
    thread.join()
    assert seen["locked"] is True and report.rebuilt
    answer = seen["answer"]
    assert isinstance(answer, Answer) and not answer.abstained
    for ex in answer.excerpts:
        assert_published(ex.quote, ex.doc_id, admin.settings.seeds_dir)


def test_cli_add_and_refusal(
    admin: LibraryAdmin, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("SEEDS_DIR", str(admin.settings.seeds_dir))
    monkeypatch.setenv("INDEX_DIR", str(admin.settings.index_dir))
    good = tmp_path / "field-notes.txt"
    good.write_text("Field notes\n" + ESSAY)
    assert main(["add", str(good), "--author", "Cli Writer", "--date", "2025-01-02"]) == 0
    assert "Added field-notes" in capsys.readouterr().out
    bad = tmp_path / "empty.txt"
    bad.write_bytes(b"")
    assert main(["add", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: refused:") and err.count("\n") == 1
    assert main(["remove", "no-such-essay"]) == 2
    assert main(["essays", "edit", "field-notes", "--author", "Fixed Writer"]) == 0
    assert main(["remove", "field-notes"]) == 0


def test_a_running_engine_sees_another_process_reindex(admin: LibraryAdmin, embedder) -> None:  # type: ignore[no-untyped-def]
    reader = Engine(admin.settings, embedder)  # e.g. the bot, already serving
    assert reader.ask("How have drones changed the front line?").abstained
    admin.add("drones.md", f"---\ntitle: Drones\nauthor: A\n---\n{ESSAY}".encode())
    ans = reader.ask("How have drones changed the front line?")  # no restart
    assert not ans.abstained and ans.excerpts[0].doc_id == "drones"


def test_the_staleness_check_tolerates_a_file_that_vanishes_while_it_runs(
    private_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder is listed, then each file looked at: one removed in between is absent."""
    from bot.index import build

    private_engine.index()
    listed = build.library_files
    gone = private_engine.settings.seeds_dir / "removed-meanwhile.md"
    monkeypatch.setattr(build, "library_files", lambda folder: [*listed(folder), gone])
    assert private_engine.changed_since_index() == []
    assert not private_engine.is_stale()
    report = private_engine.index(force=True)  # a build that lists it too goes on without it
    assert report.skipped == ["removed-meanwhile.md: cannot read (No such file or directory)"]
    assert not private_engine.is_stale()


def test_a_page_that_declares_a_script_as_its_address_is_added_unlinked(
    admin: LibraryAdmin,
) -> None:
    page = HTML.replace("<head>", '<head><link rel="canonical" href="javascript:alert(1)">')
    change = admin.add("drones.html", page.encode())
    assert "javascript" not in (admin.settings.seeds_dir / f"{change.doc_id}.md").read_text()
