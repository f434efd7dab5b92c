"""Layer 3, answers: retrieval, verbatim quote selection, summaries, and the engine.

Reads what :mod:`bot.index` wrote; returns small frozen dataclasses for front ends to render.
"""
