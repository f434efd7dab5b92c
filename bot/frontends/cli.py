"""The command line: `python bot.py ask|index|essays|eval|...`.

Heavy modules (the model, FAISS) are imported inside the commands that need them, so
`--help` and `essays` start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bot.errors import UserError
from bot.settings import Settings, SettingsError

if TYPE_CHECKING:
    from bot.admin.library import LibraryAdmin
    from bot.answer.engine import Engine
    from bot.answer.results import Answer
    from bot.answer.summarize import Summary
    from bot.answer.whosaid import WhoSaid

EXIT_OK = 0
EXIT_FAILURE = 1  # something went wrong that is not the user's input
EXIT_USAGE = 2  # the input cannot be used (the message says why)
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
T = TypeVar("T")


class CliError(Exception):
    """A failure to report in one line with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


class ProgressBar:
    """A terminal progress bar (rate and ETA) for index builds, when stderr is a terminal."""

    def __init__(self) -> None:
        self._bar: Any = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != "embed" or not sys.stderr.isatty():
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc="Embedding", unit="passage", file=sys.stderr)
        self._bar.update(done - self._bar.n)
        if done >= total:
            self._bar.close()


def _engine(settings: Settings) -> Engine:
    """The engine, once any change a killed process left half-done is finished or undone
    (folder and index agree before anything is served)."""
    from bot.admin.library import recover
    from bot.answer.engine import Engine

    engine = Engine(settings)
    for line in recover(engine):
        print(f"Recovered an interrupted change: {line}", file=sys.stderr)
    return engine


def _ensure_index(engine: Engine) -> None:
    """Build the index when there is none (saying why the first run is slower); when the
    library changed since it was built, answer from it anyway and say so."""
    if not engine.has_index():
        print("Building the index from the library…", file=sys.stderr)
        report = engine.index(progress=ProgressBar())
        print(report.summary(), file=sys.stderr)
        return
    changed = engine.changed_since_index()
    if changed is None or changed:
        what = "The library" if changed is None else f"{len(changed)} essay file(s)"
        print(f"note: {what} changed since the index was built — run `python bot.py index`",
              file=sys.stderr)  # fmt: skip


def _read(
    args: argparse.Namespace,
    settings: Settings,
    work: Callable[[Engine], T],
    render: Callable[[T], str],
    as_json: Callable[[T], Any],
) -> int:
    """What every reading command does: the engine with its index ensured, the work, and
    its result printed as JSON (``--json``) or as text."""
    engine = _engine(settings)
    _ensure_index(engine)
    result = work(engine)
    if args.json:
        _print_json(as_json(result))
    else:
        print(render(result))
    return EXIT_OK


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from bot.answer.inputs import InputError
    from bot.frontends.text import answer_json, render_answer

    engine = _engine(settings)
    if args.batch:
        try:
            lines = Path(args.batch).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read {args.batch}: {exc}", EXIT_USAGE) from exc
        questions = [ln for ln in lines if ln.strip()]
    elif args.question is not None:
        questions = [args.question]
    else:
        raise CliError("ask needs a QUESTION or --batch FILE", EXIT_USAGE)
    _ensure_index(engine)
    status = 0
    for q in questions:
        try:
            ans = engine.ask(q, k=args.k)
        except InputError as exc:
            if not args.batch:
                raise CliError(str(exc), EXIT_USAGE) from exc
            _print_json({"question": q, "error": str(exc)})
            status = EXIT_USAGE
            continue
        if args.json:
            _print_json(answer_json(ans))
        else:
            print(render_answer(ans))
    return status


def cmd_sources(args: argparse.Namespace, settings: Settings) -> int:
    from bot.frontends.text import SOURCES_HEADING, answer_json, render_answer

    def render(found: Answer) -> str:
        if found.abstained:
            return render_answer(found)
        return f"{SOURCES_HEADING}:\n\n{render_answer(found)}"

    return _read(args, settings, lambda e: e.sources(args.text, k=args.k), render, answer_json)


