"""The bot's cogs, one extension each, loaded by ``ExplainerBot.setup_hook``."""

EXTENSIONS = (
    "bot.frontends.discord.cogs.ask",
    "bot.frontends.discord.cogs.reading",
    "bot.frontends.discord.cogs.checking",
    "bot.frontends.discord.cogs.admin",
    "bot.frontends.discord.cogs.announce",
)
