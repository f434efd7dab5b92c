"""Hostile and unlucky input: a bad essay is refused at the door with a one-line reason,
one already in the folder is skipped while the rest is served, and nothing is lost.

Each test checks the library folder byte for byte against the files on disk, the audit
log, and that questions are still answered.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from bot.admin.library import LibraryAdmin, recover
from bot.admin.transaction import RejectedError
from bot.answer.engine import Engine
from bot.frontends.cli import main
from bot.settings import ROOT
from tests.conftest import kill_at

BODY = "Supply convoys move at night because drones watch the roads. " * 6
QUESTION = "Why can't Putin afford to end the war?"


def _bytes_of(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _alias_bomb(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghijklmnop"
    for prev, name in zip(names[: levels - 1], names[1:levels], strict=True):
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    return (
        "---\ntitle: Bomb\n" + "\n".join(lines) + f"\npayload: *{names[levels - 1]}\n---\n{BODY}\n"
    )


def _encrypted_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _run_limited(body: str, gigabytes: int, timeout: float) -> str:
    """Run Python code in a child process whose memory is capped; returns its output."""
    code = (
        "import resource\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({gigabytes} << 30, {gigabytes} << 30))\n"
        "from pathlib import Path\n" + body
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def admin(private_engine: Engine) -> LibraryAdmin:
    private_engine.index()
    return LibraryAdmin(private_engine)


def _still_answers(admin: LibraryAdmin) -> None:
    ans = admin.engine.ask(QUESTION)
    assert any("afford to end the war" in e.quote for e in ans.excerpts)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("bomb.md", _alias_bomb().encode(), "aliases"),
        ("d.md", f"---\ntitle: D\ndate: 2026-02-30\n---\n{BODY}\n".encode(), "impossible"),
        ("y.md", f"---\ntitle: Y\ndate: yesterday\n---\n{BODY}\n".encode(), "'date' must be"),
        ("l.md", f"---\ntitle: L\nleftovers: 5\n---\n{BODY}\n".encode(), "'leftovers' must"),
        ("q.md", f"---\ntitle: Q\nquotes: 7\n---\n{BODY}\n".encode(), "'quotes' must"),
        ("t.md", f"---\ntitle: {'T' * 1_000_000}\n---\n{BODY}\n".encode(), "limit"),
        ("a.md", f"---\ntitle: A\nauthor: {{x: 1}}\n---\n{BODY}\n".encode(), "'author' must"),
        ("locked.pdf", _encrypted_pdf(), "encrypted"),
        ("u.md", f"---\ntitle: U\nurl: javascript:alert(1)\n---\n{BODY}\n".encode(), "'url' must"),
    ],
)
def test_bad_essays_are_refused_and_change_nothing(
    admin: LibraryAdmin, name: str, data: bytes, reason: str
) -> None:
    folder = admin.settings.seeds_dir
    before = _bytes_of(folder)
    with pytest.raises(RejectedError, match=reason) as refused:
        admin.add(name, data)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 300
    assert _bytes_of(folder) == before
    last = admin.audit.entries(1)[0]
    assert (last.action, last.ok) == ("add", False) and reason in last.detail["reason"]
    _still_answers(admin)


@pytest.mark.parametrize(
    "text",
    [
        _alias_bomb(),
        f"---\ntitle: D\ndate: 2026-02-30\n---\n{BODY}\n",
        f"---\ntitle: L\nleftovers: 5\n---\n{BODY}\n",
    ],
)
def test_a_bad_file_in_the_folder_is_skipped_and_the_rest_served(
    admin: LibraryAdmin, text: str
) -> None:
    (admin.settings.seeds_dir / "zz-bad.md").write_text(text, encoding="utf-8")
    report = admin.reindex()
    assert any(s.startswith("zz-bad.md") for s in report.skipped), report.skipped
    assert len(admin.engine.snapshot().docs) == 3
    _still_answers(admin)


def test_the_alias_bomb_is_refused_within_a_small_memory_limit(library: Path) -> None:
    (library / "bomb.md").write_text(_alias_bomb(), encoding="utf-8")
    out = _run_limited(
        "from bot.ingest.documents import DocumentError, read_document\n"
        "try:\n"
        f"    read_document(Path({str(library / 'bomb.md')!r}))\n"
        "except DocumentError as exc:\n"
        "    print(exc)\n",
        gigabytes=1,
        timeout=60,
    )
    assert "aliases" in out


def test_add_never_overwrites_another_file(admin: LibraryAdmin) -> None:
    folder = admin.settings.seeds_dir
    (folder / "my-notes.md").write_text(f"---\nid: kyiv-winter-notes\ntitle: K\n---\n{BODY}\n")
    (folder / "draft-in-progress.md").write_text("---\ntitle: [unclosed\n---\nhalf a thought\n")
    admin.reindex()
    before = _bytes_of(folder)
    first = admin.add("up.md", f"---\ntitle: My Notes\n---\nRail matters. {BODY}\n".encode())
    second = admin.add("d.md", f"---\ntitle: Draft in progress\n---\nDrafts. {BODY}\n".encode())
    after = _bytes_of(folder)
    assert {k: after[k] for k in before} == before  # every file as it was
    assert {first.doc_id, second.doc_id} == {"my-notes-2", "draft-in-progress-2"}
    assert "kyiv-winter-notes" not in first.report.removed
    assert "kyiv-winter-notes" in admin.engine.snapshot().docs


#: Adds an essay in a child process that reports each indexing stage and, at the target
#: stage, waits (reading stdin) until the test kills it.
ADD = """
import sys
from pathlib import Path
from bot.admin.library import LibraryAdmin
from bot.answer.engine import Engine
from bot.settings import Settings

