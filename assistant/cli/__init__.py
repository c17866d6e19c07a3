"""The ``assistant`` command line: one module per feature, each adding its commands to ``main``."""

from assistant.cli import accounts, asking, corpus, evaluation, learning, processes  # noqa: F401
from assistant.cli.base import main

__all__ = ["main"]
