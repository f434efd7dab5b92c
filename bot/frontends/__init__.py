"""Layer 5, front ends: the command line, plain-text rendering, evaluation and Discord.

Only :mod:`bot.frontends.discord` imports discord.py (checked by import-linter).
"""
