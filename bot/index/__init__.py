"""Layer 2, the index: embeddings, BM25, stored key points, and generations on disk.

Builds on :mod:`bot.ingest`; knows nothing of questions or front ends.
"""
