"""Submission CSVs and their sidecars: validated before writing, written atomically, never overwritten.

Layout::

    submissions/<competition>/<YYYYmmdd-HHMMSS>_<name>.csv    every test id once, sample_submission order, in the
                                                              adapter's `SubmissionFormat` (probability: id, label
                                                              float probabilities, never thresholded; class_name,
                                                              class_probs or labels)
    submissions/<competition>/<YYYYmmdd-HHMMSS>_<name>.json   the `Sidecar`: what made the CSV (runs, weights, cv score,
                                                              method, tta) plus sha256 of the CSV bytes, rows, created

Example:
    >>> from kit.infer.submission import Sidecar, SubmissionFormat, expected_ids_from_store, write_submission
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
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kit import paths
from kit.adapters.base import SUBMISSION_FORMATS
from kit.errors import KitError
from kit.files import atomic_write, write_json
from kit.ingest.store import open_store, read_table
from kit.metrics import TASKS, hard_labels

__all__ = [
    "Sidecar",
    "SubmissionFormat",
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


@dataclasses.dataclass(frozen=True)
class SubmissionFormat:
    """What a competition's submission CSV looks like: its kind (one of ``SUBMISSION_FORMATS``) and its columns.

    Kinds (``proba`` is the engine's (N, n_outputs) probability matrix; binary: one column, the positive class):

    * ``probability`` (binary): ``id,label``, the positive class's probability, never thresholded.
    * ``class_name`` (binary, multiclass): ``file,species``, the predicted class's name: the argmax (binary: the
      second class when the probability is >= 0.5). Names may contain spaces ("Loose Silky-bent").
    * ``class_probs`` (any task): ``image,MEL,NV,...``, one probability column per class (``columns[1:]``,
      default the class names). A binary format with two class columns gets (1 - p, p); with one, p. For
      multiclass (and two-column binary) rows whose probabilities do not sum to 1 within ``SUM_TOLERANCE`` are a
      warning, not an error (Kaggle's log loss rescales rows; other metrics may not).
    * ``labels`` (multilabel): ``id,labels``, the labels whose probability is >= 0.5, space-separated in class
      order. Every row gets at least one label: when no class reaches 0.5, the most probable one is written
      (Kaggle's multilabel metrics score an empty row as all wrong). Class names must not contain whitespace.
      Validation accepts empty rows in a CSV made elsewhere, with a warning.

    Attributes:
        kind: one of ``SUBMISSION_FORMATS``.
        id_column: the id column (first in the CSV).
        label_column: the value column of ``probability``, ``class_name`` and ``labels`` (unused by ``class_probs``).
        classes: class names in output order (``class_name``, ``class_probs``, ``labels``).
        columns: the CSV header; derived from the others when not given (``class_probs``: the id column, then
            one column per class, e.g. the adapter's ``class_columns``).
        task: ``binary``, ``multiclass`` or ``multilabel`` (default: binary for ``probability``, multilabel for
            ``labels``, multiclass otherwise).

    Example:
        >>> fmt = SubmissionFormat("class_name", "file", "species", ("Black-grass", "Loose Silky-bent"))
        >>> fmt.frame(["a.png", "b.png"], [[0.9, 0.1], [0.3, 0.7]])["species"].tolist()
        ['Black-grass', 'Loose Silky-bent']
        >>> SubmissionFormat("class_probs", "image", classes=("MEL", "NV", "BCC")).columns
        ('image', 'MEL', 'NV', 'BCC')
    """

    kind: str = "probability"
    id_column: str = "id"
    label_column: str = "label"
    classes: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    task: str = ""

    SUM_TOLERANCE = 1e-3  # class_probs: how far a multiclass row's sum may be from 1 before it is a warning

    def __post_init__(self):
        classes = tuple(str(c) for c in self.classes)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "id_column", str(self.id_column))
        object.__setattr__(self, "label_column", str(self.label_column))
        if self.kind not in SUBMISSION_FORMATS:
            raise self._bad(f"submission format one of {', '.join(SUBMISSION_FORMATS)}", self.kind)
        task = self.task or {"probability": "binary", "labels": "multilabel"}.get(self.kind, "multiclass")
        object.__setattr__(self, "task", task)
        tasks = {"probability": ("binary",), "class_name": ("binary", "multiclass"), "labels": ("multilabel",)}
        if task not in tasks.get(self.kind, TASKS):
            raise self._bad(
                f"a task the {self.kind!r} format can write ({', '.join(tasks.get(self.kind, TASKS))})", task
            )
        if self.kind != "probability":
            if len(classes) < 2 or len(set(classes)) != len(classes) or any(not c.strip() for c in classes):
                raise self._bad(f"at least two distinct, non-empty class names for the {self.kind!r} format", classes)
            if task == "binary" and len(classes) != 2:
                raise self._bad("two class names (label 0, label 1) for a binary task", classes)
        if self.kind == "labels":
            spaced = [c for c in classes if len(c.split()) != 1]
            if spaced:
                raise KitError(
                    f"expected class names without spaces for the 'labels' format (labels are written "
                    f"space-separated), got {spaced}. Fix: declare the classes without spaces (e.g. "
                    f"{spaced[0].strip().replace(' ', '_')!r}) or submit another format (class_probs)."
                )
        columns = tuple(str(c) for c in self.columns) or self._default_columns()
        object.__setattr__(self, "columns", columns)
        self._check_columns()

    @staticmethod
    def _bad(expected: str, got) -> KitError:
        return KitError(f"expected {expected}, got {got!r}. Fix: correct the adapter's declaration.")

    def _default_columns(self) -> tuple[str, ...]:
        if self.kind == "class_probs":
            return (self.id_column, *self.classes)
        return (self.id_column, self.label_column)

    def _check_columns(self) -> None:
        columns = self.columns
        if len(set(columns)) != len(columns) or any(not c.strip() for c in columns):
            raise self._bad("distinct, non-empty submission columns", columns)
        if columns[0] != self.id_column:
            raise self._bad(f"the id column {self.id_column!r} first", columns)
        if self.kind != "class_probs" and columns != (self.id_column, self.label_column):
            raise self._bad(
                f"columns [{self.id_column!r}, {self.label_column!r}] for the {self.kind!r} format", columns
            )
        if self.kind == "class_probs":
            fits = (len(self.classes),) + ((1,) if self.task == "binary" else ())
            if len(columns) - 1 not in fits:
                raise self._bad(
                    f"one probability column per class ({len(self.classes)}: {', '.join(self.classes)}) after "
                    f"{self.id_column!r}",
                    columns,
                )

    @classmethod
    def from_adapter(cls, adapter) -> SubmissionFormat:
        """The format an adapter declares (``submission``, ``id_column``, ``label_column``, ``class_names``,
        ``class_columns``, ``task``).

        Raises:
            KitError: when the declaration cannot be written (e.g. class names with spaces for ``labels``).

        Example:
            >>> SubmissionFormat.from_adapter(get_adapter("pcam")).columns  # doctest: +SKIP
            ('id', 'label')
        """
        kind = getattr(adapter, "submission", "probability")
        class_columns = tuple(getattr(adapter, "class_columns", ()) or ())
        columns = (adapter.id_column, *class_columns) if kind == "class_probs" and class_columns else ()
        try:
            return cls(
                kind=kind,
                id_column=adapter.id_column,
                label_column=adapter.label_column,
                classes=tuple(adapter.class_names) if kind != "probability" else tuple(adapter.classes),
                columns=columns,
                task=adapter.task,
            )
        except KitError as e:
            raise KitError(f"adapter {adapter.name!r}: {e}") from None

    @property
    def n_outputs(self) -> int:
        """Probability columns the format is made from: 1 for binary, else one per class."""
        return 1 if self.task == "binary" else len(self.classes)

    @property
    def value_columns(self) -> tuple[str, ...]:
        """The columns after the id."""
        return self.columns[1:]

    def read(self, source) -> pd.DataFrame:
        """A submission CSV (path or file object) as Kaggle parses it: ids and names as text, "" kept as ""."""
        text = {self.id_column: str}
        if self.kind in ("class_name", "labels"):
            text[self.label_column] = str
        return pd.read_csv(source, dtype=text, keep_default_na=False)

    def frame(self, ids, proba) -> pd.DataFrame:
        """The submission rows of ``ids`` (in the given order) from ``proba`` (N, n_outputs; binary also (N,)).

        Raises:
            KitError: when the shape does not match the ids or the format; for ``class_name`` and ``labels`` also
                NaN/inf or values outside [0, 1] (they would turn into labels silently).
        """
        ids = [str(i) for i in ids]
        proba = np.asarray(proba, dtype=np.float64)
        if proba.ndim == 1 and self.n_outputs == 1:
            proba = proba.reshape(-1, 1)
        if proba.ndim >= 1 and len(proba) != len(ids):
            raise KitError(
                f"expected one prediction per id, got {len(ids)} ids and {len(proba)} predictions. "
                "Fix: pass the blend's test ids and predictions together."
            )
        if proba.ndim != 2 or proba.shape[1] != self.n_outputs:
            what = "the positive class's probability" if self.n_outputs == 1 else ", ".join(self.classes)
            raise KitError(
                f"expected predictions of shape (N, {self.n_outputs}) for a {self.task} {self.kind!r} submission "
                f"({what}), got shape {proba.shape}. Fix: pass the run's test probabilities for this competition."
            )
        if self.kind == "probability":
            return pd.DataFrame({self.id_column: ids, self.label_column: proba[:, 0]})
        if self.kind == "class_probs":
            if len(self.value_columns) == 2 and self.n_outputs == 1:
                proba = np.column_stack([1.0 - proba[:, 0], proba[:, 0]])
            return pd.DataFrame({self.id_column: ids, **{c: proba[:, j] for j, c in enumerate(self.value_columns)}})
        _check_values(proba, pd.Index(ids), "the predictions have", ["values"] * proba.shape[1])
        names = np.asarray(self.classes, dtype=object)
        if self.kind == "class_name":
            values = names[hard_labels(proba, self.task)].tolist()
        else:
            hot = hard_labels(proba, "multilabel").astype(bool)
            none = ~hot.any(axis=1)
            hot[np.flatnonzero(none), proba[none].argmax(axis=1)] = True  # at least one label per row
            values = [" ".join(names[row]) for row in hot]
        return pd.DataFrame({self.id_column: ids, self.label_column: pd.Series(values, dtype=object)})


def _name_ids(ids) -> str:
    """The first few ids and how many there are: "'a', 'b', ... (12 in all)"."""
    ids = list(ids)
    shown = ", ".join(repr(str(i)) for i in ids[:_SHOW])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > _SHOW else f" ({len(ids)} in all)")


def _name_classes(classes) -> str:
    return ", ".join(repr(c) for c in classes[:12]) + (", ..." if len(classes) > 12 else "")


def _check_values(values: np.ndarray, ids: pd.Index, subject: str, nouns: list[str]) -> None:
    """Refuse NaN/inf and values outside [0, 1] in the (N, k) ``values``; ``nouns[j]`` names column j."""
    for j, noun in enumerate(nouns):
        column = values[:, j]
        bad = ~np.isfinite(column)
        if bad.any():
            raise KitError(
                f"{subject} NaN/inf {noun} for ids {_name_ids(ids[bad])}. "
                "Fix: retrain or re-predict the runs that produced them."
            )
        outside = (column < 0) | (column > 1)
        if outside.any():
            raise KitError(
                f"{subject} {noun} outside [0, 1] for ids {_name_ids(ids[outside])} "
                f"(min {column.min():.4g}, max {column.max():.4g}). Fix: submit probabilities (apply the "
                "sigmoid/softmax to logits)."
            )


def _numeric(frame: pd.DataFrame, ids: pd.Index, columns) -> np.ndarray:
    """The probability columns as an (N, k) matrix; refuses non-numeric, NaN/inf and out-of-range values."""
    matrix = np.empty((len(frame), len(columns)))
    for j, column in enumerate(columns):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        not_numeric = frame[column].notna().to_numpy() & np.isnan(values)
        if not_numeric.any():
            raise KitError(
                f"the submission has non-numeric {column!r} values for ids {_name_ids(ids[not_numeric])}. "
                "Fix: write float probabilities."
            )
        matrix[:, j] = values
    _check_values(matrix, ids, "the submission has", [f"{c!r} values" for c in columns])
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
            f"the submission has {column!r} values that are not {what} for ids {_name_ids(ids[bad])} (first: "
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
            f"{_name_ids(ids[moved])}. Fix: reorder the rows to the expected test ids."
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
                f"{int(empty.sum())} rows have no label (ids {_name_ids(ids[empty])}): an empty row usually scores "
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
                f"{sums[off].min():.4g} to {sums[off].max():.4g}), ids {_name_ids(ids[off])}: apply the softmax "
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
