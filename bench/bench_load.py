"""The bot under a crowd: many users asking at once, with and without an admin reindex.

    python -m bench.bench_load [--questions 300] [--users 50] [--seconds 30] [--soak]

Runs the real bot in its own process (discord.py unmodified; :mod:`bench.load_bot`)
against the local Discord-compatible server (``tests/fakediscord.py``, on 127.0.0.1),
which enforces Discord's rules: an interaction answered after 3 s is refused. The library
is library2 (from ``../shared/eval``; the seeds when it is absent), indexed once and kept
in ``bench/results/indexes``; each run works on copies. ``ASK_COOLDOWN_SECONDS=0`` so that
every question is asked, not slowed down.

Two runs: `--questions` questions from `--users` users in `--seconds`, in bursts (a burst
a second, each from different users), slash commands and mentions alternating, each user
in a channel of their own; then the same while an admin's ``/reindex`` rebuilds the library
(every essay given a new last paragraph: every essay re-read, chunked, summarised and
written, its new passage embedded). Per run: how many questions were acknowledged within
3 s (a slash command's deferral; a mention's typing indicator), answered (the answer's
embeds), answer times (from the question to its answer), the bot's event loop's largest
lag, and its peak resident memory. ``--soak``: 5,000 questions in one process, a steady
stream, memory after the first 200 and at the end. The last line:

    load: Q questions from U users in S s: acknowledged within 3 s A/Q, answered B/Q,
    p95 answer T ms, max loop lag L ms, peak RSS M MB
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT, SEEDS, SHARED_EVAL, index_dir, percentiles, save_result
from bot.answer.engine import Engine
from bot.settings import Settings
from tests.discord_harness import invite_permissions
from tests.fakediscord import (
    ADMIN,
    APP_ID,
    BOT_USER,
    GUILD_ID,
    Call,
    FakeDiscord,
    user,
)

#: Discord's rule: an interaction's first response within this many seconds.
ACK_DEADLINE = 3.0
#: Cost bound: how long a run waits for its last answers after its last question.
DRAIN_SECONDS = 180.0
#: Questions outstanding at once in the soak (a steady crowd, not a flood).
SOAK_IN_FLIGHT = 8


class Stamped(list):  # type: ignore[type-arg]
    """The server's record of calls, each stamped with when it was answered."""

    def append(self, call: Call) -> None:
        call.at = time.monotonic()  # type: ignore[attr-defined]
        super().append(call)


@dataclass
class Asked:
    """One question sent, and what became of it."""

    kind: str  # "slash" or "mention"
    question: str
    sent: float
    key: str  # the interaction's token, or the message's id
    channel: str
    ack: float | None = None
    answered: float | None = None