def cmd_whosaid(args: argparse.Namespace, settings: Settings) -> int:
    from bot.frontends.text import render_whosaid

    def as_json(result: WhoSaid) -> Any:
        return result.as_dict()

    return _read(args, settings, lambda e: e.who_said(args.text), render_whosaid, as_json)


def cmd_gaps(args: argparse.Namespace, settings: Settings) -> int:
    from bot.answer.feedback import FeedbackStore
    from bot.frontends.text import render_gaps

    store = FeedbackStore.of(settings)
    if args.forget:
        print(f"Deleted {store.forget(args.forget)} entries of that user.")
        return EXIT_OK
    gaps = store.gaps(args.limit)
    if args.json:
        _print_json({"gaps": [g.as_dict() for g in gaps]})
    else:
        print(render_gaps(gaps))
    return EXIT_OK


def cmd_feedback(args: argparse.Namespace, settings: Settings) -> int:
    from bot.answer.feedback import FeedbackStore

    store = FeedbackStore.of(settings)
    if args.revoke is not None:
        if not store.revoke(args.revoke):
            raise CliError(f"no rating {args.revoke} (or it was revoked already)", EXIT_USAGE)
        print(f"Rating {args.revoke} revoked.")
        return EXIT_OK
    entries = store.entries()
    if args.json:
        _print_json({"ratings": entries})
        return EXIT_OK
    for e in entries:
        vote = "👍" if e["vote"] > 0 else "👎"
        state = " (revoked)" if e["revoked"] else ""
        print(f"{e['id']}: {vote} {e['doc_id']}[{e['start']}:{e['end']}] for "
              f"“{e['question']}”{state}")  # fmt: skip
    if not entries:
        print("No ratings yet.")
    return EXIT_OK


def _admin(settings: Settings) -> LibraryAdmin:
    from bot.admin.library import LibraryAdmin

    return LibraryAdmin(_engine(settings))


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k, None) for k in ("title", "author", "date", "source", "url")}


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from bot.admin.transaction import RejectedError

    admin = _admin(settings)
    path = Path(args.file)
    if path.is_dir():
        if any(_meta(args).values()):
            raise CliError("--title/--author/... apply to one file, not a folder", EXIT_USAGE)
        results = admin.add_folder(path)
        for r in results:
            print(f"refused: {r}" if isinstance(r, RejectedError) else r.summary())
        return EXIT_USAGE if any(isinstance(r, RejectedError) for r in results) else EXIT_OK
    if not path.exists():
        raise CliError(f"no such file: {path}", EXIT_USAGE)
    try:
        change = admin.add_path(path, **_meta(args))
    except RejectedError as exc:
        raise CliError(f"refused: {exc}", EXIT_USAGE) from exc
    print(change.summary())
    return EXIT_OK


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    from bot.admin.transaction import RejectedError

    try:
        change = _admin(settings).remove(args.id)
    except RejectedError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    print(change.summary())
    return EXIT_OK


def cmd_edit(args: argparse.Namespace, settings: Settings) -> int:
    from bot.admin.transaction import RejectedError

    try:
        change = _admin(settings).edit(args.id, **_meta(args))
    except RejectedError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    print(change.summary())
    return EXIT_OK


def cmd_summary(args: argparse.Namespace, settings: Settings) -> int:
    if args.topic is not None and args.essay:
        raise CliError("give an ESSAY or --topic TEXT, not both", EXIT_USAGE)
    if args.topic is None and not args.essay:
        raise CliError("summary needs an ESSAY (id or part of a title) or --topic TEXT", EXIT_USAGE)

    def work(engine: Engine) -> Summary:
        if args.topic is not None:
            return engine.topic(args.topic)
        return engine.summary(args.essay, args.points)

    return _summary(args, settings, work)


def cmd_perspectives(args: argparse.Namespace, settings: Settings) -> int:
    return _summary(args, settings, lambda e: e.perspectives(args.question))


