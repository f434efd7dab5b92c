"""The command-line contract: output shapes, exit codes, no tracebacks, fast paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.frontends.cli import main
from bot.settings import ROOT, Settings
from tests.published import assert_published

EXCERPT_KEYS = {
    "quote", "doc_id", "title", "author", "date", "source", "role", "start", "end", "score",
}  # fmt: skip


@pytest.fixture
def seeded(monkeypatch: pytest.MonkeyPatch, seed_index: Path) -> None:
    monkeypatch.setenv("INDEX_DIR", str(seed_index))


def test_ask_human_readable(seeded: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "Why can't Putin afford a peace deal?"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("> ") and "— Mick Ryan, “Why Putin Cannot Afford A Peace Deal Now”" in out


def test_ask_json_contract(seeded: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "--json", "-k", "2", "Does Russia honour the treaties it signs?"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert set(obj) == {"question", "abstained", "answer", "excerpts"}
    assert obj["abstained"] is False and len(obj["excerpts"]) == 2
    for ex in obj["excerpts"]:
        assert EXCERPT_KEYS <= set(ex)
        assert ex["role"] in ("essay", "comment") and isinstance(ex["start"], int)
    scores = [ex["score"] for ex in obj["excerpts"]]
    assert scores == sorted(scores, reverse=True)


def test_ask_batch(seeded: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batch = tmp_path / "q.txt"
    batch.write_text("How did Lenin get back to Russia in 1917?\n\nWhat is the capital of Peru?\n")
    assert main(["ask", "--json", "--batch", str(batch)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["abstained"] for r in rows] == [False, True]
    assert rows[1]["excerpts"] == [] and "does not cover" in rows[1]["answer"]
    assert "closed train" in rows[0]["excerpts"][0]["quote"]


@pytest.mark.parametrize("question", ["", "x" * 20_000, "what\x07 now", "\x00"])
def test_bad_question_exit_2(
    seeded: None, capsys: pytest.CaptureFixture[str], question: str
) -> None:
    assert main(["ask", question]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_essays_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["essays", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {tuple(sorted(r)) for r in rows} == {
        ("author", "date", "doc_id", "passages", "source", "title")
    }
    assert len(rows) == 3


def test_eval_prints_metrics(
    seeded: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Figures known in advance: of two questions asking the same thing, one names a
    phrase of its answer and one a phrase no essay holds (never a hit, whatever the
    engine finds); the off-topic questions, marked either way the sets mark them, are
    declined."""
    rows = [
        {"id": "a", "question": "Why can't Putin afford to end the war?",
         "must_quote": ["afford to end the war"]},
        {"id": "b", "question": "Why can't Putin afford to end the war?",
         "must_quote": ["a phrase that stands in none of the essays"]},
        {"id": "c", "question": "How do I bake sourdough bread?", "must_quote": [],
         "abstain": True},
        {"id": "d", "question": "What do the essays say about the Falklands war?",
         "must_quote": [], "kind": "near", "absent": ["Falklands"]},
    ]  # fmt: skip
    questions = tmp_path / "set.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["eval", str(questions)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert "hit@1 50.0%" in last and "hit@3 50.0%" in last and "MRR 0.500" in last
    assert "false declines 0" in last and "declines 2/2" in last and "verbatim 100.0%" in last


def test_light_commands_do_not_import_the_model() -> None:
    code = (
        "import sys\n"
        "from bot.frontends.cli import main\n"
        "main(['essays', '--json'])\n"
        "mods = ('sentence_transformers', 'torch', 'transformers')\n"
        "heavy = [m for m in mods if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    helped = subprocess.run(
        [sys.executable, "bot.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0 and "ask" in helped.stdout


def test_real_process_bad_input_has_no_traceback(seed_index: Path) -> None:
    env = {"INDEX_DIR": str(seed_index), "PATH": "/usr/bin:/bin", "ENV_FILE": "/nonexistent"}
    proc = subprocess.run(
        [sys.executable, "bot.py", "ask", "   "],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: ")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ADMIN_ROLE": "Librarian"}, "ADMIN_ROLE_ID"),
        ({"ADMIN_GUILD_IDS": "123,abc"}, "ADMIN_GUILD_IDS must be Discord ids"),
        ({"ADMIN_ROLE_ID": "Librarian"}, "ADMIN_ROLE_ID must be Discord ids"),
    ],
)
def test_admin_settings_are_ids_not_names(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str],
    message: str,
) -> None:  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["essays"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_admin_guild_ids_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import Settings

    monkeypatch.setenv("ADMIN_GUILD_IDS", " 1, 22 ")
    monkeypatch.setenv("ADMIN_ROLE_ID", "333")
    settings = Settings.from_env()
    assert settings.admin_guild_ids == (1, 22) and settings.admin_role_id == 333


def test_sources_reads_the_claims_of_a_chat_message(
    seeded: None, capsys: pytest.CaptureFixture[str]
) -> None:
    message = (
        "lol did you all see this?? https://example.com/x Honestly I think Russia never "
        "keeps the treaties it signs, they broke every deal so far. Anyway see you <@123>"
    )
    assert main(["sources", "--json", message]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert set(obj) == {"question", "abstained", "answer", "excerpts"}  # ask's shape
    assert obj["question"] == message and obj["abstained"] is False
    assert any("treaty" in ex["quote"] or "agreement" in ex["quote"] for ex in obj["excerpts"])
    for ex in obj["excerpts"]:
        assert_published(ex["quote"], ex["doc_id"], ROOT / "seeds")
    assert main(["sources", "My banana bread recipe needs two ripe bananas and walnuts."]) == 0
    assert capsys.readouterr().out.startswith("The library does not cover that")
    assert main(["sources", "   "]) == 2
    assert capsys.readouterr().err.strip() == "error: The message is empty."


def test_whosaid_cli(seeded: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["whosaid", "putin has nothing to show for the huge costs of the war"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("> Putin has nothing to show for the massive costs of the war")
    assert "— Mick Ryan" in out and "close: 1 word differs" in out
    assert main(["whosaid", "--json", "the moon is made of green cheese, everyone knows"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "query": "the moon is made of green cheese, everyone knows", "found": False,
        "matches": [],
    }  # fmt: skip
    assert main(["whosaid", "too short"]) == 2


def test_shard_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import SettingsError

    good = Settings.from_env({"SHARD_COUNT": "4", "SHARD_IDS": "2,3"}, dotenv_path=Path("/no"))
    assert (good.shard_count, good.shard_ids) == (4, (2, 3))
    for bad in ({"SHARD_IDS": "1"}, {"SHARD_COUNT": "2", "SHARD_IDS": "2"}):
        with pytest.raises(SettingsError, match="SHARD"):
            Settings.from_env(bad, dotenv_path=Path("/no"))
