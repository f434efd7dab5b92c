"""Buttons that live on a deadline: what every view under an answer shares.

Buttons are edited through the interaction's token, which Discord honours for 15 minutes,
so a view works for a fixed lifetime from the answer (presses do not extend it), is
disabled while the token still works, and is forgotten after. A press on a button no live
view owns (expired, or from before a restart) is told to ask again
(:data:`BUTTON_PREFIX`, see ``AskCog.on_interaction``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.frontends.discord.interactions import Interaction, report_error, respond

log = logging.getLogger("bot.discord")

#: Answer buttons work this long after the answer, however often they are pressed.
BUTTON_LIFETIME = 600.0
#: Cost bound: answers whose buttons are live at once. Each holds its answer and its
#: message, parsed (about 18 kB): a crowd asking ten questions a second for ten minutes
#: would hold 6,000, so past this many the oldest answer's buttons are let go early (a
#: press on them is told to ask again); at a question every 1.2 s or slower they still
#: live their ten minutes. 5,000 questions in a row (bench_load --soak) grew the
#: bot by 25% with no bound, by 11% at 1,000.
LIVE_VIEWS = 500
#: Every answer button's custom_id starts so.
BUTTON_PREFIX = "answer:"
EXPIRED = "These buttons have expired; ask again."

#: Excerpts shown per message: a page of an answer, the excerpts found for a message.
PAGE = 3

#: The live views by the id of the message they are on.
LiveViews = dict[int, "ExpiringView"]
#: A message a view can be on.
Sent = discord.Message | discord.WebhookMessage


class ExpiringView(discord.ui.View):
    """A view only its owner may press, on a fixed deadline.

    Args:
        owner_id: The user who asked (the only one whose presses count).
        live: The registry it joins once :meth:`attach` names its message.
        lifetime: Seconds from now until the buttons are disabled.
    """

    def __init__(self, owner_id: int, live: LiveViews, lifetime: float = BUTTON_LIFETIME):
        super().__init__(timeout=None)  # a press would extend a timeout; a deadline holds
        self.owner_id = owner_id
        self.live = live
        self.message: Sent | None = None
        nonce = uuid.uuid4().hex
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                name = (item.label or "button").lower().replace(" ", "-")[:20]
                item.custom_id = f"{BUTTON_PREFIX}{name}:{nonce}"
        self._deadline = asyncio.get_running_loop().call_later(
            lifetime, lambda: asyncio.ensure_future(self.expire())
        )

    def attach(self, message: Sent) -> None:
        """The message the view is on: from now on a press on it reaches the view. The
        oldest live views past :data:`LIVE_VIEWS` are let go (:meth:`forget`)."""
        self.message = message
        self.live[message.id] = self
        while len(self.live) > LIVE_VIEWS:
            self.live.pop(next(iter(self.live))).forget()

    def forget(self) -> None:
        """Stop listening now, leaving the message as it is: a press on it is answered as
        expired (``AskCog.on_interaction``). What a crowd costs is bounded this way,
        without an edit for each answer let go."""
        self._deadline.cancel()
        self.stop()
        self.message = None

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        if interaction.user.id != self.owner_id:
            await respond(
                interaction,
                content="These buttons belong to the person who asked; ask yourself.",
            )
            return False
        return True

    async def on_error(  # type: ignore[override]
        self, interaction: Interaction, error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        await report_error(interaction, error, f"button {getattr(item, 'label', item)!r}")

    async def expire(self) -> None:
        """Disable the buttons (while the token still works) and stop listening."""
        self._deadline.cancel()
        self.stop()
        for item in self.children:
            if isinstance(item, discord.ui.Button | discord.ui.Select):
                item.disabled = True
        if self.message is not None:
            self.live.pop(self.message.id, None)
            try:
                await self.message.edit(view=self)
            except discord.HTTPException as exc:
                log.warning("could not disable expired buttons: %s %s", exc.status, exc.text)


async def send_with_view(
    send: Callable[..., Awaitable[Sent | None]], view: ExpiringView, **message: Any
) -> Sent | None:
    """Send a message carrying `view`, then attach the view to it, so that presses reach
    the view (a press on a view never attached is answered as expired).

    Args:
        send: What sends it (``followup.send`` with ``wait=True``, a reply); returns the
            message, or None when it was refused (then nothing is attached).
        view: The view.
        **message: content, embeds, ... as `send` takes them.
    """
    sent = await send(view=view, **message)
    if sent is not None:
        view.attach(sent)
    return sent
