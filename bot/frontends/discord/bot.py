"""The Discord layer: turns interactions into engine calls and results into embeds.

Nothing here decides what to answer; :mod:`bot.answer.engine` and :mod:`bot.admin.library` do. CPU work
runs in threads (`asyncio.to_thread`) so the gateway heartbeat never stalls, and every
reply is sent with no mentions allowed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.admin.library import LibraryAdmin, RejectedError
from bot.answer.engine import Engine, InputError
from bot.answer.search import Answer
from bot.frontends.discord.embeds import (
    AUTOCOMPLETE_CHOICES,
    CHOICE_NAME,
    NO_MENTIONS,
    decline_embed,
    essays_embed,
    excerpt_embeds,
    plain,
    summary_embeds,
    trim,
)
from bot.ingest.documents import DocumentError
from bot.settings import Settings

log = logging.getLogger("bot.discord")
admin_log = logging.getLogger("bot.admin")

PAGE = 3
MAX_EXCERPTS = 12
VIEW_TIMEOUT = 600.0


class NotAdmin(app_commands.CheckFailure):
    """The user may not administer the library."""


def _user_label(user: discord.abc.User) -> str:
    return f"{user} ({user.id})"


def is_admin(interaction: discord.Interaction) -> bool:
    """Manage Server in this guild, or the role named by ADMIN_ROLE.

    Raises:
        NotAdmin: Otherwise.
    """
    settings: Settings = interaction.client.settings  # type: ignore[attr-defined]
    perms = interaction.permissions
    if perms.manage_guild or perms.administrator:
        return True
    roles = getattr(interaction.user, "roles", [])
    if settings.admin_role and any(r.name == settings.admin_role for r in roles):
        return True
    raise NotAdmin("Only server admins (Manage Server) can change the library.")


def ask_cooldown(interaction: discord.Interaction) -> app_commands.Cooldown | None:
    """One `/ask` per user every ASK_COOLDOWN_SECONDS."""
    per = interaction.client.settings.ask_cooldown_seconds  # type: ignore[attr-defined]
    return app_commands.Cooldown(1, per) if per > 0 else None


class AnswerView(discord.ui.View):
    """Buttons under an answer: the next page of excerpts, and each excerpt's context.

    Only the person who asked can press them; they are disabled when the view expires.
    """

    def __init__(self, engine: Engine, answer: Answer, owner_id: int, page: int = 0) -> None:
        super().__init__(timeout=VIEW_TIMEOUT)
        self.engine = engine
        self.answer = answer
        self.owner_id = owner_id
        self.page = page
        self.message: discord.Message | discord.WebhookMessage | None = None
        self.more.disabled = (page + 1) * PAGE >= len(answer.excerpts)

    def shown(self) -> list[Any]:
        return list(self.answer.excerpts[self.page * PAGE : (self.page + 1) * PAGE])

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                "These buttons belong to the person who asked; use /ask yourself.",
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            return False
        return True

    @discord.ui.button(label="More excerpts", style=discord.ButtonStyle.primary)
    async def more(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.page += 1
        button.disabled = (self.page + 1) * PAGE >= len(self.answer.excerpts)
        embeds = excerpt_embeds(self.shown(), start=self.page * PAGE + 1)
        await interaction.response.edit_message(
            embeds=embeds, view=self, allowed_mentions=NO_MENTIONS
        )

    @discord.ui.button(label="Show context", style=discord.ButtonStyle.secondary)
    async def context(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        wider = [await asyncio.to_thread(self.engine.context, ex, 3, 3) for ex in self.shown()]
        embeds = excerpt_embeds(wider, start=self.page * PAGE + 1)
        for e in embeds:
            e.title = f"Context · {e.title}"[:256]
        await interaction.followup.send(embeds=embeds, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        log.error("button %r failed", getattr(item, "label", item), exc_info=error)
        message = "Something went wrong; it has been logged. Please try again later."
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.response.send_message(
                message, ephemeral=True, allowed_mentions=NO_MENTIONS
            )

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        if self.message is not None:
            try:
                await self.message.edit(view=self)
            except discord.HTTPException:
                log.debug("could not disable expired buttons", exc_info=True)


async def essay_autocomplete(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    """Essays whose id, title or author contains what was typed (at most 25)."""
    engine: Engine = interaction.client.engine  # type: ignore[attr-defined]
    snap = await asyncio.to_thread(engine.snapshot)
    needle = current.casefold().strip()
    choices = []
    for doc in snap.docs.values():
        hay = f"{doc.doc_id} {doc.title} {doc.author or ''}".casefold()
        if needle in hay:
            label = trim(f"{doc.title} — {doc.author or 'unknown'}", CHOICE_NAME)
            choices.append(app_commands.Choice(name=label, value=doc.doc_id[:100]))
    return choices[:AUTOCOMPLETE_CHOICES]


class AskCog(commands.Cog):
    """Questions: /ask, a mention in a channel, or a DM."""

    def __init__(self, bot: ExplainerBot) -> None:
        self.bot = bot

    async def _answer(self, question: str, essay: str | None = None) -> Answer:
        return await asyncio.to_thread(
            self.bot.engine.ask, question, MAX_EXCERPTS, essay or None
        )

    @app_commands.command(name="ask", description="Answer a question with quotes from the essays")
    @app_commands.describe(
        question="What you want to know",
        essay="Only search this essay",
        public="Show the answer to the channel (default: only you)",
    )
    @app_commands.autocomplete(essay=essay_autocomplete)
    @app_commands.checks.dynamic_cooldown(ask_cooldown, key=lambda i: i.user.id)
    async def ask(
        self,
        interaction: discord.Interaction,
        question: app_commands.Range[str, 1, 1000],
        essay: str | None = None,
        public: bool = False,
    ) -> None:
        await interaction.response.defer(ephemeral=not public, thinking=True)
        answer = await self._answer(question, essay)
        if answer.abstained:
            await interaction.followup.send(
                embed=decline_embed(question), ephemeral=not public, allowed_mentions=NO_MENTIONS
            )
            return
        view = AnswerView(self.bot.engine, answer, interaction.user.id)
        view.message = await interaction.followup.send(
            embeds=excerpt_embeds(view.shown()),
            view=view,
            ephemeral=not public,
            allowed_mentions=NO_MENTIONS,
            wait=True,
        )

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if message.author.bot or me is None:
            return
        direct = message.guild is None
        if not direct and me not in message.mentions:
            return
        question = re.sub(rf"<@!?{me.id}>", " ", message.content).strip()
        if not question:
            await message.reply(
                "Ask me a question about the essays, e.g. “Why can't Putin afford a peace deal?”",
                allowed_mentions=NO_MENTIONS,
            )
            return
        try:
            async with message.channel.typing():
                answer = await self._answer(question)
        except InputError as exc:
            await message.reply(plain(str(exc)), allowed_mentions=NO_MENTIONS)
            return
        except Exception:
            log.exception("answering a message failed")
            await message.reply(
                "Something went wrong while answering; it has been logged.",
                allowed_mentions=NO_MENTIONS,
            )
            return
        if answer.abstained:
            await message.reply(embed=decline_embed(question), allowed_mentions=NO_MENTIONS)
        else:
            await message.reply(
                embeds=excerpt_embeds(answer.excerpts[:PAGE]), allowed_mentions=NO_MENTIONS
            )


class LibraryCog(commands.Cog):
    """Reading the library: /essays, /summary essay|topic, /perspectives."""

    summary = app_commands.Group(
        name="summary", description="Summaries made of the essays' own sentences"
    )

    def __init__(self, bot: ExplainerBot) -> None:
        self.bot = bot

    @app_commands.command(name="essays", description="List the essays in the library")
    async def essays(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        listing = await asyncio.to_thread(self.bot.engine.indexed_essays)
        await interaction.followup.send(
            embed=essays_embed(listing), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @summary.command(name="essay", description="The key sentences of one essay, in its order")
    @app_commands.describe(essay="The essay")
    @app_commands.autocomplete(essay=essay_autocomplete)
    async def summary_essay(self, interaction: discord.Interaction, essay: str) -> None:
        await self._deferred_summary(interaction, self.bot.engine.summary, essay)

    @summary.command(name="topic", description="What the essays say about a topic")
    @app_commands.describe(topic="A topic, e.g. NATO or sanctions")
    async def summary_topic(
        self, interaction: discord.Interaction, topic: app_commands.Range[str, 1, 200]
    ) -> None:
        await self._deferred_summary(interaction, self.bot.engine.topic, topic)

    @app_commands.command(name="perspectives", description="Each author's position on a question")
    @app_commands.describe(question="A question the authors may disagree on")
    async def perspectives(
        self, interaction: discord.Interaction, question: app_commands.Range[str, 1, 1000]
    ) -> None:
        await self._deferred_summary(interaction, self.bot.engine.perspectives, question)

    async def _deferred_summary(
        self, interaction: discord.Interaction, compute: Any, text: str
    ) -> None:
        """Defer (embedding may take a moment), compute off the loop, follow up."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        summary = await asyncio.to_thread(compute, text)
        await interaction.followup.send(
            embeds=summary_embeds(summary), ephemeral=True, allowed_mentions=NO_MENTIONS
        )


