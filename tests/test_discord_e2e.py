"""The real bot (discord.py unmodified) against the local Discord-compatible server."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import pytest
import yarl
from discord.http import Route

from bot.answer.engine import Engine
from bot.frontends.discord import views
from bot.frontends.discord.client import ExplainerBot
from bot.frontends.discord.embeds import NAME_RE
from bot.index.embed import Embedder
from bot.settings import ROOT, Settings
from tests.discord_harness import Harness, bot_settings, invite_permissions, running_bot
from tests.fakediscord import (
    ADMIN,
    ADMIN_ROLE_ID,
    APP_ID,
    BOT_USER,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    FORUM_POST_ID,
    GUILD_ID,
    LOG_CHANNEL_ID,
    MEMBER,
    OTHER_CHANNEL_ID,
    OTHER_GUILD_ID,
    SEND_MESSAGES_IN_THREADS,
    THREAD_ID,
    FakeDiscord,
    user,
)
from tests.published import assert_published, published_anywhere

pytestmark = pytest.mark.e2e

ESSAY = (
    "---\ntitle: Drones over the Dnipro\nauthor: Dana Writer\ndate: 2025-04-01\n---\n"
    "Drone warfare has changed the front line beyond recognition. Cheap quadcopters now "
    "watch every road, and any vehicle that moves in daylight is hunted within minutes. "
    "Both armies have learned to disperse, to dig deeper and to move only at night.\n"
)


@pytest.fixture
async def harness(
    library: Path, private_index: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Harness]:
    caplog.set_level(logging.INFO)
    async with running_bot(bot_settings(library, private_index), embedder) as harness:
        yield harness


def _replies_to(call: Any, message: dict[str, Any]) -> bool:
    if not isinstance(call.json, dict):
        return False
    ref = call.json.get("message_reference") or {}
    return str(ref.get("message_id")) == message["id"]


def _quotes(embeds: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in embeds:
        text = e["description"]
        assert text.startswith("> ")
        out.append(re.sub(r"\\(.)", r"\1", text[2:]))  # undo markdown escaping
    return out


def _assert_within_limits(embeds: list[dict[str, Any]]) -> None:
    assert len(embeds) <= 10
    total = 0
    for e in embeds:
        assert len(e.get("title", "")) <= 256
        assert len(e.get("description", "")) <= 4096
        assert len(e.get("fields", [])) <= 25
        for f in e.get("fields", []):
            assert len(f["name"]) <= 256 and len(f["value"]) <= 1024
        assert len(e.get("footer", {}).get("text", "")) <= 2048
        total += sum(len(e.get(k, "")) for k in ("title", "description"))
        total += len(e.get("footer", {}).get("text", ""))
        total += sum(len(f["name"]) + len(f["value"]) for f in e.get("fields", []))
    assert total <= 6000


def _verbatim(harness: Harness, quote: str) -> bool:
    """The quote (cut short with "…" or not) stands in an essay file of the bot's library
    folder, as it is on disk."""
    return published_anywhere(quote.rstrip("…"), harness.bot.settings.seeds_dir)


async def test_login_and_command_sync(harness: Harness) -> None:
    home = f"/applications/{APP_ID}/guilds/{GUILD_ID}/commands"
    await harness.server.wait_for(lambda c: c.method == "PUT" and c.path == home)
    sync = next(c for c in harness.server.calls if c.method == "PUT" and c.path == home)
    names = {c["name"] for c in sync.json}
    assert {"ask", "essays", "summary", "perspectives", "reindex", "add-essay"} <= names

    def walk(cmds: list[dict[str, Any]]) -> None:
        for c in cmds:
            assert NAME_RE.match(c["name"]) and c["name"] == c["name"].lower()
            assert 1 <= len(c["description"]) <= 100
            walk(c.get("options", []))

    walk([c for c in sync.json if c.get("type", 1) == 1])  # slash commands
    menus = [c for c in sync.json if c.get("type") == 3]  # message commands: any case
    assert menus and all(1 <= len(c["name"]) <= 32 for c in menus)
    admin_cmds = {c["name"]: c for c in sync.json if c["name"] in ("reindex", "add-essay")}
    perms = {n: c.get("default_member_permissions") for n, c in admin_cmds.items()}
    assert perms == {"reindex": "32", "add-essay": "32"} or perms == {
        "reindex": 32,
        "add-essay": 32,
    }, perms  # Manage Server
    # Development mode: the global registration is emptied, so no stale copy stays live.
    glob = f"/applications/{APP_ID}/commands"
    await harness.server.wait_for(lambda c: c.method == "PUT" and c.path == glob)
    assert harness.server.commands["global"] == []
    assert not harness.errors


async def test_ask_defers_then_follows_up_with_verbatim_embeds(harness: Harness) -> None:
    q = harness.server.interaction(
        "ask", [{"name": "question", "type": 3, "value": "Why can't Putin afford to end the war?"},
                {"name": "public", "type": 5, "value": True}],
    )  # fmt: skip
    await harness.command(q)
    assert harness.callback(q).json["type"] == 5  # deferred: "thinking…"
    follow = await harness.followup(q)
    embeds = follow.json["embeds"]
    assert 1 <= len(embeds) <= 3
    _assert_within_limits(embeds)
    for quote in _quotes(embeds):
        assert _verbatim(harness, quote), quote
    assert any("afford to end the war" in q for q in _quotes(embeds))
    assert "Mick Ryan" in embeds[0]["footer"]["text"] or any(
        "Mick Ryan" in e["footer"]["text"] for e in embeds
    )
    assert follow.json["allowed_mentions"]["parse"] == []
    labels = [c["label"] for row in follow.json["components"] for c in row["components"]]
    assert labels == ["More excerpts", "Show context", "Helpful", "Not helpful"]
    assert not harness.errors


async def test_buttons_page_and_context_for_the_asker_only(harness: Harness) -> None:
    q = harness.server.interaction(
        "ask", [{"name": "question", "type": 3, "value": "Can a ceasefire with Russia hold?"}]
    )
    await harness.command(q)
    follow = await harness.followup(q)
    message_id = next(iter(harness.server.messages))  # noqa: F841 - any message works
    sent = [m for m in harness.server.messages.values() if m.get("components")][-1]
    ids = {c["label"]: c["custom_id"] for row in sent["components"] for c in row["components"]}

    stranger = harness.server.component(sent, ids["More excerpts"], who=ADMIN)
    await harness.command(stranger)
    refusal = harness.callback(stranger).json
    assert refusal["type"] == 4 and refusal["data"]["flags"] & 64
    assert "belong to the person who asked" in refusal["data"]["content"]

    more = harness.server.component(sent, ids["More excerpts"])
    await harness.command(more)
    page2 = harness.callback(more).json
    assert page2["type"] == 7  # the message is edited in place
    first_titles = [e["title"] for e in follow.json["embeds"]]
    second_titles = [e["title"] for e in page2["data"]["embeds"]]
    assert second_titles and second_titles[0].startswith("4.") and first_titles[0].startswith("1.")
    _assert_within_limits(page2["data"]["embeds"])

    ctx = harness.server.component(sent, ids["Show context"])
    await harness.command(ctx)
    wide = await harness.followup(ctx)
    assert wide.json["flags"] & 64
    for quote in _quotes(wide.json["embeds"]):
        assert _verbatim(harness, quote)
    assert not harness.errors


async def test_mention_and_dm_get_replies(harness: Harness) -> None:
    text = f"<@{BOT_USER['id']}> How did Lenin get back to Russia in 1917?"
    msg = harness.server.user_message(text, mentions=[BOT_USER])
    await harness.server.dispatch("MESSAGE_CREATE", msg)
    reply = await harness.server.wait_for(
        lambda c: c.method == "POST" and c.path.endswith("/messages") and _replies_to(c, msg)
    )
    assert any("closed train" in q for q in _quotes(reply.json["embeds"]))
    assert reply.json["allowed_mentions"]["parse"] == []

    dm = harness.server.user_message("Does Russia honour the treaties it signs?", dm=True)
    await harness.server.dispatch("MESSAGE_CREATE", dm)
    dm_reply = await harness.server.wait_for(lambda c: _replies_to(c, dm))
    assert dm_reply.path.startswith("/channels/") and dm_reply.json["embeds"]
    ignored = harness.server.user_message("no mention here, just chatting")
    handled = await harness.handled(ignored)
    assert handled is False  # the handler finished without answering...
    assert not any(_replies_to(c, ignored) for c in harness.server.calls)  # ...or sending
    assert not harness.errors


async def test_everyone_in_a_question_pings_no_one(harness: Harness) -> None:
    q = harness.server.interaction(
        "ask",
        [{"name": "question", "type": 3, "value": "@everyone <@123> what about banana bread?"}],
    )
    await harness.command(q)
    follow = await harness.followup(q)
    assert (
        follow.json["allowed_mentions"] == {"parse": []}
        or follow.json["allowed_mentions"]["parse"] == []
    )
    assert follow.json["embeds"][0]["title"] == "Not covered by the library"


async def test_admin_commands_refused_for_members(harness: Harness, library: Path) -> None:
    """Discord hides the admin commands from members without Manage Server; where a server
    admin's override lets another role run them, the bot still refuses."""
    before = sorted(p.name for p in library.iterdir())
    q = harness.server.interaction("reindex", who=MEMBER)
    assert await harness.server.interact(q) == "missing default_member_permissions"
    harness.server.overrides[(str(GUILD_ID), "reindex")] = {str(GUILD_ID)}  # all of @everyone
    harness.server.overrides[(str(GUILD_ID), "add-essay")] = {str(GUILD_ID)}
    q = harness.server.interaction("reindex", who=MEMBER, roles=[str(GUILD_ID)])
    await harness.command(q)
    cb = harness.callback(q).json
    assert cb["type"] == 4 and cb["data"]["flags"] & 64
    assert "Only the library's admins" in cb["data"]["content"]
    att = harness.server.attachment("drones.md", ESSAY.encode())
    add = harness.server.interaction(
        "add-essay", [{"name": "file", "type": 11, "value": att["id"]}], who=MEMBER,
        resolved={"attachments": {att["id"]: att}}, roles=[str(GUILD_ID)],
    )  # fmt: skip
    await harness.command(add)
    assert "Only the library's admins" in harness.callback(add).json["data"]["content"]
    assert sorted(p.name for p in library.iterdir()) == before