def _summary(
    args: argparse.Namespace, settings: Settings, work: Callable[[Engine], Summary]
) -> int:
    from bot.frontends.text import render_summary

    def as_json(summary: Summary) -> Any:
        return summary.as_dict()

    return _read(args, settings, work, render_summary, as_json)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.frontends.discord.client import run

    return run(settings)


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    report = _admin(settings).reindex(force=args.rebuild, progress=ProgressBar())
    if args.json:
        _print_json(report.as_dict())
    else:
        print(report.summary())
    return EXIT_OK


def cmd_essays(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "essays_action", None) == "edit":
        return cmd_edit(args, settings)

    essays, skipped = _engine(settings).essays()
    for reason in skipped:
        print(f"warning: skipped {reason}", file=sys.stderr)
    if args.json:
        _print_json([e.as_dict() for e in essays])
        return EXIT_OK
    if not essays:
        print(f"The library at {settings.seeds_dir} is empty.")
    for e in essays:
        meta = ", ".join(x for x in (e.essay.author, e.essay.date, e.essay.source) if x)
        print(f"{e.essay.doc_id}\n    {e.essay.title}\n    {meta} — {e.passages} passages")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from bot.frontends.evaluate import evaluate, read_questions, summary_line

    try:
        items = read_questions(Path(args.file))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {args.file}: {exc}", EXIT_USAGE) from exc
    if args.library:
        settings = _library_settings(settings, Path(args.library), args.index)
    engine = _engine(settings)
    _ensure_index(engine)
    result = evaluate(engine, items, feedback=False)
    if args.feedback:  # the same set with the community's ratings applied, beside it
        with_feedback = evaluate(engine, items, feedback=True)
        print(f"with feedback:    {summary_line(with_feedback)}")
        print(f"without feedback: {summary_line(result)}")
        return EXIT_OK
    if args.json:
        _print_json(result)
        return EXIT_OK
    for row in result["rows"]:
        state = "declined" if row["abstained"] else f"rank {row['rank']}"
        print(f"{row['id']}: {state} (best similarity {row['best_similarity']:.3f})")
    print(summary_line(result))
    return EXIT_OK


def _library_settings(settings: Settings, library: Path, index: str | None) -> Settings:
    """Settings for another library folder, with an index of its own (by default under
    INDEX_DIR/libraries/, so the main index is never touched)."""
    import hashlib

    if not library.is_dir():
        raise CliError(f"no such library folder: {library}", EXIT_USAGE)
    folder = library.resolve()
    if index:
        index_dir = Path(index).resolve()
    else:
        digest = hashlib.sha256(str(folder).encode()).hexdigest()[:8]
        index_dir = settings.index_dir / "libraries" / f"{folder.name}-{digest}"
    return settings.with_(seeds_dir=folder, index_dir=index_dir)