class AdminCog(commands.Cog):
    """Administering the library (Manage Server, or the ADMIN_ROLE role)."""

    def __init__(self, bot: ExplainerBot) -> None:
        self.bot = bot

    @app_commands.command(name="reindex", description="Rebuild the index from the library folder")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.check(is_admin)
    async def reindex(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = _user_label(interaction.user)
        admin_log.info("reindex requested by %s", who)
        report = await asyncio.to_thread(self.bot.admin.reindex, who)
        admin_log.info("reindex by %s done: %s", who, report.summary().splitlines()[0])
        await interaction.followup.send(
            plain(report.summary()), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(name="add-essay", description="Add an essay file to the library")
    @app_commands.describe(
        file="A .md, .txt, .html or .pdf file",
        title="The essay's title",
        author="Who wrote it",
        date="When it was published",
        source="Where it was published",
    )
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.check(is_admin)
    async def add_essay(
        self,
        interaction: discord.Interaction,
        file: discord.Attachment,
        title: str | None = None,
        author: str | None = None,
        date: str | None = None,
        source: str | None = None,
    ) -> None:
        limit = self.bot.settings.max_upload_bytes
        if file.size > limit:  # refuse before downloading anything
            raise RejectedError(
                f"{file.filename} is {file.size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB"
            )
        await interaction.response.defer(ephemeral=True, thinking=True)
        data = await file.read()
        who = _user_label(interaction.user)
        admin_log.info("add-essay %s (%d bytes) by %s", file.filename, len(data), who)
        meta = {"title": title, "author": author, "date": date, "source": source}
        change = await asyncio.to_thread(self.bot.admin.add, file.filename, data, who, **meta)
        admin_log.info("add-essay by %s: added %s", who, change.doc_id)
        await interaction.followup.send(
            plain(change.summary()), ephemeral=True, allowed_mentions=NO_MENTIONS
        )


def _error_message(error: app_commands.AppCommandError) -> tuple[str, bool]:
    """A user-facing message for an error, and whether it is unexpected (to log)."""
    original = getattr(error, "original", error)
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down a little: try again in {error.retry_after:.0f} s.", False
    if isinstance(error, NotAdmin):
        return str(error), False
    if isinstance(error, app_commands.NoPrivateMessage):
        return "That command works in a server, not in DMs.", False
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use that command here.", False
    if isinstance(original, InputError | RejectedError | DocumentError):
        return str(original), False
    if isinstance(original, discord.HTTPException) and original.status == 413:
        return "That file is too large.", False
    return "Something went wrong; it has been logged. Please try again later.", True


class ExplainerTree(app_commands.CommandTree):
    """One error handler for every command: an ephemeral reply, never a silent failure."""

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        message, unexpected = _error_message(error)
        if unexpected:
            log.error("command %r failed", getattr(interaction.command, "name", None),
                      exc_info=error)  # fmt: skip
        try:
            if interaction.response.is_done():
                await interaction.followup.send(
                    plain(message), ephemeral=True, allowed_mentions=NO_MENTIONS
                )
            else:
                await interaction.response.send_message(
                    plain(message), ephemeral=True, allowed_mentions=NO_MENTIONS
                )
        except discord.HTTPException:
            log.exception("could not report an error to the user")


class ExplainerBot(commands.Bot):
    """The bot: holds the engine and settings; loads cogs and warms the model at start."""

    def __init__(self, engine: Engine, settings: Settings, **options: Any) -> None:
        intents = discord.Intents.default()  # mentions and DMs carry their text
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=ExplainerTree,
            allowed_mentions=NO_MENTIONS,
            help_command=None,
            **options,
        )
        self.engine = engine
        self.settings = settings
        self.admin = LibraryAdmin(engine)

    async def setup_hook(self) -> None:
        started = time.perf_counter()
        await asyncio.to_thread(self.engine.warm_up)
        log.info("model and index loaded in %.1f s", time.perf_counter() - started)
        await self.add_cog(AskCog(self))
        await self.add_cog(LibraryCog(self))
        await self.add_cog(AdminCog(self))
        if self.settings.discord_guild_id:
            guild = discord.Object(id=self.settings.discord_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to guild %s", len(synced), guild.id)
        else:
            synced = await self.tree.sync()
            log.info("synced %d global commands", len(synced))

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: questions in messages are handled by :class:`AskCog`."""

    async def on_ready(self) -> None:
        log.info("ready as %s in %d guilds", self.user, len(self.guilds))


def run(settings: Settings) -> int:
    """Run the bot until interrupted; returns an exit code (2 for a token problem)."""
    token = settings.discord_token
    if not token:
        print(
            "error: DISCORD_TOKEN is not set (put it in .env; see README, Discord setup)",
            file=sys.stderr,
        )
        return 2
    discord.utils.setup_logging(level=logging.INFO)
    bot = ExplainerBot(Engine(settings), settings)

    async def main() -> None:
        async with bot:
            await bot.start(token)

    try:
        asyncio.run(main())
    except discord.LoginFailure:
        print(
            "error: Discord refused the token (DISCORD_TOKEN); reset it in the portal",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