async def test_admin_add_essay_and_reindex(harness: Harness, caplog) -> None:  # type: ignore[no-untyped-def]
    att = harness.server.attachment("drones.md", ESSAY.encode())
    add = harness.server.interaction(
        "add-essay", [{"name": "file", "type": 11, "value": att["id"]}], who=ADMIN, admin=True,
        resolved={"attachments": {att["id"]: att}},
    )  # fmt: skip
    await harness.command(add)
    done = await harness.said(add, "Added drones-over-the-dnipro")
    assert re.search(r"\d+ passages", done.json["content"])
    assert any("add-essay drones.md" in r.getMessage() and "ada_admin" in r.getMessage()
               for r in caplog.records)  # fmt: skip

    q = harness.server.interaction(
        "ask", [{"name": "question", "type": 3, "value": "How have drones changed the front?"}]
    )
    await harness.command(q)
    follow = await harness.followup(q)
    assert "Drones over the Dnipro" in follow.json["embeds"][0]["title"]

    re_q = harness.server.interaction("reindex", who=ADMIN, admin=True)
    await harness.command(re_q)
    await harness.said(re_q, "Index")
    assert harness.original(re_q)["flags"] & 64  # the report stays with the admin
    assert not harness.errors


@pytest.mark.parametrize(
    ("name", "data", "size", "reason"),
    [
        ("blob.txt", bytes(range(256)) * 40, None, "binary"),
        ("empty.txt", b"", None, "empty"),
        ("huge.txt", b"x" * 1024, 50 * 1024 * 1024, "limit"),
    ],
)
async def test_bad_attachments_refused(
    harness: Harness, library: Path, name: str, data: bytes, size: int | None, reason: str
) -> None:
    before = {p.name: p.read_bytes() for p in library.iterdir()}
    att = harness.server.attachment(name, data, size=size)
    add = harness.server.interaction(
        "add-essay", [{"name": "file", "type": 11, "value": att["id"]}], who=ADMIN, admin=True,
        resolved={"attachments": {att["id"]: att}},
    )  # fmt: skip
    await harness.command(add)
    if size is None:
        reply = (await harness.said(add, reason)).json["content"]
    else:  # refused before downloading or deferring
        reply = harness.callback(add).json["data"]["content"]
    assert reason in reply
    assert {p.name: p.read_bytes() for p in library.iterdir()} == before


