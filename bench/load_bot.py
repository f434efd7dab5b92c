"""The real bot process (``python bot.py run``, discord.py unmodified) pointed at the local
Discord-compatible server, with a watch on its event loop: what `bench_load` drives.

    python -m bench.load_bot API_URL GATEWAY_URL LAG_FILE

Every 50 ms a task on the bot's event loop notes how late it woke; each wake-up later than
:data:`REPORTED_LAG` is appended to LAG_FILE as a JSON line (wall-clock time, seconds
late), so the bench can take the largest lag of each of its runs. A lag of seconds is a
heartbeat Discord would miss, an interaction acknowledged late, every user waiting.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import discord
import yarl
from discord.http import Route

from bot.frontends.discord.client import ExplainerBot, run
from bot.settings import Settings

#: The watch's period (seconds): how often it asks the loop to wake it.
TICK = 0.05
#: Wake-ups later than this (seconds) are written down; earlier ones are scheduling noise.
REPORTED_LAG = 0.01


async def watch_loop(lag_file: Path) -> None:
    """Note every late wake-up of the running event loop in `lag_file`, for ever."""
    loop = asyncio.get_running_loop()
    with lag_file.open("a", encoding="utf-8") as out:
        while True:
            asked = loop.time()
            await asyncio.sleep(TICK)
            late = loop.time() - asked - TICK
            if late > REPORTED_LAG:
                out.write(json.dumps({"at": time.time(), "lag": late}) + "\n")
                out.flush()


def main() -> int:
    Route.BASE = sys.argv[1]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(sys.argv[2])
    lag_file = Path(sys.argv[3])
    setup = ExplainerBot.setup_hook
    watchers: list[asyncio.Task[None]] = []

    async def watched_setup(self: ExplainerBot) -> None:
        watchers.append(asyncio.create_task(watch_loop(lag_file)))
        await setup(self)

    ExplainerBot.setup_hook = watched_setup  # type: ignore[method-assign]
    return run(Settings.from_env())


if __name__ == "__main__":
    sys.exit(main())
