"""Layer 1, essays in: read library files, keep the prose verbatim, split whole sentences.

Nothing here knows about vectors, indexes or front ends.
"""