async def test_cooldown(harness: Harness) -> None:
    harness.bot.settings = harness.bot.settings.with_(ask_cooldown_seconds=30)
    hasty = user(700000000000000099, "hasty_user")  # its own cooldown bucket
    first = harness.server.interaction(
        "ask", [{"name": "question", "type": 3, "value": "Does Russia keep treaties?"}], hasty
    )
    await harness.command(first)
    await harness.followup(first)
    second = harness.server.interaction(
        "ask", [{"name": "question", "type": 3, "value": "Does Russia keep treaties?"}], hasty
    )
    await harness.command(second)
    cb = harness.callback(second).json
    assert cb["type"] == 4 and cb["data"]["flags"] & 64
    assert re.search(r"try again in \d+ s", cb["data"]["content"])
    # A mention or a DM shares the same clock: no way around the cooldown.
    for dm in (False, True):
        text = "Does Russia keep treaties?" if dm else f"<@{BOT_USER['id']}> Keep treaties?"
        msg = harness.server.user_message(text, who=hasty, dm=dm, mentions=[BOT_USER])
        assert await harness.handled(msg) is True
        reply = next(c for c in harness.server.calls if _replies_to(c, msg))
        assert re.search(r"try again in \d+ s", reply.json["content"]) and not reply.json.get(
            "embeds"
        )


@pytest.mark.parametrize("public", [False, True])
async def test_an_error_keeps_the_questions_visibility(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, public: bool
) -> None:
    """After a defer, the error becomes the original response with the visibility the
    asker chose: never public for a private question, never hidden for a public one."""

    def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("index on fire")

    monkeypatch.setattr(harness.bot.engine, "ask", broken)
    options = [{"name": "question", "type": 3, "value": "Anything?"},
               {"name": "public", "type": 5, "value": public}]  # fmt: skip
    q = harness.server.interaction("ask", options)
    await harness.command(q)
    await harness.said(q, "Something went wrong")
    shown = harness.original(q)
    assert "Something went wrong" in shown["content"] and "index on fire" not in shown["content"]
    assert bool(shown["flags"] & 64) is not public
    assert len([m for m in harness.server.messages.values() if "Something" in m["content"]]) == 1
    assert any(kind == "command" and "index on fire" in repr(err) for kind, err in harness.errors)


async def test_essays_summary_and_perspectives(harness: Harness) -> None:
    q = harness.server.interaction("essays")
    await harness.command(q)
    listing = (await harness.followup(q)).json["embeds"][0]
    assert len(listing["fields"]) == 3
    _assert_within_limits([listing])

    auto = harness.server.interaction(
        "summary", [{"name": "essay", "type": 1, "options": [
            {"name": "essay", "type": 3, "value": "ryan", "focused": True}]}], kind=4,
    )  # fmt: skip
    auto["data"]["options"] = [{"name": "essay", "type": 1, "options": [
        {"name": "essay", "type": 3, "value": "ryan", "focused": True}]}]  # fmt: skip
    await harness.command(auto)
    choices = harness.callback(auto).json["data"]["choices"]
    assert [c["value"] for c in choices] == ["ryan-putin-cannot-afford-a-peace-deal"]

    longest = max(harness.bot.engine.snapshot().docs.values(), key=lambda d: len(d.text))
    s = harness.server.interaction(
        "summary", [{"name": "essay", "type": 1, "options": [
            {"name": "essay", "type": 3, "value": longest.meta.doc_id}]}],
    )  # fmt: skip
    await harness.command(s)
    embeds = (await harness.followup(s)).json["embeds"]
    _assert_within_limits(embeds)
    assert all(_verbatim(harness, part.split("\n*")[0][2:].replace("\\", ""))
               for part in embeds[0]["description"].split("\n\n"))  # fmt: skip

    p = harness.server.interaction(
        "perspectives", [{"name": "question", "type": 3, "value": "Can a ceasefire hold?"}]
    )
    await harness.command(p)
    follow = await harness.followup(p)
    _assert_within_limits(follow.json["embeds"])
    assert len(follow.json["embeds"]) >= 2  # one per author
    assert not harness.errors


