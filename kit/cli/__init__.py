"""The `kit` command line: one verb per pipeline step (``kit --help``); also ``python -m kit``."""

from kit.cli.main import main

__all__ = ["main"]
