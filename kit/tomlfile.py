"""TOML files: read with the standard library's ``tomllib``, write the small subset a configuration needs.

Python has a TOML reader but no writer, and a configuration is only scalars, lists of scalars or inline
tables, and one level of sections, so kit writes that subset itself rather than adding a dependency.

Example:
    >>> print(dump_toml({"seed": 0, "train": {"lr": 0.002}}), end="")
    seed = 0
    <BLANKLINE>
    [train]
    lr = 0.002
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from kit.errors import KitError

__all__ = ["load_toml", "dump_toml", "toml_value"]


def load_toml(path) -> dict:
    """The table in the TOML file ``path``; a missing or malformed file is a KitError naming it."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise KitError(f"expected a TOML file at {path}, found nothing. Fix: check the path.") from None
    except tomllib.TOMLDecodeError as e:
        raise KitError(f"{path} is not valid TOML ({e}). Fix: correct the file.") from None


def dump_toml(table: dict, comments: dict[str, str] | None = None) -> str:
    """TOML text for scalars, lists, inline tables and one level of sections.

    ``comments`` maps dotted keys (``train.lr``) to a one-line comment written after the value.
    """
    comments = comments or {}
    lines, sections = [], []
    for key, value in table.items():
        if isinstance(value, dict):
            sections.append((key, value))
        else:
            lines.append(_line(key, value, comments.get(key)))
    for name, section in sections:
        lines.append(f"\n[{name}]")
        lines.extend(_line(k, v, comments.get(f"{name}.{k}")) for k, v in section.items())
    return "\n".join(lines) + "\n"


def _line(key: str, value, comment: str | None) -> str:
    text = f"{key} = {toml_value(value)}"
    if not comment:
        return text
    return f"{text:<28} # {comment}" if len(text) <= 28 else f"# {comment}\n{text}"  # long values: comment above


def toml_value(value) -> str:
    """One value as TOML text (``True`` -> ``true``, tuples as arrays, dicts as inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, (list, tuple)):  # adapters declare ranges as tuples, e.g. scale=(0.9, 1.1)
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise KitError(
        f"expected a bool, number, string, list or table to write as TOML, got {value!r}. "
        "Fix: give the configuration key a plain value."
    )
