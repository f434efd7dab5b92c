"""What every command shares: one way to reply, the essay parameter, the admin check.

Typed against :class:`~bot.frontends.discord.client.ExplainerBot`, so a command reads
``interaction.client.engine`` with no casts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, TypeAlias

import discord
from discord import app_commands

from bot.answer.engine import EssayMeta
from bot.answer.feedback import Asker
from bot.frontends.discord.embeds import (
    AUTOCOMPLETE_CHOICES,
    CHOICE_NAME,
    NO_MENTIONS,
    plain,
    trim,
)
from bot.frontends.discord.errors import NotAdmin, log_unexpected

if TYPE_CHECKING:
    from bot.frontends.discord.client import ExplainerBot

    Interaction: TypeAlias = discord.Interaction[ExplainerBot]
else:
    Interaction: TypeAlias = discord.Interaction

log = logging.getLogger("bot.discord")


async def respond(interaction: Interaction, ephemeral: bool = True, **message: Any) -> None:
    """Reply to an interaction: the initial response if none was sent yet, else a
    follow-up (after a defer, Discord makes the first follow-up the original response).

    Args:
        interaction: The interaction.
        ephemeral: Only the user sees it (ignored by Discord after a public defer).
        **message: content, embed(s), view, ... as for ``send_message``.
    """
    message.setdefault("allowed_mentions", NO_MENTIONS)
    if interaction.response.is_done():
        await interaction.followup.send(ephemeral=ephemeral, **message)
    else:
        await interaction.response.send_message(ephemeral=ephemeral, **message)


async def report_error(interaction: Interaction, error: BaseException, what: str) -> None:
    """Tell the user what went wrong (an unexpected failure is logged, never shown), in
    the one reply the interaction still allows; a refused reply is logged."""
    message = log_unexpected(what, error)
    try:
        await respond(interaction, content=plain(message))
    except discord.HTTPException:
        log.exception("could not report an error to the user")


def user_label(interaction: Interaction) -> str:
    """Who acted, as the logs and the audit log name them: user, user id and server id."""
    user = interaction.user
    where = f"server {interaction.guild_id}" if interaction.guild_id else "a DM"
    return f"{user} ({user.id}) in {where}"


def asker_of(interaction: Interaction) -> Asker:
    """Who asked, for the feedback store (hashed there): user id and server id."""
    guild = interaction.guild_id
    return Asker(str(interaction.user.id), str(guild) if guild else None)


def is_admin(interaction: Interaction) -> bool:
    """In one of the library's home servers (ADMIN_GUILD_IDS): Manage Server there, or
    the ADMIN_ROLE_ID role. Discord's permissions and ids are trusted, never names.

    Raises:
        NotAdmin: Otherwise.
    """
    settings = interaction.client.settings
    if interaction.guild_id is None or interaction.guild_id not in settings.admin_guild_ids:
        raise NotAdmin("The library is administered from its home server, not from here.")
    perms = interaction.permissions
    if perms.manage_guild or perms.administrator:
        return True
    roles = getattr(interaction.user, "roles", [])
    if settings.admin_role_id is not None and any(r.id == settings.admin_role_id for r in roles):
        return True
    raise NotAdmin("Only the library's admins (Manage Server, or the admin role) can change it.")


class Cooldowns:
    """One question per user every ASK_COOLDOWN_SECONDS, however it is asked: `/ask`, a
    mention or a DM share the same clock."""

    def __init__(self) -> None:
        self._last: dict[int, float] = {}

    def retry_after(self, user_id: int, per: float) -> float:
        """Seconds the user must wait; 0 when the question may go ahead (it is counted)."""
        now = time.monotonic()
        last = self._last.get(user_id)
        if per > 0 and last is not None and now - last < per:
            return per - (now - last)
        if len(self._last) > 10_000:  # forget users whose cooldown is long over
            self._last = {u: t for u, t in self._last.items() if now - t < per}
        self._last[user_id] = now
        return 0.0


def ask_cooldown(interaction: Interaction) -> bool:
    """The shared per-user cooldown, as a check on `/ask`.

    Raises:
        app_commands.CommandOnCooldown: The user asked too recently.
    """
    per = interaction.client.settings.ask_cooldown_seconds
    retry = interaction.client.cooldowns.retry_after(interaction.user.id, per)
    if retry:
        raise app_commands.CommandOnCooldown(app_commands.Cooldown(1, per), retry)
    return True


class EssayTransformer(app_commands.Transformer):
    """An essay parameter: autocomplete offers the essays a typed name can mean, and the
    value is resolved by the engine's own resolver (an id, a title, or part of one)."""

    async def autocomplete(  # type: ignore[override]
        self, interaction: Interaction, value: str
    ) -> list[app_commands.Choice[str]]:
        docs = await asyncio.to_thread(interaction.client.engine.find_essays, value)
        return [
            app_commands.Choice(
                name=trim(f"{d.title} — {d.author or 'unknown'}", CHOICE_NAME),
                value=d.doc_id[:CHOICE_NAME],
            )
            for d in docs[:AUTOCOMPLETE_CHOICES]
        ]

    async def transform(self, interaction: Interaction, value: str) -> EssayMeta:  # type: ignore[override]
        return await asyncio.to_thread(interaction.client.engine.resolve_essay, value)


Essay: TypeAlias = app_commands.Transform[EssayMeta, EssayTransformer]
