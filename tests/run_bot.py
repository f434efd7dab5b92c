"""The real bot process (``python bot.py run``) pointed at the local test server.

    python -m tests.run_bot API_URL GATEWAY_URL

Settings come from the environment, as for ``bot.py run``; only Discord's addresses are
replaced (discord.py itself is unmodified).
"""

from __future__ import annotations

import sys

import discord
import yarl
from discord.http import Route

from bot.frontends.discord.client import run
from bot.settings import Settings


def main() -> int:
    Route.BASE = sys.argv[1]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(sys.argv[2])
    return run(Settings.from_env())


if __name__ == "__main__":
    sys.exit(main())