def progress(stage, done, total):
    print(stage, flush=True)
    if stage == sys.argv[1]:
        sys.stdin.read()

admin = LibraryAdmin(Engine(Settings.from_env()))
admin.add("late.md", Path(sys.argv[2]).read_bytes(), "test", progress)
"""


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["embed", "switch", "prune"])
def test_kill_during_add_leaves_the_library_as_it_was(
    admin: LibraryAdmin, tmp_path: Path, stage: str
) -> None:
    folder = admin.settings.seeds_dir
    before = _bytes_of(folder)
    upload = tmp_path / "late.md"
    upload.write_text(f"---\ntitle: Late arrival\nauthor: K. Nine\n---\n{BODY}\n")
    kill_at(stage, ADD, [str(upload)], admin.settings)
    assert admin.audit.pending()  # its intent was written before anything else
    went_live = stage == "prune"  # killed after the index had switched
    reader = Engine(admin.settings, admin.engine.embedder)
    (line,) = recover(reader)  # the next start, before anything is served
    assert ("completed" if went_live else "undone") in line
    after = _bytes_of(folder)
    if went_live:
        assert set(after) - set(before) == {"late-arrival.md"}
    else:
        assert after == before
    assert ("late-arrival" in reader.snapshot().docs) is went_live
    assert not admin.audit.pending() and not list(folder.glob(".*"))
    entry = next(e for e in admin.audit.entries(10) if e.action == "add")
    assert entry.ok is went_live
    assert not reader.is_stale()  # folder and index agree
    _still_answers(LibraryAdmin(reader))


def test_links_and_devices_are_refused_before_reading(admin: LibraryAdmin, tmp_path: Path) -> None:
    zero = tmp_path / "z.txt"
    zero.symlink_to("/dev/zero")
    passwd = tmp_path / "p.txt"
    passwd.symlink_to("/etc/passwd")
    folder = admin.settings.seeds_dir
    before = _bytes_of(folder)
    with pytest.raises(RejectedError, match="not a regular file|outside"):
        admin.add_path(zero)
    with pytest.raises(RejectedError, match="outside"):
        admin.add_path(passwd)
    big = tmp_path / "big.txt"
    with big.open("wb") as fh:
        fh.truncate(admin.settings.max_upload_bytes + 1)  # sparse: nothing is written
    with pytest.raises(RejectedError, match="limit"):
        admin.add_path(big)
    assert _bytes_of(folder) == before


def test_edit_refuses_a_title_with_a_line_break(admin: LibraryAdmin) -> None:
    folder = admin.settings.seeds_dir
    before = _bytes_of(folder)
    with pytest.raises(RejectedError, match="one line"):
        admin.edit("ryan-putin-cannot-afford-a-peace-deal", title="X\n---\nid: evil")
    with pytest.raises(RejectedError, match="no essay with id"):
        admin.edit("no-such-essay", title="X")
    assert _bytes_of(folder) == before
    entries = [(e.action, e.target, e.ok) for e in admin.audit.entries(2)]
    assert entries == [("edit", "no-such-essay", False),
                       ("edit", "ryan-putin-cannot-afford-a-peace-deal", False)]  # fmt: skip


def test_a_list_of_authors_reads_as_names(admin: LibraryAdmin) -> None:
    text = f"---\ntitle: Two hands\nauthor: [Alice Smith, Bob Jones]\n---\n{BODY}\n"
    change = admin.add("two.md", text.encode())
    assert admin.engine.snapshot().docs[change.doc_id].meta.author == "Alice Smith and Bob Jones"


def test_cli_refuses_undecodable_questions_and_zero_excerpts(seed_index: Path) -> None:
    env = {"INDEX_DIR": str(seed_index), "PATH": "/usr/bin:/bin", "ENV_FILE": "/nonexistent"}
    for args in ([b"ask", b"Why cannot Putin \xff\xfe afford a peace deal?"],
                 [b"ask", b"-k", b"0", b"Why cannot Putin afford a peace deal?"]):  # fmt: skip
        proc = subprocess.run(
            [sys.executable.encode(), b"bot.py", *args], cwd=ROOT, capture_output=True, env=env,
            timeout=120,
        )  # fmt: skip
        err = proc.stderr.decode()
        assert proc.returncode == 2, err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_cli_add_of_a_bad_file_is_one_line(
    admin: LibraryAdmin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("SEEDS_DIR", str(admin.settings.seeds_dir))
    monkeypatch.setenv("INDEX_DIR", str(admin.settings.index_dir))
    bad = tmp_path / "d.md"
    bad.write_text(f"---\ntitle: D\ndate: 2026-02-30\n---\n{BODY}\n")
    assert main(["add", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: refused:") and err.count("\n") == 1


def _tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def test_a_changed_library_is_answered_from_the_live_index(
    admin: LibraryAdmin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    admin.engine.ask(QUESTION)  # the question model's export is in place
    (admin.settings.seeds_dir / "new.md").write_text(f"---\ntitle: New\n---\n{BODY}\n")
    (admin.settings.seeds_dir / "zz-bad.md").write_text(_alias_bomb())
    monkeypatch.setenv("SEEDS_DIR", str(admin.settings.seeds_dir))
    monkeypatch.setenv("INDEX_DIR", str(admin.settings.index_dir))
    before = _tree(admin.settings.index_dir)
    assert main(["ask", QUESTION]) == 0
    out, err = capsys.readouterr()
    assert "afford to end the war" in out
    assert "2 essay file(s) changed since the index was built" in err
    assert _tree(admin.settings.index_dir) == before  # nothing written: a read-only index
    assert main(["essays"]) == 0
    assert "warning: skipped zz-bad.md" in capsys.readouterr().err


def test_two_hundred_thousand_short_lines_are_read_in_bounded_memory(tmp_path: Path) -> None:
    lines = tmp_path / "lines.txt"
    words = ("convoy", "night", "drone", "road", "supply", "front", "river")
    lines.write_text("Lines\n" + "\n".join(words[i % 7] for i in range(200_000)) + "\n")
    # Before: the paragraph was re-read for every line and pysbd read 1.2 MB at once
    # (hours); the timeout is a generous bound, not the measure.
    out = _run_limited(
        "from bot.ingest.chunking import make_passages, split_sentences\n"
        "from bot.ingest.documents import read_document\n"
        f"doc = read_document(Path({str(lines)!r}))\n"
        "sentences = split_sentences(doc)\n"
        "print(len(sentences), len(make_passages(doc, sentences)))\n",
        gigabytes=2,
        timeout=240,
    )
    n_sentences, n_passages = map(int, out.split())
    assert 0 < n_sentences <= 200_000 // 80 and n_passages <= n_sentences


def test_an_essay_over_the_sentence_limit_is_refused(admin: LibraryAdmin) -> None:
    settings = admin.settings.with_(max_essay_sentences=500)  # the seeds have fewer
    strict = LibraryAdmin(Engine(settings, admin.engine.embedder))
    folder = admin.settings.seeds_dir
    before = _bytes_of(folder)
    many = " ".join(f"Sentence {i} is said here." for i in range(600))
    long_essay = f"---\ntitle: Many\n---\n{many}\n"
    with pytest.raises(RejectedError, match="over the limit of 500"):
        strict.add("many.md", long_essay.encode())
    assert _bytes_of(folder) == before
    assert "many" not in strict.engine.snapshot().docs
    _still_answers(strict)
