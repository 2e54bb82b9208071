"""Submission CSVs and their sidecars (``kit.infer.sidecar``): validated against the adapter's format
(``kit.infer.submission_format``) before writing, written atomically, never overwritten.

Layout::

    submissions/<competition>/<YYYYmmdd-HHMMSS>_<name>.csv    every test id once, sample_submission order, in the
                                                              adapter's `SubmissionFormat` (probability: id, label
                                                              float probabilities, never thresholded; class_name,
                                                              class_probs or labels)
    submissions/<competition>/<YYYYmmdd-HHMMSS>_<name>.json   the `Sidecar`: what made the CSV (runs, weights, cv score,
                                                              method, tta) plus sha256 of the CSV bytes, rows, created

Example:
    >>> from kit.infer.submission import expected_ids_from_store, write_submission
    >>> ids = expected_ids_from_store("data/pcam/pcam.h5")  # doctest: +SKIP
    >>> fmt = SubmissionFormat.from_adapter(get_adapter("pcam"))  # doctest: +SKIP
    >>> write_submission("pcam", ids, proba, "cnn", expected_ids=ids, fmt=fmt,  # doctest: +SKIP
    ...                  sidecar=Sidecar(cv_score=0.97))
    PosixPath('submissions/pcam/20261124-101500_cnn.csv')
    >>> Sidecar.read("submissions/pcam/20261124-101500_cnn.csv").cv_score  # doctest: +SKIP
    0.97
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kit import paths
from kit.errors import KitError
from kit.files import atomic_write
from kit.infer.sidecar import Sidecar
from kit.infer.submission_format import SubmissionFormat, check_values, name_ids
from kit.ingest.store import open_store, read_table

__all__ = [
    "validate_submission",
    "write_submission",
    "sha256_file",
    "expected_ids_from_store",
    "FLOAT_FORMAT",
]

FLOAT_FORMAT = "%.10g"  # round-trips float32 and keeps distinct float64 probabilities distinct (AUC ties)


def _name_classes(classes) -> str:
    return ", ".join(repr(c) for c in classes[:12]) + (", ..." if len(classes) > 12 else "")


def _numeric(frame: pd.DataFrame, ids: pd.Index, columns) -> np.ndarray:
    """The probability columns as an (N, k) matrix; refuses non-numeric, NaN/inf and out-of-range values."""
    matrix = np.empty((len(frame), len(columns)))
    for j, column in enumerate(columns):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        not_numeric = frame[column].notna().to_numpy() & np.isnan(values)
        if not_numeric.any():
            raise KitError(
                f"the submission has non-numeric {column!r} values for ids {name_ids(ids[not_numeric])}. "
                "Fix: write float probabilities."
            )
        matrix[:, j] = values
    check_values(matrix, ids, "the submission has", [f"{c!r} values" for c in columns])
    return matrix


def _names(frame: pd.DataFrame, ids: pd.Index, fmt: SubmissionFormat) -> pd.Series:
    """The label column as text; refuses values that are not class names (``labels``: unknown or repeated)."""
    column = fmt.label_column
    values = frame[column].astype(str).reset_index(drop=True)
    known = set(fmt.classes)
    if fmt.kind == "class_name":
        bad = ~values.isin(known).to_numpy()
        what, how = "class names", "one class name per row, exactly as spelled (spaces included)"
    else:
        tokens = values.str.split()
        bad = np.array([not known.issuperset(t) or len(set(t)) != len(t) for t in tokens], dtype=bool)
        what, how = "labels", "the predicted class names, space-separated, each once (names are case-sensitive)"
    if bad.any():
        raise KitError(
            f"the submission has {column!r} values that are not {what} for ids {name_ids(ids[bad])} (first: "
            f"{values[bad].iloc[0]!r}; classes: {_name_classes(fmt.classes)}). Fix: write {how}."
        )
    return values


def validate_submission(frame: pd.DataFrame, expected_ids, fmt: SubmissionFormat) -> list[str]:
    """Raise KitError unless ``frame`` is a valid submission of format ``fmt``; return warnings.

    Refuses: columns other than exactly ``fmt.columns``; missing, extra or duplicated ids; rows in another order
    than ``expected_ids``; by kind, ``probability``/``class_probs``: NaN/inf or non-numeric values, values outside
    [0, 1]; ``class_name``: a value that is not a class name; ``labels``: unknown or repeated labels. Messages name
    the offending ids (the first 10 and a count).

    Warns: ``probability``: every value 0 or 1 (thresholded), or one constant value; ``class_probs``: every value
    0 or 1, every row the same, multiclass rows not summing to 1 within ``SubmissionFormat.SUM_TOLERANCE``;
    ``class_name``/``labels``: every row the same; ``labels``: rows without a label.

    Example:
        >>> validate_submission(pd.DataFrame({"id": ["a", "b"], "label": [0.2, 0.9]}), ["a", "b"], SubmissionFormat())
        []
    """
    columns, wanted = list(frame.columns), list(fmt.columns)
    if columns != wanted:
        count = "two" if len(wanted) == 2 else str(len(wanted))
        raise KitError(
            f"expected submission columns {wanted}, got {columns}. Fix: keep exactly those {count} columns, in that "
            "order."
        )
    id_column = fmt.id_column
    expected = pd.Index([str(i) for i in expected_ids])
    if expected.duplicated().any():
        dup = expected[expected.duplicated()]
        raise KitError(
            f"the expected test ids list some ids more than once: {name_ids(dup)}. "
            "Fix: rebuild the store with `kit ingest`."
        )
    ids = pd.Index(frame[id_column].astype(str))
    if ids.duplicated().any():
        raise KitError(
            f"the submission lists some ids more than once: {name_ids(ids[ids.duplicated()].unique())}. "
            "Fix: one row per test id (check the blend's test predictions)."
        )
    missing, extra = expected.difference(ids, sort=False), ids.difference(expected, sort=False)
    if len(missing):
        raise KitError(
            f"the submission misses {len(missing)} test ids: {name_ids(missing)}. "
            "Fix: predict every test id of the store (`kit predict RUN`)."
        )
    if len(extra):
        raise KitError(
            f"the submission has {len(extra)} ids that are not test ids: {name_ids(extra)}. "
            "Fix: predict the test split of the competition's own store."
        )
    if fmt.kind in ("probability", "class_probs"):
        values = _numeric(frame, ids, fmt.value_columns)
    else:
        names = _names(frame, ids, fmt)
    moved = ids.to_numpy() != expected.to_numpy()
    if moved.any():
        rows = np.flatnonzero(moved)
        raise KitError(
            f"the submission's rows are not in sample_submission order ({len(rows)} rows differ, first "
            f"at row {rows[0]}: expected {expected[rows[0]]!r}, got {ids[rows[0]]!r}); ids out of place: "
            f"{name_ids(ids[moved])}. Fix: reorder the rows to the expected test ids."
        )
    if fmt.kind == "probability":
        return _probability_warnings(values[:, 0], fmt.label_column)
    if fmt.kind == "class_probs":
        return _class_probs_warnings(values, ids, fmt)
    warnings = []
    if fmt.kind == "labels":
        empty = (names.str.strip() == "").to_numpy()
        if empty.any():
            warnings.append(
                f"{int(empty.sum())} rows have no label (ids {name_ids(ids[empty])}): an empty row usually scores "
                "as all wrong. kit writes the most probable label when none reaches 0.5."
            )
    if len(names) > 1 and names.nunique() == 1:
        warnings.append(f"every {fmt.label_column!r} value is {names.iloc[0]!r}: a constant prediction.")
    return warnings


def _probability_warnings(values: np.ndarray, label_column: str) -> list[str]:
    if len(values) and np.isin(values, (0.0, 1.0)).all():
        return [
            f"every {label_column!r} value is 0 or 1: thresholded predictions cost ROC AUC (it is scored "
            "on the ranking). Submit the probabilities instead."
        ]
    if len(values) > 1 and np.unique(values).size == 1:
        return [f"every {label_column!r} value is {values[0]:.4g}: a constant prediction scores ROC AUC 0.5."]
    return []


def _class_probs_warnings(values: np.ndarray, ids: pd.Index, fmt: SubmissionFormat) -> list[str]:
    warnings = []
    if values.size and np.isin(values, (0.0, 1.0)).all():
        warnings.append(
            "every class probability is 0 or 1: hard predictions cost log loss and AUC (scored on the "
            "probabilities). Submit the probabilities instead."
        )
    elif len(values) > 1 and (values == values[0]).all():
        warnings.append("every row has the same class probabilities: a constant prediction.")
    if fmt.task == "multiclass" or (fmt.task == "binary" and values.shape[1] == 2):
        sums = values.sum(axis=1)
        off = np.abs(sums - 1.0) > fmt.SUM_TOLERANCE
        if off.any():
            warnings.append(
                f"{int(off.sum())} rows' class probabilities do not sum to 1 (within {fmt.SUM_TOLERANCE:g}; sums "
                f"{sums[off].min():.4g} to {sums[off].max():.4g}), ids {name_ids(ids[off])}: apply the softmax "
                "(Kaggle may rescale each row, or score it as it is)."
            )
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
    proba,
    name: str,
    *,
    expected_ids,
    fmt: SubmissionFormat,
    sidecar: Sidecar | dict,
    out_dir=None,
    reuse_identical: bool = False,
) -> Path:
    """Validate and write ``<out_dir or submissions/>/<competition>/<time>_<name>.csv`` plus its ``.json`` sidecar.

    ``proba`` is the (N, n_outputs) probability matrix of ``ids`` (binary: also a vector); ``fmt.frame`` turns it
    into the CSV's rows (see `SubmissionFormat`). Rows are put in ``expected_ids`` order (when the ids are the same
    set, each once); probabilities are written as floats, never thresholded. Nothing is written when validation
    fails; the bytes are re-read as Kaggle will parse them and validated again; an existing file is never
    overwritten (a ``_2``, ``_3``, ... suffix is added). Warnings from ``validate_submission`` go into the sidecar
    and are printed. With ``reuse_identical``, an earlier file with the same bytes, runs and method is returned
    instead. ``sidecar`` may be a plain dict (read like a sidecar file).
    """
    sidecar = sidecar if isinstance(sidecar, Sidecar) else Sidecar.from_dict(dict(sidecar))
    frame = fmt.frame(ids, proba)
    id_column = fmt.id_column
    ids = frame[id_column].tolist()
    expected = [str(i) for i in expected_ids]
    if (
        not frame[id_column].duplicated().any()
        and len(ids) == len(expected)
        and set(ids) == set(expected)
        and ids != expected
    ):
        frame = frame.set_index(id_column).loc[expected].reset_index()
    warnings = validate_submission(frame, expected, fmt)
    data = frame.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n").encode()
    validate_submission(fmt.read(io.BytesIO(data)), expected, fmt)  # what Kaggle will parse
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
        columns=list(fmt.columns),
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


def expected_ids_from_store(store_path, adapter=None) -> list[str]:
    """Test ids in submission (sample_submission) order, read from a finished HDF5 store (checked to belong to
    ``adapter`` when given)."""
    with open_store(store_path, adapter) as h5:
        return read_table(h5, "test")["id"].tolist()