async def test_refused_token_is_a_one_line_error(
    library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.frontends.discord.client import run

    server = FakeDiscord()
    server.reject_token = True
    await server.start()
    old_base = Route.BASE
    Route.BASE = server.api
    try:
        settings = Settings(seeds_dir=library, index_dir=tmp_path / "i", discord_token="bad")
        code = await asyncio.to_thread(run, settings)
    finally:
        Route.BASE = old_base
        await server.stop()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert [ln for ln in err if ln.startswith("error: ")] == [
        "error: Discord refused the token (DISCORD_TOKEN); reset it in the portal"
    ]
    assert not any("Traceback" in line for line in err)
    assert run(Settings(discord_token="")) == 2


async def test_another_servers_admin_cannot_touch_the_library(
    harness: Harness, library: Path
) -> None:
    """The admin commands are not registered in any other server, so Discord offers them
    nowhere else; a registration left over there, or a forged server id, is refused by the
    bot; nothing changes in the library."""
    before = {p.name: p.read_bytes() for p in library.iterdir()}
    generation = harness.bot.engine.snapshot().generation
    assert set(harness.server.commands) == {str(GUILD_ID), "global"}
    outsider = user(700000000000000077, "other_owner")
    att = harness.server.attachment("drones.md", ESSAY.encode())
    add = harness.server.interaction(
        "add-essay", [{"name": "file", "type": 11, "value": att["id"]}], who=outsider,
        admin=True, guild=OTHER_GUILD_ID, resolved={"attachments": {att["id"]: att}},
    )  # fmt: skip
    assert await harness.server.interact(add) == "no such command here"
    dm = harness.server.interaction("reindex", who=ADMIN, dm=True)
    assert await harness.server.interact(dm) == "no such command here"
    # A registration left over in the other server (say, by an older version).
    home = harness.server.commands[str(GUILD_ID)]
    harness.server.commands[str(OTHER_GUILD_ID)] = [c for c in home if c["name"] == "reindex"]
    stale = harness.server.interaction("reindex", who=outsider, admin=True, guild=OTHER_GUILD_ID)
    await harness.command(stale)
    forged = harness.server.interaction("reindex", who=outsider, admin=True, guild=OTHER_GUILD_ID)
    forged["data"]["guild_id"] = str(GUILD_ID)  # claims the home registration
    await harness.server.dispatch("INTERACTION_CREATE", forged)
    await harness.server.wait_for(lambda c: c.path.startswith(f"/interactions/{forged['id']}/"))
    for payload, says in ((stale, "not available here"),
                          (forged, "administered from its home server")):  # fmt: skip
        reply = harness.callback(payload).json
        assert reply["type"] == 4 and reply["data"]["flags"] & 64
        assert says in reply["data"]["content"]
    assert {p.name: p.read_bytes() for p in library.iterdir()} == before
    assert harness.bot.engine.snapshot().generation == generation


async def test_the_admin_role_by_id_may_administer(harness: Harness) -> None:
    """A member without Manage Server but with ADMIN_ROLE_ID (by id) may reindex once a
    server admin allows the role under Integrations (as docs/discord.md says); a role that an
    override lets in but whose id is not ADMIN_ROLE_ID may not."""
    librarian = user(700000000000000055, "lena_librarian")
    q = harness.server.interaction("reindex", who=librarian, roles=[str(ADMIN_ROLE_ID)])
    assert await harness.server.interact(q) == "missing default_member_permissions"
    harness.server.overrides[(str(GUILD_ID), "reindex")] = {str(ADMIN_ROLE_ID), "12345"}
    q = harness.server.interaction("reindex", who=librarian, roles=[str(ADMIN_ROLE_ID)])
    await harness.command(q)
    assert harness.callback(q).json["type"] == 5  # deferred: allowed
    await harness.said(q, "Index")
    entry = harness.bot.admin.audit.entries(1)[0]
    assert entry.action == "reindex" and f"server {GUILD_ID}" in entry.who
    assert str(librarian["id"]) in entry.who
    impostor = harness.server.interaction("reindex", who=librarian, roles=["12345"])
    await harness.command(impostor)
    assert "Only the library's admins" in harness.callback(impostor).json["data"]["content"]


async def test_without_home_servers_admin_commands_are_not_registered(
    library: Path, private_index: Path, embedder: Embedder
) -> None:
    settings = Settings(seeds_dir=library, index_dir=private_index, discord_token="fake")
    server = FakeDiscord()
    await server.start()
    old_base, old_gateway = Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = server.api
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(server.gateway_url)
    bot = ExplainerBot(Engine(settings, embedder), settings, guild_ready_timeout=0.1)
    task = asyncio.create_task(bot.start("fake-token"))
    try:
        await asyncio.wait_for(bot.wait_until_ready(), 60)
        names = {c["name"] for c in server.commands["global"]}
        assert "ask" in names and not names & {"reindex", "add-essay"}
        assert set(server.commands) == {"global"}
    finally:
        await bot.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop()
        Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


async def test_a_refused_sync_is_a_one_line_error(
    library: Path, private_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.frontends.discord.client import run

    server = FakeDiscord()
    server.refuse_guilds = {str(GUILD_ID)}
    await server.start()
    old_base, old_gateway = Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = server.api
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(server.gateway_url)
    try:
        settings = Settings(seeds_dir=library, index_dir=private_index, discord_token="t",
                            discord_guild_id=GUILD_ID)  # fmt: skip
        code = await asyncio.to_thread(run, settings)
    finally:
        Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway
        await server.stop()
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error: ")]
    assert code == 2 and len(errors) == 1
    assert "refused to register the commands to server" in errors[0]
    assert "applications.commands" in errors[0]


async def test_essays_pages_through_a_large_library(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.answer.engine import EssayInfo
    from bot.ingest.model import EssayMeta

    many = [EssayInfo(EssayMeta(f"essay-{i:03d}", f"Essay {i}", "A. Writer"), 4)
            for i in range(300)]  # fmt: skip
    monkeypatch.setattr(harness.bot.engine, "indexed_essays", lambda: many)
    q = harness.server.interaction("essays")
    await harness.command(q)
    first = (await harness.followup(q)).json
    ids = [f["value"].split("`")[1] for f in first["embeds"][0]["fields"]]
    sent = [m for m in harness.server.messages.values() if m.get("components")][-1]
    buttons = {c["label"]: c["custom_id"] for row in sent["components"] for c in row["components"]}
    for _ in range(29):
        press = harness.server.component(sent, buttons["Next ▶"])
        await harness.command(press)
        page = harness.callback(press).json
        assert page["type"] == 7  # the listing is edited in place
        _assert_within_limits(page["data"]["embeds"])
        ids += [f["value"].split("`")[1] for f in page["data"]["embeds"][0]["fields"]]
        sent = {**sent, "components": page["data"]["components"]}
    assert ids == [e.essay.doc_id for e in many]  # all 300, once each, none truncated
    last = {c["label"]: c.get("disabled", False) for row in sent["components"]
            for c in row["components"]}  # fmt: skip
    assert last == {"◀ Previous": False, "Next ▶": True}


async def test_answer_buttons_expire_on_a_deadline_and_say_so(harness: Harness) -> None:
    cog = harness.bot.get_cog("AskCog")
    assert cog is not None
    cog.button_lifetime = 0.5  # type: ignore[attr-defined]  (15 minutes scaled down)
    q = harness.server.interaction(
        "ask", [{"name": "question", "type": 3, "value": "Can a ceasefire with Russia hold?"}]
    )
    await harness.command(q)
    follow = await harness.followup(q)
    sent = [m for m in harness.server.messages.values() if m.get("components")][-1]
    ids = {c["label"]: c["custom_id"] for row in sent["components"] for c in row["components"]}
    more = harness.server.component(sent, ids["More excerpts"])
    await harness.command(more)
    assert harness.callback(more).json["type"] == 7  # a press works, and extends nothing
    # The explicit signal: the bot edits the answer through its token to disable them.
    edit = await harness.server.wait_for(
        lambda c: c.method == "PATCH" and c.path.startswith(f"/webhooks/{APP_ID}/{q['token']}")
    )
    assert all(c.get("disabled") for row in edit.json["components"] for c in row["components"])
    assert follow.json["components"]
    late = harness.server.component(sent, ids["Show context"])
    await harness.command(late)
    reply = harness.callback(late).json
    assert reply["type"] == 4 and reply["data"]["flags"] & 64
    assert "expired" in reply["data"]["content"]


async def test_a_button_from_before_a_restart_says_ask_again(harness: Harness) -> None:
    old = harness.server.message(
        "900000000000000200", {"components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "label": "More excerpts",
             "custom_id": "answer:more:0123456789abcdef0123456789abcdef"}]}]},
        author=BOT_USER,
    )  # fmt: skip
    press = harness.server.component(old, "answer:more:0123456789abcdef0123456789abcdef")
    await harness.command(press)
    reply = harness.callback(press).json
    assert reply["type"] == 4 and reply["data"]["flags"] & 64
    assert "ask again" in reply["data"]["content"]