def _questions() -> tuple[Path, list[str]]:
    """The library and the questions asked of it (read from ../shared, never copied)."""
    library2 = SHARED_EVAL / "library2"
    if library2.is_dir():
        rows = (SHARED_EVAL / "library2.jsonl").read_text(encoding="utf-8").splitlines()
        return library2, [json.loads(r)["question"] for r in rows if r.strip()]
    rows = (ROOT / "tests" / "data" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    return SEEDS, [json.loads(r)["question"] for r in rows if r.strip()]


def _prepared(library: Path, work: Path) -> tuple[Path, Path]:
    """A copy of the library and of its index (built once and kept for later runs)."""
    kept = index_dir(library)
    if not (kept / "CURRENT").exists():
        print(f"indexing {library.name} once (kept in {kept})…", file=sys.stderr, flush=True)
        Engine(Settings(seeds_dir=library, index_dir=kept)).index()
    lib_copy, index_copy = work / "library", work / "index"
    shutil.copytree(library, lib_copy)  # copy2 keeps sizes and times: the index is current
    shutil.copytree(kept, index_copy, ignore=shutil.ignore_patterns(".lock"))
    return lib_copy, index_copy


def _bot_env(library: Path, index: Path, work: Path) -> dict[str, str]:
    return {**os.environ, "ENV_FILE": str(work / "no.env"), "SEEDS_DIR": str(library),
            "INDEX_DIR": str(index), "DISCORD_TOKEN": "fake", "DISCORD_GUILD_ID": str(GUILD_ID),
            "ADMIN_GUILD_IDS": str(GUILD_ID), "ASK_COOLDOWN_SECONDS": "0",
            "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip


class Crowd:
    """Users of one server, each in a channel of their own, asking through one server."""

    def __init__(self, server: FakeDiscord, users: int) -> None:
        self.server = server
        self.users = [user(710000000000000000 + i, f"reader_{i}") for i in range(users)]
        self.rooms = [str(server.add_channel(f"room-{i}")) for i in range(users)]

    async def ask(self, who: int, question: str, slash: bool) -> Asked:
        """One question, as a slash command or a mention, from user `who`."""
        room = self.rooms[who]
        if slash:
            options = [{"name": "question", "type": 3, "value": question[:300]}]
            payload = self.server.interaction("ask", options, who=self.users[who],
                                              channel=int(room))  # fmt: skip
            asked = Asked("slash", question, time.monotonic(), payload["token"], room)
            refusal = await self.server.interact(payload)
            assert refusal is None, refusal
            return asked
        msg = self.server.user_message(f"<@{BOT_USER['id']}> {question}", who=self.users[who],
                                       mentions=[BOT_USER], channel=int(room))  # fmt: skip
        asked = Asked("mention", question, time.monotonic(), msg["id"], room)
        await self.server.dispatch("MESSAGE_CREATE", msg)
        return asked


def _settle(asked: list[Asked], calls: list[Call]) -> None:
    """When each question was acknowledged and answered, from the calls the bot made."""
    by_token = {a.key: a for a in asked if a.kind == "slash"}
    by_message = {a.key: a for a in asked if a.kind == "mention"}
    by_room = {a.channel: [] for a in asked}  # type: dict[str, list[Asked]]
    for a in asked:
        if a.kind == "mention":
            by_room[a.channel].append(a)
    for c in calls:
        at = c.at  # type: ignore[attr-defined]
        if c.status >= 400:
            continue
        parts = c.path.split("/")
        if c.path.startswith("/interactions/") and parts[-1] == "callback":
            a = by_token.get(parts[3])
            if a is not None and a.ack is None:
                a.ack = at
        elif c.path.startswith(f"/webhooks/{APP_ID}/"):
            a = by_token.get(parts[3])
            body = c.json if isinstance(c.json, dict) else {}
            if a is not None and a.answered is None and (body.get("embeds") or body.get("content")):
                a.answered = at
        elif c.path.endswith("/typing"):
            waiting = [a for a in by_room.get(parts[2], []) if a.ack is None and a.sent <= at]
            if waiting:
                waiting[0].ack = at
        elif c.method == "POST" and c.path.endswith("/messages") and isinstance(c.json, dict):
            ref = (c.json.get("message_reference") or {}).get("message_id")
            a = by_message.get(str(ref))
            if a is not None and a.answered is None:
                a.answered = at


def _memory_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory now (VmRSS) or its peak so far (VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith(field))
    return kb / 1024


def _max_lag_ms(lag_file: Path, since: float, until: float) -> float:
    lags = [json.loads(line) for line in lag_file.read_text().splitlines() if line.strip()]
    return 1000 * max((x["lag"] for x in lags if since <= x["at"] <= until), default=0.0)


async def _wait_answered(asked: list[Asked], server: FakeDiscord, limit: float) -> None:
    """Until every question has its answer, or `limit` seconds: the calls are looked at
    under the server's lock each time it records one (a signal, not a sleep, and none
    missed between a look and the wait)."""

    def done() -> bool:
        _settle(asked, server.calls)
        return all(a.answered is not None for a in asked)

    async with server.new_call:
        try:
            await asyncio.wait_for(server.new_call.wait_for(done), limit)
        except TimeoutError:
            done()


async def crowd_run(crowd: Crowd, questions: list[str], n: int, seconds: float,
                    rng: random.Random) -> list[Asked]:  # fmt: skip
    """`n` questions in `seconds`, a burst a second from different users; slash commands
    and mentions alternate."""
    bursts = max(1, int(seconds))
    per_burst = [n // bursts + (1 if i < n % bursts else 0) for i in range(bursts)]
    asked: list[Asked] = []
    start = time.monotonic()
    for b, count in enumerate(per_burst):
        await asyncio.sleep(max(0.0, start + b - time.monotonic()))  # the burst's second
        users = rng.sample(range(len(crowd.users)), min(count, len(crowd.users)))
        sends = [crowd.ask(u, rng.choice(questions), slash=(len(asked) + i) % 2 == 0)
                 for i, u in enumerate(users)]  # fmt: skip
        asked += await asyncio.gather(*sends)
    await _wait_answered(asked, crowd.server, DRAIN_SECONDS)
    return asked


def _report(name: str, asked: list[Asked], users: int, seconds: float, lag_ms: float,
            peak_mb: float) -> dict[str, Any]:  # fmt: skip
    acked = sum(1 for a in asked if a.ack is not None and a.ack - a.sent <= ACK_DEADLINE)
    done = [a.answered - a.sent for a in asked if a.answered is not None]
    times = percentiles(done) if done else {"p50_ms": 0.0, "p95_ms": 0.0}
    result = {"run": name, "questions": len(asked), "users": users, "seconds": seconds,
              "acknowledged_within_3s": acked, "answered": len(done),
              "p50_ms": times["p50_ms"], "p95_ms": times["p95_ms"],
              "max_ms": 1000 * max(done, default=0.0), "max_loop_lag_ms": lag_ms,
              "peak_rss_mb": peak_mb}  # fmt: skip
    print(f"{name}: acknowledged within 3 s {acked}/{len(asked)}, answered "
          f"{len(done)}/{len(asked)}, answer p50 {times['p50_ms']:.0f} ms, p95 "
          f"{times['p95_ms']:.0f} ms, max {result['max_ms']:.0f} ms, max loop lag "
          f"{lag_ms:.0f} ms, peak RSS {peak_mb:.0f} MB", flush=True)  # fmt: skip
    return result


async def _reindex_run(crowd: Crowd, library: Path, questions: list[str], args: Any,
                       rng: random.Random) -> list[Asked]:  # fmt: skip
    """The crowd run while an admin's /reindex rebuilds the library."""
    for i, essay in enumerate(sorted(library.glob("*.md"))):
        with essay.open("a", encoding="utf-8") as out:
            out.write(f"\n\nA note added for the load bench, number {i}, on the essay's end.\n")
    admin = crowd.server.interaction("reindex", who=ADMIN, admin=True)
    assert await crowd.server.interact(admin) is None
    asked = await crowd_run(crowd, questions, args.questions, args.seconds, rng)
    path = f"/webhooks/{APP_ID}/{admin['token']}"

    def reported(c: Call) -> bool:
        content = (c.json or {}).get("content") or "" if isinstance(c.json, dict) else ""
        return c.path.startswith(path) and content.startswith(("Index generation", "Index is"))

    try:
        report = await crowd.server.wait_for(reported, DRAIN_SECONDS * 3)
        print(f"reindex: {report.json['content'].splitlines()[0]}", flush=True)
    except TimeoutError:
        print("reindex: no report (see the bot's log: --keep-log)", flush=True)
    return asked


async def soak(crowd: Crowd, questions: list[str], pid: int, total: int,
               rng: random.Random) -> dict[str, float]:  # fmt: skip
    """`total` questions, a steady stream of a few in flight; memory after the first 200
    questions (caches warm) and at the end."""
    flight = asyncio.Semaphore(SOAK_IN_FLIGHT)
    asked: list[Asked] = []
    start_mb = 0.0

    async def one(i: int) -> None:
        async with flight:
            a = await crowd.ask(rng.randrange(len(crowd.users)), rng.choice(questions), i % 2 == 0)
            asked.append(a)
            await _wait_answered([a], crowd.server, DRAIN_SECONDS)

    for chunk in range(0, total, 100):
        await asyncio.gather(*(one(i) for i in range(chunk, min(total, chunk + 100))))
        if chunk + 100 == 200:
            start_mb = _memory_mb(pid)
        if (chunk + 100) % 500 == 0 or chunk + 100 == 200:
            print(f"soak: {chunk + 100} questions, RSS {_memory_mb(pid):.0f} MB", flush=True)
        # The server keeps every call; a soak would grow it, not the bot: forget settled ones.
        crowd.server.calls.clear()
    end_mb = _memory_mb(pid)
    answered = sum(1 for a in asked if a.answered is not None)
    for a in asked:
        if a.answered is None:
            print(f"unanswered {a.kind} (acknowledged: {a.ack is not None}): {a.question!r}")
    growth = (end_mb - start_mb) / start_mb if start_mb else 0.0
    print(f"soak: {total} questions, answered {answered}, RSS after 200 {start_mb:.0f} MB, "
          f"at the end {end_mb:.0f} MB (growth {100 * growth:.1f}%)", flush=True)  # fmt: skip
    return {"questions": total, "answered": answered, "rss_after_200_mb": start_mb,
            "rss_end_mb": end_mb, "growth": growth}  # fmt: skip


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    library, questions = _questions()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        work = Path(tmp)
        lib_copy, index_copy = _prepared(library, work)
        server = FakeDiscord(bot_permissions=invite_permissions())
        server.calls = Stamped()
        crowd = Crowd(server, args.users)
        await server.start()
        lag_file = work / "lag.jsonl"
        lag_file.touch()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.load_bot", server.api, server.gateway_url,
            str(lag_file), env=_bot_env(lib_copy, index_copy, work), cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=open(work / "bot.log", "w"),  # noqa: SIM115
        )  # fmt: skip
        results: dict[str, Any] = {"library": library.name}
        try:
            await asyncio.wait_for(server.ready.wait(), 300)
            await server.wait_for(lambda c: c.method == "PUT" and "commands" in c.path, 300)
            runs = [] if args.soak else [("plain", False), ("reindex", True)]
            for name, reindex in runs:
                since = time.time()
                server.calls.clear()
                if reindex:
                    asked = await _reindex_run(crowd, lib_copy, questions, args, rng)
                else:
                    asked = await crowd_run(crowd, questions, args.questions, args.seconds, rng)
                lag = _max_lag_ms(lag_file, since, time.time())
                results[name] = _report(name, asked, args.users, args.seconds, lag,
                                        _memory_mb(proc.pid, "VmHWM"))  # fmt: skip
            if args.soak:
                results["soak"] = await soak(crowd, questions, proc.pid, args.soak_questions, rng)
        finally:
            proc.terminate()
            await proc.wait()
            await server.stop()
            if args.keep_log:
                shutil.copy(work / "bot.log", args.keep_log)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--soak", action="store_true", help="5,000 questions in one process")
    parser.add_argument("--soak-questions", type=int, default=5000)
    parser.add_argument("--keep-log", metavar="FILE", help="keep the bot's log here")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    save_result("bench_load_soak" if args.soak else "bench_load", results)
    if not args.soak:
        worst = [results["plain"], results["reindex"]]
        q = sum(r["questions"] for r in worst)
        print(
            f"load: {q} questions from {args.users} users in {2 * args.seconds:.0f} s: "
            f"acknowledged within 3 s {sum(r['acknowledged_within_3s'] for r in worst)}/{q}, "
            f"answered {sum(r['answered'] for r in worst)}/{q}, "
            f"p95 answer {max(r['p95_ms'] for r in worst):.0f} ms, "
            f"max loop lag {max(r['max_loop_lag_ms'] for r in worst):.0f} ms, "
            f"peak RSS {max(r['peak_rss_mb'] for r in worst):.0f} MB"
        )


if __name__ == "__main__":
    main()
