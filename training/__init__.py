"""The learning loop's domain code: feedback -> examples -> datasets -> training -> export.

Nothing here imports ``assistant`` or ``web``: callers pass plain records and callables in.
"""
