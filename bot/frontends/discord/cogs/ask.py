"""Questions: /ask (with paging and context buttons), a mention in a channel, or a DM."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.answer.engine import Engine
from bot.answer.feedback import Asker
from bot.answer.results import Answer, Excerpt
from bot.frontends.discord.embeds import (
    MAX_QUESTION,
    NO_MENTIONS,
    decline_embed,
    excerpt_embeds,
    plain,
    trim,
)
from bot.frontends.discord.errors import log_unexpected
from bot.frontends.discord.interactions import (
    Essay,
    Interaction,
    ask_cooldown,
    asker_of,
    respond,
)
from bot.frontends.discord.views import (
    BUTTON_LIFETIME,
    BUTTON_PREFIX,
    EXPIRED,
    PAGE,
    ExpiringView,
    LiveViews,
    send_with_view,
)
from bot.frontends.text import one_line

if TYPE_CHECKING:
    from bot.frontends.discord.client import ExplainerBot

log = logging.getLogger("bot.discord")

MAX_EXCERPTS = 12
#: Sentences either side of an excerpt that **Show context** adds (one button press away,
#: it can afford more than an answer's own).
CONTEXT_SENTENCES = 3
THANKS = "Thanks, noted."
WHICH = "Which excerpt missed? It will rank lower for questions like yours."
NOTED = "Thanks: that will rank lower for similar questions."
SELECT_LABEL = 100
HELLO = "Ask me a question about the essays, e.g. “Why can't Putin afford a peace deal?”"


class AnswerView(ExpiringView):
    """Buttons under an answer: the next page of excerpts, and each excerpt's context."""

    def __init__(
        self, engine: Engine, answer: Answer, owner_id: int, live: LiveViews,
        lifetime: float = BUTTON_LIFETIME,
    ) -> None:  # fmt: skip
        super().__init__(owner_id, live, lifetime)
        self.engine = engine
        self.answer = answer
        self.page = 0
        self.more.disabled = PAGE >= len(answer.excerpts)

    def shown(self) -> list[Excerpt]:
        """The excerpts on the current page."""
        return list(self.answer.excerpts[self.page * PAGE : (self.page + 1) * PAGE])

    @discord.ui.button(label="More excerpts", style=discord.ButtonStyle.primary)
    async def more(self, interaction: Interaction, button: discord.ui.Button[Any]) -> None:
        self.page += 1
        button.disabled = (self.page + 1) * PAGE >= len(self.answer.excerpts)
        embeds = excerpt_embeds(self.shown(), start=self.page * PAGE + 1)
        await interaction.response.edit_message(
            embeds=embeds, view=self, allowed_mentions=NO_MENTIONS
        )

    @discord.ui.button(label="Show context", style=discord.ButtonStyle.secondary)
    async def context(self, interaction: Interaction, button: discord.ui.Button[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        wider = [
            await asyncio.to_thread(self.engine.context, ex, CONTEXT_SENTENCES, CONTEXT_SENTENCES)
            for ex in self.shown()
        ]
        embeds = excerpt_embeds(wider, start=self.page * PAGE + 1, heading="Context · ")
        await respond(interaction, embeds=embeds)

    @discord.ui.button(label="Helpful", emoji="👍", style=discord.ButtonStyle.secondary)
    async def helpful(self, interaction: Interaction, button: discord.ui.Button[Any]) -> None:
        await asyncio.to_thread(self.engine.rate, self.answer, self.shown(), +1,
                                asker_of(interaction))  # fmt: skip
        await respond(interaction, content=THANKS)

    @discord.ui.button(label="Not helpful", emoji="👎", style=discord.ButtonStyle.secondary)
    async def unhelpful(self, interaction: Interaction, button: discord.ui.Button[Any]) -> None:
        view = MissedView(self.engine, self.answer, self.shown(), self.owner_id, self.live)
        await respond(interaction, content=WHICH, view=view)


class MissedView(ExpiringView):
    """After a 👎: which excerpt missed (or none answered)? Those rank lower for similar
    questions (bounded; see :mod:`bot.answer.feedback`)."""

    def __init__(
        self, engine: Engine, answer: Answer, shown: list[Excerpt], owner_id: int,
        live: LiveViews,
    ) -> None:  # fmt: skip
        super().__init__(owner_id, live)
        self.engine, self.answer, self.shown = engine, answer, shown
        options = [
            discord.SelectOption(label=trim(f"{i}. {one_line(e.quote)}", SELECT_LABEL),
                                 description=trim(e.essay.title, SELECT_LABEL), value=str(i - 1))
            for i, e in enumerate(shown, 1)
        ]  # fmt: skip
        options.append(discord.SelectOption(label="None of them answered it", value="all"))
        picker: discord.ui.Select[Any] = self.pick  # type: ignore[assignment]
        picker.options = options

    @discord.ui.select(placeholder="Which excerpt missed?")
    async def pick(self, interaction: Interaction, select: discord.ui.Select[Any]) -> None:
        value = select.values[0]
        missed = self.shown if value == "all" else [self.shown[int(value)]]
        await asyncio.to_thread(self.engine.rate, self.answer, missed, -1, asker_of(interaction))
        select.disabled = True
        await interaction.response.edit_message(content=NOTED, view=self)


class AskCog(commands.Cog):
    """Questions: /ask, a mention in a channel, or a DM."""

    def __init__(self, bot: ExplainerBot) -> None:
        self.bot = bot
        self.button_lifetime = BUTTON_LIFETIME

    @commands.Cog.listener()
    async def on_interaction(self, interaction: Interaction) -> None:
        """A press on an answer button no live answer owns: expired, or from before a
        restart. Discord would say "This interaction failed"; say what to do instead."""
        if interaction.type is not discord.InteractionType.component:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        message = interaction.message
        live = self.bot.live_views
        if custom_id.startswith(BUTTON_PREFIX) and (message is None or message.id not in live):
            await respond(interaction, content=EXPIRED)

    async def _answer(self, question: str, asker: Asker, essay: str | None = None) -> Answer:
        return await asyncio.to_thread(self.bot.engine.ask, question, MAX_EXCERPTS, essay, asker)

    @app_commands.command(name="ask", description="Answer a question with quotes from the essays")
    @app_commands.describe(
        question="What you want to know",
        essay="Only search this essay",
        public="Show the answer to the channel (default: only you)",
    )
    @app_commands.check(ask_cooldown)
    async def ask(
        self,
        interaction: Interaction,
        question: app_commands.Range[str, 1, MAX_QUESTION],
        essay: Essay | None = None,
        public: bool = False,
    ) -> None:
        await interaction.response.defer(ephemeral=not public, thinking=True)
        answer = await self._answer(
            question, asker_of(interaction), essay.doc_id if essay else None
        )
        if answer.abstained:
            await respond(interaction, ephemeral=not public, embed=decline_embed(question, answer))
            return
        view = AnswerView(self.bot.engine, answer, interaction.user.id, self.bot.live_views,
                          self.button_lifetime)  # fmt: skip
        await send_with_view(
            interaction.followup.send, view, embeds=excerpt_embeds(view.shown()),
            ephemeral=not public, allowed_mentions=NO_MENTIONS, wait=True,
        )  # fmt: skip

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        await self.handle_message(message)

    async def handle_message(self, message: discord.Message) -> bool:
        """Answer a message that mentions the bot, or a DM, with a reply.

        Returns:
            Whether the message was addressed to the bot (and so answered).
        """
        me = self.bot.user
        if message.author.bot or me is None:
            return False
        if message.guild is not None and me not in message.mentions:
            return False
        if message.guild is not None and not self._allowed(message.channel):
            return False  # ALLOWED_CHANNEL_IDS: silent elsewhere
        question = re.sub(rf"<@!?{me.id}>", " ", message.content).strip()
        if not question:
            await self._reply(message, content=HELLO)
            return True
        per = self.bot.settings.ask_cooldown_seconds
        retry = self.bot.cooldowns.retry_after(message.author.id, per)
        if retry:
            await self._reply(message, content=f"Slow down a little: try again in {retry:.0f} s.")
            return True
        try:
            async with message.channel.typing():
                asker = Asker(
                    str(message.author.id), str(message.guild.id) if message.guild else None
                )
                answer = await self._answer(question, asker)
        except Exception as exc:  # noqa: BLE001 - the one error path says what to show
            await self._reply(message, content=plain(log_unexpected("answering a message", exc)))
            return True
        if answer.abstained:
            await self._reply(message, embed=decline_embed(question, answer))
        else:
            view = AnswerView(self.bot.engine, answer, message.author.id, self.bot.live_views,
                              self.button_lifetime)  # fmt: skip
            reply = functools.partial(self._reply, message)
            await send_with_view(reply, view, embeds=excerpt_embeds(view.shown()))
        return True

    def _allowed(self, channel: Any) -> bool:
        """Whether mentions are answered in this channel (or in a thread of one)."""
        allowed = self.bot.settings.allowed_channel_ids
        return not allowed or bool({channel.id, getattr(channel, "parent_id", None)} & set(allowed))

    async def _reply(self, message: discord.Message, **content: Any) -> discord.Message | None:
        """Reply in the message's channel or thread; a refusal (no permission to send in
        threads, say) is logged with the channel and the reason, never lost.

        Returns:
            The reply, or None when Discord refused it.
        """
        try:
            return await message.reply(allowed_mentions=NO_MENTIONS, **content)
        except discord.HTTPException as exc:
            log.warning("could not reply in channel %s (%s): %s %s", message.channel.id,
                        getattr(message.channel, "type", "?"), exc.status, exc.text)  # fmt: skip
            return None


async def setup(bot: ExplainerBot) -> None:
    """Extension entry point."""
    await bot.add_cog(AskCog(bot))
