"""One error path for everything the bot does: commands, buttons, mentions and DMs, and
admin jobs all turn an exception into the user's message with :func:`error_message`."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.errors import UserError

log = logging.getLogger("bot.discord")

#: What a user is told of a failure that is not theirs (the details go to the log).
UNEXPECTED = "Something went wrong; it has been logged. Please try again later."


class NotAdmin(app_commands.CheckFailure):
    """The user may not administer the library; the message says why."""


def error_message(error: BaseException) -> tuple[str, bool]:
    """A user-facing message for an error, and whether it is unexpected (to log).

    A command's own error comes wrapped by discord.py (``CommandInvokeError.original``,
    or the ``__cause__`` of a transformer's error); any other exception is read as it is.
    """
    original: BaseException = error
    if isinstance(error, app_commands.AppCommandError):
        original = getattr(error, "original", None) or error.__cause__ or error
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down a little: try again in {error.retry_after:.0f} s.", False
    if isinstance(error, app_commands.CommandNotFound):  # a registration left over elsewhere
        return "That command is not available here.", False
    if isinstance(error, app_commands.NoPrivateMessage):
        return "That command works in a server, not in DMs.", False
    if isinstance(error, NotAdmin):
        return str(error), False
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use that command here.", False
    if isinstance(original, UserError):
        return str(original), False
    if isinstance(original, discord.HTTPException) and original.status == 413:
        return "That file is too large.", False
    return UNEXPECTED, True


def log_unexpected(what: str, error: BaseException, logger: logging.Logger = log) -> str:
    """The user's message for an error; an unexpected one is logged with its traceback."""
    message, unexpected = error_message(error)
    if unexpected:
        logger.error("%s failed", what, exc_info=error)
    return message
