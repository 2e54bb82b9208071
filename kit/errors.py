"""The one exception type the CLI turns into a short message and a non-zero exit.

Example:
    >>> raise KitError("expected a CSV with columns id,label; got id,target. Fix: rename the column.")
    Traceback (most recent call last):
    kit.errors.KitError: expected a CSV with columns id,label; got id,target. Fix: rename the column.
"""

__all__ = ["KitError"]


class KitError(Exception):
    """A user-facing error: says what was expected, what was received, and the fix."""
