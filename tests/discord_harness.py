"""The end-to-end harness: the unmodified bot connected to the local Discord-compatible
server (:mod:`tests.fakediscord`), and what a test needs to drive and check it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import discord
import yarl
from discord.http import Route

from bot.answer.engine import Engine
from bot.frontends.discord.client import ExplainerBot
from bot.index.embed import Embedder
from bot.settings import Settings
from tests.fakediscord import ADMIN_ROLE_ID, APP_ID, GUILD_ID, FakeDiscord

#: The Discord setup a server admin follows (its invite link is what the bot is tested as).
SETUP = Path(__file__).resolve().parents[1] / "docs" / "discord.md"


def invite_permissions() -> int:
    """The permissions the setup's invite link asks for: the bot is tested as invited."""
    found = re.search(r"oauth2/authorize\?[^`\s]*permissions=(\d+)", SETUP.read_text())
    assert found, "docs/discord.md's setup has an invite link with permissions"
    return int(found.group(1))


class Harness:
    """The server, the bot, and what went wrong inside the bot."""

    def __init__(self, server: FakeDiscord, bot: ExplainerBot, errors: list[Any]) -> None:
        self.server = server
        self.bot = bot
        self.errors = errors
        #: (status, Discord code) of refusals a test provokes on purpose.
        self.expected_refusals: set[tuple[int, int | None]] = set()

    async def command(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Send an interaction as Discord would; return it once the bot has answered its
        callback."""
        refusal = await self.server.interact(payload)
        assert refusal is None, f"Discord would not deliver it: {refusal}"
        await self.server.wait_for(lambda c: c.path.startswith(f"/interactions/{payload['id']}/"))
        return payload

    async def handled(self, message: dict[str, Any], timeout: float = 30) -> bool:
        """Dispatch a message and wait until the bot's handler for it has finished;
        returns whether the handler answered it (a signal, not a sleep)."""
        cog = self.bot.get_cog("AskCog")
        assert cog is not None
        original = cog.handle_message  # type: ignore[attr-defined]
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        async def spy(msg: discord.Message) -> bool:
            result = await original(msg)
            if str(msg.id) == message["id"] and not done.done():
                done.set_result(result)
            return bool(result)

        cog.handle_message = spy  # type: ignore[attr-defined]
        try:
            await self.server.dispatch("MESSAGE_CREATE", message)
            return await asyncio.wait_for(done, timeout)
        finally:
            cog.handle_message = original  # type: ignore[attr-defined]

    def callback(self, payload: dict[str, Any]) -> Any:
        path = f"/interactions/{payload['id']}/{payload['token']}/callback"
        return next(c for c in self.server.calls if c.path == path)

    async def followup(self, payload: dict[str, Any], timeout: float = 60) -> Any:
        path = f"/webhooks/{APP_ID}/{payload['token']}"
        return await self.server.wait_for(lambda c: c.method == "POST" and c.path == path, timeout)

    async def said(self, payload: dict[str, Any], text: str, timeout: float = 60) -> Any:
        """The first message sent or edited through the interaction's token that says
        `text`."""
        prefix = f"/webhooks/{APP_ID}/{payload['token']}"
        return await self.server.wait_for(
            lambda c: c.path.startswith(prefix) and c.status < 400 and isinstance(c.json, dict)
            and text in (c.json.get("content") or ""), timeout,
        )  # fmt: skip

    def original(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The interaction's original response as the server holds it now."""
        pending = self.server.pending[payload["token"]]
        assert pending.original is not None
        return pending.original

    def check_discord_rules(self) -> None:
        """Nothing the bot sent broke Discord's rules or its OpenAPI description."""
        assert not self.server.spec_errors, self.server.spec_errors
        refused = [(c.method, c.path, c.status, c.code) for c in self.server.refused()
                   if (c.status, c.code) not in self.expected_refusals]  # fmt: skip
        assert not refused, refused


@asynccontextmanager
async def running_bot(
    settings: Settings, embedder: Embedder, server: FakeDiscord | None = None
) -> AsyncIterator[Harness]:
    """The bot, connected to a local server (one is started unless given)."""
    server = server or FakeDiscord(bot_permissions=invite_permissions())
    await server.start()
    old_base, old_gateway = Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = server.api
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(server.gateway_url)
    bot = ExplainerBot(Engine(settings, embedder), settings, guild_ready_timeout=0.1)
    errors: list[Any] = []

    async def on_error(event: str, *args: Any, **kwargs: Any) -> None:
        errors.append(("event", event))

    bot.on_error = on_error  # type: ignore[method-assign]
    original = bot.tree.on_error

    async def tree_error(interaction: discord.Interaction, error: Exception) -> None:
        errors.append(("command", error))
        await original(interaction, error)  # type: ignore[arg-type]

    bot.tree.on_error = tree_error  # type: ignore[method-assign]
    task = asyncio.create_task(bot.start("fake-token"))
    try:
        await asyncio.wait_for(bot.wait_until_ready(), 60)
        harness = Harness(server, bot, errors)
        yield harness
        harness.check_discord_rules()
    finally:
        await bot.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop()
        Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


def bot_settings(library: Path, index: Path, **changes: Any) -> Settings:
    """The bot's settings in the e2e tests: no cooldown, the test server as home."""
    base = Settings(
        seeds_dir=library, index_dir=index, ask_cooldown_seconds=0,
        discord_token="fake", discord_guild_id=GUILD_ID, max_upload_bytes=5 * 1024 * 1024,
        admin_guild_ids=(GUILD_ID,), admin_role_id=ADMIN_ROLE_ID,
    )  # fmt: skip
    return base.with_(**changes)
