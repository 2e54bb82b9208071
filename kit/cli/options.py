"""Command-line options several verbs share, declared once so they read the same everywhere.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_config_options(parser)
    >>> parser.parse_args(["--set", "train.lr=1e-3"]).set
    ['train.lr=1e-3']
"""

from __future__ import annotations

import argparse

__all__ = ["add_config_options"]


def add_config_options(parser: argparse.ArgumentParser, config_file: bool = True, note: str = "") -> None:
    """``--config TOML`` (unless ``config_file`` is False) and the repeatable ``--set KEY=VALUE``."""
    if config_file:
        parser.add_argument("--config", help="TOML file overriding the default recipe (see `kit config show`)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override one config key, e.g. --set train.lr=1e-3 (repeatable){note}",
    )
