"""Submission CSVs and their sidecars: validated before writing, written atomically, never overwritten.

Layout::

    submissions/<competition>/<YYYYmmdd-HHMMSS>_<name>.csv    id, label: every test id once, sample_submission order,
                                                              float probabilities (never thresholded)
    submissions/<competition>/<YYYYmmdd-HHMMSS>_<name>.json   the `Sidecar`: what made the CSV (runs, weights, cv score,
                                                              method, tta) plus sha256 of the CSV bytes, rows, created

Example:
    >>> from kit.infer.submission import Sidecar, expected_ids_from_store, write_submission
    >>> ids = expected_ids_from_store("data/pcam/pcam.h5")  # doctest: +SKIP
    >>> write_submission("pcam", ids, preds, "cnn", expected_ids=ids, id_column="id",  # doctest: +SKIP
    ...                  label_column="label", sidecar=Sidecar(cv_score=0.97))
    PosixPath('submissions/pcam/20261124-101500_cnn.csv')
    >>> Sidecar.read("submissions/pcam/20261124-101500_cnn.csv").cv_score  # doctest: +SKIP
    0.97
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kit import paths
from kit.errors import KitError
from kit.files import atomic_write, write_json
from kit.ingest.store import open_store, read_table

__all__ = [
    "Sidecar",
    "validate_submission",
    "write_submission",
    "sha256_file",
    "expected_ids_from_store",
    "FLOAT_FORMAT",
]

FLOAT_FORMAT = "%.10g"  # round-trips float32 and keeps distinct float64 probabilities distinct (AUC ties)
_SHOW = 10


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


def _name_ids(ids) -> str:
    """The first few ids and how many there are: "'a', 'b', ... (12 in all)"."""
    ids = list(ids)
    shown = ", ".join(repr(str(i)) for i in ids[:_SHOW])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > _SHOW else f" ({len(ids)} in all)")


def validate_submission(frame: pd.DataFrame, expected_ids, id_column: str, label_column: str) -> list[str]:
    """Raise KitError unless ``frame`` is a valid probability submission; return warnings (e.g. hard 0/1 labels).

    Refuses: columns other than exactly [id_column, label_column]; missing, extra or duplicated ids; NaN/inf or
    non-numeric values; values outside [0, 1]; rows in another order than ``expected_ids``. Messages name the
    offending ids (the first 10 and a count).

    Example:
        >>> validate_submission(pd.DataFrame({"id": ["a", "b"], "label": [0.2, 0.9]}), ["a", "b"], "id", "label")
        []
    """
    columns = list(frame.columns)
    if columns != [id_column, label_column]:
        raise KitError(
            f"expected submission columns [{id_column!r}, {label_column!r}], got {columns}. "
            f"Fix: keep exactly those two columns, in that order."
        )
    expected = pd.Index([str(i) for i in expected_ids])
    if expected.duplicated().any():
        dup = expected[expected.duplicated()]
        raise KitError(
            f"the expected test ids list some ids more than once: {_name_ids(dup)}. "
            "Fix: rebuild the store with `kit ingest`."
        )
    ids = pd.Index(frame[id_column].astype(str))
    if ids.duplicated().any():
        raise KitError(
            f"the submission lists some ids more than once: {_name_ids(ids[ids.duplicated()].unique())}. "
            "Fix: one row per test id (check the blend's test predictions)."
        )
    missing, extra = expected.difference(ids, sort=False), ids.difference(expected, sort=False)
    if len(missing):
        raise KitError(
            f"the submission misses {len(missing)} test ids: {_name_ids(missing)}. "
            "Fix: predict every test id of the store (`kit predict RUN`)."
        )
    if len(extra):
        raise KitError(
            f"the submission has {len(extra)} ids that are not test ids: {_name_ids(extra)}. "
            "Fix: predict the test split of the competition's own store."
        )
    values = pd.to_numeric(frame[label_column], errors="coerce").to_numpy(dtype=np.float64)
    not_numeric = frame[label_column].notna().to_numpy() & np.isnan(values)
    if not_numeric.any():
        raise KitError(
            f"the submission has non-numeric {label_column!r} values for ids {_name_ids(ids[not_numeric])}. "
            "Fix: write float probabilities."
        )
    bad = ~np.isfinite(values)
    if bad.any():
        raise KitError(
            f"the submission has NaN/inf {label_column!r} values for ids {_name_ids(ids[bad])}. "
            "Fix: retrain or re-predict the runs that produced them."
        )
    outside = (values < 0) | (values > 1)
    if outside.any():
        raise KitError(
            f"the submission has {label_column!r} values outside [0, 1] for ids {_name_ids(ids[outside])} "
            f"(min {values.min():.4g}, max {values.max():.4g}). Fix: submit probabilities (apply the "
            "sigmoid/softmax to logits)."
        )
    moved = ids.to_numpy() != expected.to_numpy()
    if moved.any():
        rows = np.flatnonzero(moved)
        raise KitError(
            f"the submission's rows are not in sample_submission order ({len(rows)} rows differ, first "
            f"at row {rows[0]}: expected {expected[rows[0]]!r}, got {ids[rows[0]]!r}); ids out of place: "
            f"{_name_ids(ids[moved])}. Fix: reorder the rows to the expected test ids."
        )
    warnings = []
    if len(values) and np.isin(values, (0.0, 1.0)).all():
        warnings.append(
            f"every {label_column!r} value is 0 or 1: thresholded predictions cost ROC AUC (it is scored "
            "on the ranking). Submit the probabilities instead."
        )
    elif len(values) > 1 and np.unique(values).size == 1:
        warnings.append(f"every {label_column!r} value is {values[0]:.4g}: a constant prediction scores ROC AUC 0.5.")
    return warnings


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _free_path(folder: Path, stem: str) -> Path:
    """``folder/stem.csv``, or ``stem_2.csv``, ``stem_3.csv``, ... when a CSV or sidecar of that name exists."""
    candidate, n = stem, 1
    while (folder / f"{candidate}.csv").exists() or (folder / f"{candidate}.json").exists():
        n += 1
        candidate = f"{stem}_{n}"
    return folder / f"{candidate}.csv"


def write_submission(
    competition: str,
    ids,
    preds,
    name: str,
    *,
    expected_ids,
    id_column: str,
    label_column: str,
    sidecar: Sidecar | dict,
    out_dir=None,
    reuse_identical: bool = False,
) -> Path:
    """Validate and write ``<out_dir or submissions/>/<competition>/<time>_<name>.csv`` plus its ``.json`` sidecar.

    Rows are put in ``expected_ids`` order (when the ids are the same set, each once); probabilities are written
    as floats, never thresholded. Nothing is written when validation fails; an existing file is never overwritten
    (a ``_2``, ``_3``, ... suffix is added). Warnings from ``validate_submission`` go into the sidecar and are
    printed. With ``reuse_identical``, an earlier file with the same bytes, runs and method is returned instead.
    ``sidecar`` may be a plain dict (read like a sidecar file).
    """
    sidecar = sidecar if isinstance(sidecar, Sidecar) else Sidecar.from_dict(dict(sidecar))
    ids = [str(i) for i in ids]
    preds = np.asarray(preds, dtype=np.float64).reshape(-1)
    if len(ids) != len(preds):
        raise KitError(
            f"expected one prediction per id, got {len(ids)} ids and {len(preds)} predictions. "
            "Fix: pass the blend's test ids and predictions together."
        )
    expected = [str(i) for i in expected_ids]
    frame = pd.DataFrame({id_column: ids, label_column: preds})
    if (
        not frame[id_column].duplicated().any()
        and len(ids) == len(expected)
        and set(ids) == set(expected)
        and ids != expected
    ):
        frame = frame.set_index(id_column).loc[expected].reset_index()
    warnings = validate_submission(frame, expected, id_column, label_column)
    data = frame.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n").encode()
    reread = pd.read_csv(io.BytesIO(data), dtype={id_column: str}, keep_default_na=False)
    validate_submission(reread, expected, id_column, label_column)  # what Kaggle will parse
    safe = re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("._") or "submission"
    folder = Path(out_dir if out_dir is not None else paths.submissions_dir()) / competition
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()
    if reuse_identical:
        same = _identical_submission(folder, digest, sidecar)
        if same is not None:
            return same
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    csv = _free_path(folder, f"{time.strftime('%Y%m%d-%H%M%S')}_{safe}")
    atomic_write(csv, data)
    dataclasses.replace(
        sidecar,
        competition=sidecar.competition or competition,
        csv=csv.name,
        sha256=digest,
        rows=len(frame),
        columns=[id_column, label_column],
        warnings=warnings,
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    ).write(csv)
    return csv


def _identical_submission(folder: Path, digest: str, sidecar: Sidecar) -> Path | None:
    for csv in sorted(folder.glob("*.csv")):
        try:
            earlier = Sidecar.read(csv)
        except (OSError, KitError):
            continue  # an unreadable sidecar: that file is not reused
        if (
            earlier.sha256 == digest
            and earlier.runs == sidecar.runs
            and earlier.method == sidecar.method
            and sha256_file(csv) == digest
        ):
            return csv
    return None


def expected_ids_from_store(store_path) -> list[str]:
    """Test ids in submission (sample_submission) order, read from a finished HDF5 store."""
    with open_store(store_path) as h5:
        return read_table(h5, "test")["id"].tolist()