async def test_a_slash_command_in_a_dm(
    library: Path, private_index: Path, embedder: Embedder
) -> None:
    """Global commands (production: no DISCORD_GUILD_ID) work in a DM with the bot; the
    admin commands are not offered there."""
    settings = bot_settings(library, private_index, discord_guild_id=None)
    async with running_bot(settings, embedder) as harness:
        q = harness.server.interaction(
            "ask", [{"name": "question", "type": 3, "value": "How did Lenin get back to Russia?"}],
            dm=True,
        )  # fmt: skip
        await harness.command(q)
        follow = await harness.followup(q)
        assert any("closed train" in quote for quote in _quotes(follow.json["embeds"]))
        assert harness.original(q)["channel_id"] == str(DM_CHANNEL_ID)
        admin = harness.server.interaction("reindex", who=ADMIN, dm=True)
        assert await harness.server.interact(admin) == "no such command here"
        assert not harness.errors


@pytest.mark.parametrize("where", [THREAD_ID, FORUM_POST_ID], ids=["thread", "forum post"])
async def test_a_mention_in_a_thread_is_answered_in_the_thread(
    harness: Harness, where: int
) -> None:
    msg = harness.server.user_message(
        f"<@{BOT_USER['id']}> How did Lenin get back to Russia in 1917?",
        mentions=[BOT_USER], channel=where,
    )  # fmt: skip
    assert await harness.handled(msg) is True
    reply = next(c for c in harness.server.calls if _replies_to(c, msg))
    assert reply.path == f"/channels/{where}/messages" and reply.status == 200
    assert any("closed train" in q for q in _quotes(reply.json["embeds"]))
    assert not harness.errors