def _meta_options(parser: argparse.ArgumentParser) -> None:
    for key in ("title", "author", "date", "source", "url"):
        parser.add_argument(f"--{key}", help=f"the essay's {key}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (no heavy imports)."""
    parser = argparse.ArgumentParser(
        prog="bot.py",
        description="Answer questions about a library of essays with verbatim, attributed "
        "excerpts; run the Discord bot; administer the library.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer a question with excerpts from the essays")
    ask.add_argument("question", nargs="?", help="the question (omit with --batch)")
    ask.add_argument("-k", type=int, default=None, help="how many excerpts (default TOP_K)")
    ask.add_argument("--json", action="store_true", help="print one JSON object per question")
    ask.add_argument("--batch", metavar="FILE", help="one question per line; model loaded once")
    ask.set_defaults(func=cmd_ask)

    index = sub.add_parser("index", help="build or refresh the index")
    index.add_argument("--rebuild", action="store_true", help="write a new generation anyway")
    index.add_argument("--json", action="store_true", help="print the report as JSON")
    index.set_defaults(func=cmd_index)

    essays = sub.add_parser("essays", help="list the library, or edit an essay's metadata")
    essays.add_argument("--json", action="store_true", help="print JSON")
    essays.set_defaults(func=cmd_essays)
    essays_sub = essays.add_subparsers(dest="essays_action")
    edit = essays_sub.add_parser("edit", help="correct metadata without re-embedding")
    edit.add_argument("id", help="the essay's id (see `essays`)")
    _meta_options(edit)

    run = sub.add_parser("run", help="run the Discord bot (DISCORD_TOKEN from .env)")
    run.set_defaults(func=cmd_run)
    _reading_commands(sub)
    _admin_commands(sub)

    ev = sub.add_parser("eval", help="score answers on a JSONL file of questions")
    ev.add_argument("file", help="JSONL: question, must_quote, and abstain or role, doc, author")
    ev.add_argument("--library", metavar="DIR", help="score on this library folder instead")
    ev.add_argument("--index", metavar="DIR", help="its index folder (default: under INDEX_DIR)")
    ev.add_argument("--json", action="store_true", help="print JSON")
    ev.add_argument("--feedback", action="store_true",
                    help="score with and without the community's ratings")  # fmt: skip
    ev.set_defaults(func=cmd_eval)
    return parser


def _reading_commands(sub: Any) -> None:
    summ = sub.add_parser("summary", help="key sentences of an essay, or of a topic")
    summ.add_argument("essay", nargs="?", help="an essay id or an unambiguous part of its title")
    summ.add_argument("--topic", help="summarise what the essays say about this instead")
    summ.add_argument("--points", type=int, default=None, help="key sentences (default 6)")
    summ.add_argument("--json", action="store_true", help="print JSON")
    summ.set_defaults(func=cmd_summary)

    persp = sub.add_parser("perspectives", help="each author's position on a question")
    persp.add_argument("question")
    persp.add_argument("--json", action="store_true", help="print JSON")
    persp.set_defaults(func=cmd_perspectives)

    src = sub.add_parser("sources", help="what the essays say about a message (any text)")
    src.add_argument("text", help="the message")
    src.add_argument("-k", type=int, default=None, help="how many excerpts (default TOP_K)")
    src.add_argument("--json", action="store_true", help="print JSON (the shape of ask's)")
    src.set_defaults(func=cmd_sources)

    who = sub.add_parser("whosaid", help="where a remembered line comes from, and who said it")
    who.add_argument("text", help="the line, as you remember it")
    who.add_argument("--json", action="store_true", help="print JSON")
    who.set_defaults(func=cmd_whosaid)

    gaps = sub.add_parser("gaps", help="what the community asked that the library lacks")
    gaps.add_argument("--json", action="store_true", help="print JSON")
    gaps.add_argument("--limit", type=int, default=20, help="most groups shown (default 20)")
    gaps.add_argument("--forget", metavar="USER_ID", help="delete a Discord user's entries")
    gaps.set_defaults(func=cmd_gaps)

    fb = sub.add_parser("feedback", help="list the community's ratings, or revoke one")
    fb.add_argument("--revoke", type=int, metavar="ID", help="take a rating back")
    fb.add_argument("--json", action="store_true", help="print JSON")
    fb.set_defaults(func=cmd_feedback)


def _admin_commands(sub: Any) -> None:
    add = sub.add_parser("add", help="add an essay file (.md .txt .html .pdf) or a folder")
    add.add_argument("file", help="a file, or a folder of files")
    _meta_options(add)
    add.set_defaults(func=cmd_add)

    remove = sub.add_parser("remove", help="remove an essay (a copy is kept)")
    remove.add_argument("id", help="the essay's id (see `essays`)")
    remove.set_defaults(func=cmd_remove)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.func(args, settings))
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - one line for the user, the rest on request
        import os
        import traceback

        if os.environ.get("BOT_DEBUG"):
            traceback.print_exc()
        print(f"error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
