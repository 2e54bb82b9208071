"""The sidecar of a submission CSV: the JSON file next to it saying what made it (runs, weights, CV score and
metric, method, TTA, partial or not) and what it is (sha256, rows, columns, created).

Example:
    >>> Sidecar(runs=["runs/pcam/20260101-000000_cnn"], cv_score=0.97).run_names
    ('20260101-000000_cnn',)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from kit.errors import KitError
from kit.files import write_json

__all__ = ["Sidecar"]


@dataclasses.dataclass(frozen=True)
class Sidecar:
    """What a submission CSV was made from: the JSON file next to it (``<csv stem>.json``).

    The blend fills the first fields; `write_submission` adds the file's own (csv ... created). Keys kit does not
    know (e.g. ``partial``) are kept in ``extra`` and written back; every field is optional, so sidecars written
    by older kit versions (plain JSON dicts) still read.

    Attributes:
        competition: kit competition name.
        runs: run folders blended, in order.
        method: blend method (mean, rank, hill).
        weights: blend weight per run name.
        cv_score: out-of-fold score of the blend.
        member_cv: out-of-fold score per run name.
        tta: test-time augmentation of the runs' test predictions.
        blend_dir: where the blend was saved.
        csv, sha256, rows, columns, warnings, created: the CSV's name, hex SHA-256 of its bytes, row count,
            columns, validation warnings and creation time (UTC, ISO 8601).
        extra: any other keys.

    Example:
        >>> Sidecar(runs=["runs/pcam/20260101-000000_cnn"], cv_score=0.97).run_names
        ('20260101-000000_cnn',)
    """

    competition: str | None = None
    runs: tuple[str, ...] | None = None
    method: str | None = None
    weights: dict | list | None = None
    cv_score: float | None = None
    member_cv: dict | None = None
    tta: list | str | None = None
    blend_dir: str | None = None
    csv: str | None = None
    sha256: str | None = None
    rows: int | None = None
    columns: list | None = None
    warnings: list | None = None
    created: str | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        # Normalise what JSON and callers hand over: runs as a tuple of strings, the score as a float or nothing.
        runs = self.runs
        if runs is not None:
            runs = tuple(str(r) for r in (runs if isinstance(runs, (list, tuple)) else [runs]))
            object.__setattr__(self, "runs", runs)
        score = self.cv_score
        number = isinstance(score, (int, float, np.number)) and not isinstance(score, bool)
        object.__setattr__(self, "cv_score", float(score) if number else None)

    @property
    def run_names(self) -> tuple[str, ...]:
        """The runs' folder names (what the submission message and the ledger show)."""
        return tuple(Path(r).name for r in self.runs or ())

    @staticmethod
    def path_for(csv) -> Path:
        """The sidecar file of ``csv``."""
        return Path(csv).with_suffix(".json")

    @classmethod
    def from_dict(cls, data: dict) -> Sidecar:
        """A sidecar from its JSON object; unknown keys go to ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(
            **{k: v for k, v in data.items() if k in names}, extra={k: v for k, v in data.items() if k not in names}
        )

    def to_dict(self) -> dict:
        """The JSON object: fields that are set, then ``extra``."""
        data = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "extra" and getattr(self, f.name) is not None
        }
        if self.runs is not None:
            data["runs"] = list(self.runs)
        return {**data, **self.extra}

    @classmethod
    def read(cls, csv) -> Sidecar:
        """The sidecar of ``csv``; an empty one when there is none (a CSV made elsewhere).

        Raises:
            KitError: when the file is not JSON.
        """
        path = cls.path_for(csv)
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text())
        except ValueError as e:
            raise KitError(
                f"expected JSON in the sidecar {path}, could not parse it ({e}). Fix: repair or delete it."
            ) from e
        return cls.from_dict(data) if isinstance(data, dict) else cls()

    def write(self, csv) -> Path:
        """Write the sidecar of ``csv`` atomically; returns its path."""
        path = self.path_for(csv)
        write_json(path, self.to_dict())
        return path