async def test_a_reply_the_bot_may_not_send_is_logged(
    library: Path, private_index: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    """Invited without Send Messages in Threads, the bot's reply in a thread is refused by
    Discord (403): the failure is logged with the channel and the reason."""
    server = FakeDiscord(bot_permissions=invite_permissions() & ~SEND_MESSAGES_IN_THREADS)
    async with running_bot(bot_settings(library, private_index), embedder, server) as harness:
        harness.expected_refusals.add((403, 50013))
        msg = harness.server.user_message(
            f"<@{BOT_USER['id']}> Does Russia keep treaties?", mentions=[BOT_USER],
            channel=THREAD_ID,
        )  # fmt: skip
        assert await harness.handled(msg) is True
        refused = next(c for c in harness.server.calls if _replies_to(c, msg))
        assert (refused.status, refused.code) == (403, 50013)
        logged = [r.getMessage() for r in caplog.records if "could not reply" in r.getMessage()]
        assert logged and str(THREAD_ID) in logged[0] and "Missing Permissions" in logged[0]
        assert not harness.errors


@pytest.mark.parametrize("log_channel", [None, LOG_CHANNEL_ID])
async def test_a_long_reindex_reports_progress_and_outlives_its_token(
    harness: Harness, library: Path, monkeypatch: pytest.MonkeyPatch, log_channel: int | None
) -> None:
    """A rebuild edits its message with its progress; when it outlasts the interaction's
    token (15 minutes), the report goes to ADMIN_LOG_CHANNEL_ID, or by DM to the admin."""
    harness.bot.settings = harness.bot.settings.with_(admin_log_channel_id=log_channel)
    harness.expected_refusals.add((401, 50027))
    cog = harness.bot.get_cog("AdminCog")
    assert cog is not None
    cog.progress_interval = 0.01  # type: ignore[attr-defined]
    (library / "drones.md").write_text(ESSAY, encoding="utf-8")  # copied in by hand
    token_gone = threading.Event()
    real = harness.bot.admin.reindex

    def slow_reindex(who: str, progress: Any = None, **kw: Any) -> Any:
        def hook(stage: str, done: int, total: int) -> None:
            progress(stage, done, total)
            if stage == "embed" and done == total:  # a long build: it ends past the token
                assert token_gone.wait(60)

        return real(who, progress=hook, **kw)

    monkeypatch.setattr(harness.bot.admin, "reindex", slow_reindex)
    q = harness.server.interaction("reindex", who=ADMIN, admin=True)
    await harness.command(q)
    shown = await harness.said(q, "embedding passages")
    assert re.search(r"embedding passages, \d+ / \d+ \(\d+%\)", shown.json["content"])
    harness.server.expire(q["token"])
    token_gone.set()
    where = f"/channels/{log_channel or ''}"
    report = await harness.server.wait_for(
        lambda c: c.method == "POST" and c.path.startswith(where) and c.path.endswith("/messages")
        and "Added: drones" in (c.json or {}).get("content", "")
    )  # fmt: skip
    assert "Reindex (asked by ada\\_admin) finished" in report.json["content"]  # escaped
    if log_channel is None:
        opened = next(c for c in harness.server.calls if c.path == "/users/@me/channels")
        assert str(opened.json["recipient_id"]) == ADMIN["id"]
        assert report.path == f"/channels/{harness.server.dm_channels[ADMIN['id']]}/messages"
    assert harness.bot.admin.audit.entries(1)[0].action == "reindex"
    assert not harness.errors


async def test_a_former_development_server_is_emptied(
    library: Path, private_index: Path, embedder: Embedder
) -> None:
    """Run once in development mode in another server, then in production: the old
    server's copies are removed, so no stale registration stays live there."""
    first = FakeDiscord(bot_permissions=invite_permissions())
    dev = bot_settings(library, private_index, discord_guild_id=OTHER_GUILD_ID)
    async with running_bot(dev, embedder, first):
        assert "ask" in {c["name"] for c in first.commands[str(OTHER_GUILD_ID)]}
    second = FakeDiscord(bot_permissions=invite_permissions())
    second.commands = first.commands  # Discord remembers registrations across runs
    async with running_bot(dev.with_(discord_guild_id=None), embedder, second) as harness:
        assert second.commands[str(OTHER_GUILD_ID)] == []
        assert "ask" in {c["name"] for c in second.commands["global"]}
        home = {c["name"] for c in second.commands[str(GUILD_ID)]}
        assert home == {"reindex", "add-essay", "gaps"}
        assert not harness.errors


async def test_find_sources_on_a_message_then_post_publicly(harness: Harness) -> None:
    names = {(c["name"], c.get("type", 1)) for c in harness.server.commands[str(GUILD_ID)]}
    assert ("Find sources", 3) in names and ("whosaid", 1) in names
    said = harness.server.user_message(
        "Has anyone noticed? Russia never keeps the treaties it signs, it broke every deal.",
        who=ADMIN,
    )  # fmt: skip
    await harness.server.dispatch("MESSAGE_CREATE", said)
    q = harness.server.message_command("Find sources", said)
    await harness.command(q)
    await harness.said(q, "What the essays say about this")
    shown = harness.original(q)
    assert shown["flags"] & 64  # only the person who asked sees it
    quotes = _quotes(shown["embeds"])
    assert quotes and all(_verbatim(harness, quote) for quote in quotes)
    assert "true" not in shown["content"].lower() and "false" not in shown["content"].lower()
    post = next(c["custom_id"] for row in shown["components"] for c in row["components"])
    stranger = harness.server.component(shown, post, who=ADMIN)
    await harness.command(stranger)
    assert "belong to the person who asked" in harness.callback(stranger).json["data"]["content"]
    press = harness.server.component(shown, post)
    await harness.command(press)
    reply = next(c for c in harness.server.calls if _replies_to(c, said))
    assert reply.status == 200 and reply.path == f"/channels/{said['channel_id']}/messages"
    assert reply.json["allowed_mentions"] == {"parse": [], "replied_user": False}
    assert _quotes(reply.json["embeds"]) == quotes[:3]
    assert harness.callback(press).json["type"] == 7  # the button is disabled in place

    off = harness.server.user_message("My banana bread needs two ripe bananas and walnuts.")
    await harness.server.dispatch("MESSAGE_CREATE", off)
    q2 = harness.server.message_command("Find sources", off)
    await harness.command(q2)
    await harness.followup(q2)
    assert harness.original(q2)["embeds"][0]["title"] == "Not covered by the library"
    assert not harness.errors


async def test_whosaid_finds_a_misremembered_line(harness: Harness) -> None:
    line = "putin has nothing to show for the huge costs"
    q = harness.server.interaction("whosaid", [{"name": "quote", "type": 3, "value": line}])
    await harness.command(q)
    await harness.followup(q)
    embeds = harness.original(q)["embeds"]
    assert _quotes(embeds)[0] == "Putin has nothing to show for the massive costs"
    assert "Mick Ryan" in embeds[0]["footer"]["text"]
    assert embeds[0]["footer"]["text"].endswith("· close: 1 word differs")
    _assert_within_limits(embeds)
    short = harness.server.interaction("whosaid", [{"name": "quote", "type": 3, "value": "hi"}])
    await harness.command(short)
    await harness.followup(short)
    assert "at least 3 words" in harness.original(short)["content"]
    assert [type(e.original).__name__ for _, e in harness.errors] == ["InputError"]


async def test_mentions_only_in_allowed_channels(
    library: Path, private_index: Path, embedder: Embedder
) -> None:
    settings = bot_settings(library, private_index, allowed_channel_ids=(CHANNEL_ID,))
    async with running_bot(settings, embedder) as harness:
        ask = f"<@{BOT_USER['id']}> Does Russia keep the treaties it signs?"
        outside = harness.server.user_message(ask, mentions=[BOT_USER], channel=LOG_CHANNEL_ID)
        assert await harness.handled(outside) is False  # finished, silent...
        assert not any(_replies_to(c, outside) for c in harness.server.calls)  # ...sent nothing
        for where in (CHANNEL_ID, THREAD_ID):  # the channel, and a thread of it
            inside = harness.server.user_message(ask, mentions=[BOT_USER], channel=where)
            assert await harness.handled(inside) is True
            assert any(_replies_to(c, inside) for c in harness.server.calls)
        dm = harness.server.user_message("Does Russia keep the treaties it signs?", dm=True)
        assert await harness.handled(dm) is True
        assert not harness.errors


async def test_an_added_essay_is_announced_once(
    library: Path, private_index: Path, embedder: Embedder
) -> None:
    settings = bot_settings(library, private_index, announce_channel_id=LOG_CHANNEL_ID)
    async with running_bot(settings, embedder) as harness:
        cog = harness.bot.get_cog("AnnounceCog")
        assert cog is not None
        assert await cog.check() == 0  # type: ignore[attr-defined]  (first start: no news)
        att = harness.server.attachment("drones.md", ESSAY.encode())
        add = harness.server.interaction(
            "add-essay", [{"name": "file", "type": 11, "value": att["id"]},
                          {"name": "source", "type": 3, "value": "Field Notes"}],
            who=ADMIN, admin=True, resolved={"attachments": {att["id"]: att}},
        )  # fmt: skip
        await harness.command(add)
        channel = f"/channels/{LOG_CHANNEL_ID}/messages"
        card = (await harness.server.wait_for(lambda c: c.path == channel)).json["embeds"][0]
        assert card["title"] == "New in the library: Drones over the Dnipro"
        fields = {f["name"]: f["value"] for f in card["fields"]}
        assert fields == {
            "Author": "Dana Writer",
            "Date": "2025-04-01",
            "Source": "Field Notes",
        }
        points = _quotes([{"description": part} for part in card["description"].split("\n\n")])
        assert len(points) == 2
        for point in points:
            assert_published(point, "drones-over-the-dnipro", library)
        re_q = harness.server.interaction("reindex", who=ADMIN, admin=True)
        await harness.command(re_q)
        await harness.said(re_q, "Index is up to date")
        assert await cog.check() == 0  # type: ignore[attr-defined]  (nothing new)
        assert len([c for c in harness.server.calls if c.path == channel]) == 1
        assert not harness.errors


async def test_feedback_lowers_a_missed_excerpt_and_gaps_lists_what_was_declined(
    harness: Harness,
) -> None:
    question = "Can a ceasefire with Russia hold?"
    q = harness.server.interaction("ask", [{"name": "question", "type": 3, "value": question}])
    await harness.command(q)
    await harness.followup(q)
    shown = harness.original(q)
    ids = {c["label"]: c["custom_id"] for row in shown["components"] for c in row["components"]}
    first = _quotes(shown["embeds"])[0]
    before = harness.bot.engine.ask(question, k=12)
    top = before.excerpts[0]
    assert " ".join(top.quote.split()).startswith(first.rstrip("…").split()[0])

    down = harness.server.component(shown, ids["Not helpful"])
    await harness.command(down)
    menu = harness.original(down)  # the initial response: an ephemeral menu
    assert menu["flags"] & 64 and "Which excerpt missed?" in menu["content"]
    select = menu["components"][0]["components"][0]
    assert select["type"] == 3 and len(select["options"]) == 4  # three excerpts, or none
    pick = harness.server.component(menu, select["custom_id"])
    pick["data"] = {"custom_id": select["custom_id"], "component_type": 3, "values": ["0"]}
    await harness.command(pick)
    assert harness.callback(pick).json["type"] == 7  # the menu is edited: noted

    after = harness.bot.engine.ask(question, k=12)
    moved = next(e for e in after.excerpts if (e.doc_id, e.start) == (top.doc_id, top.start))
    assert moved.quote == top.quote and moved.score < top.score  # lower, word for word
    [rating] = harness.bot.engine.feedback.entries()
    assert rating["vote"] == -1 and rating["server"] == str(GUILD_ID)
    assert harness.bot.engine.ask("What does Lenin's train tell us?", k=12).excerpts  # others fine

    for who in (MEMBER, ADMIN):
        off = harness.server.interaction(
            "ask", [{"name": "question", "type": 3, "value": "Best banana bread recipe?"}], who
        )
        await harness.command(off)
        await harness.followup(off)
    refused = harness.server.interaction("gaps", who=MEMBER)
    assert await harness.server.interact(refused) == "missing default_member_permissions"
    gaps = harness.server.interaction("gaps", who=ADMIN, admin=True)
    await harness.command(gaps)
    listing = harness.callback(gaps).json["data"]["embeds"][0]
    assert listing["title"] == "What the library lacks"
    lines = listing["description"].splitlines()
    assert "banana bread" in lines[0] and "asked 2× by 2 people (2 declined" in lines[0]
    assert any(question in line and "1 rated down" in line for line in lines)
    assert not harness.errors


async def test_two_processes_split_the_shards_and_share_one_library(
    library: Path, seed_index: Path, embedder: Embedder, tmp_path: Path
) -> None:
    """Two bot processes, one shard each (SHARD_COUNT=2, SHARD_IDS): each answers the
    servers of its shard; one registers the commands; after one reindex by a single
    writer, both answer from the new generation."""
    index = tmp_path / "shared-index"
    shutil.copytree(seed_index, index, ignore=shutil.ignore_patterns(".lock"))
    server = FakeDiscord(bot_permissions=invite_permissions(), shard_count=2)
    await server.start()
    env = {**os.environ, "ENV_FILE": str(tmp_path / "no.env"), "SEEDS_DIR": str(library),
           "INDEX_DIR": str(index), "DISCORD_TOKEN": "fake", "SHARD_COUNT": "2",
           "ASK_COOLDOWN_SECONDS": "0"}  # fmt: skip
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.run_bot",
            server.api,
            server.gateway_url,
            env={**env, "SHARD_IDS": str(shard)},
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        for shard in (0, 1)
    ]
    try:
        await asyncio.wait_for(server.ready.wait(), 120)
        assert sorted(server.identified) == [0, 1]
        assert [c.path for c in server.calls if c.method == "PUT"] == [
            f"/applications/{APP_ID}/commands"]  # fmt: skip

        async def answered(channel: int, question: str) -> list[dict[str, Any]]:
            msg = server.user_message(f"<@{BOT_USER['id']}> {question}", mentions=[BOT_USER],
                                      channel=channel)  # fmt: skip
            await server.dispatch("MESSAGE_CREATE", msg)
            reply = await server.wait_for(lambda c: _replies_to(c, msg), 60)
            return list(reply.json["embeds"])

        for channel in (CHANNEL_ID, OTHER_CHANNEL_ID):  # shard 1's server, shard 0's
            embeds = await answered(channel, "How did Lenin get back to Russia in 1917?")
            assert any("closed train" in q for q in _quotes(embeds))
        (library / "drones.md").write_text(ESSAY, encoding="utf-8")
        writer = Engine(Settings(seeds_dir=library, index_dir=index), embedder)
        await asyncio.to_thread(writer.index)  # one writer; the bots only read
        for channel in (CHANNEL_ID, OTHER_CHANNEL_ID):
            embeds = await answered(channel, "How have drones changed the front line?")
            assert "Drones over the Dnipro" in embeds[0]["title"]
        assert not server.spec_errors
    finally:
        for proc in procs:
            proc.terminate()
        await asyncio.gather(*(p.wait() for p in procs))
        await server.stop()


async def test_past_the_live_answers_bound_the_oldest_buttons_say_ask_again(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crowd cannot grow the bot without bound: past LIVE_VIEWS live answers, the
    oldest answer's buttons are let go, and a press on them is told to ask again."""
    monkeypatch.setattr(views, "LIVE_VIEWS", 2)
    sent = []
    for question in ("Can a ceasefire with Russia hold?", "Why can't Putin afford to end the war?",
                     "Does Russia honour the treaties it signs?"):  # fmt: skip
        q = harness.server.interaction("ask", [{"name": "question", "type": 3, "value": question}])
        await harness.command(q)
        await harness.followup(q)
        sent.append([m for m in harness.server.messages.values() if m.get("components")][-1])
    assert len(harness.bot.live_views) == 2
    for message, live in zip(sent, (False, True, True), strict=True):
        ids = {c["label"]: c["custom_id"] for r in message["components"] for c in r["components"]}
        press = harness.server.component(message, ids["More excerpts"])
        await harness.command(press)
        reply = harness.callback(press).json
        assert (reply["type"] == 7) is live  # the answer pages on, or:
        assert live or "expired" in reply["data"]["content"]
    assert not harness.errors
