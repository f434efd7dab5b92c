"""The Discord front end: a thin layer of cogs over the engine, and the embeds it sends."""
