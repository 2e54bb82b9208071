"""The submission formats Kaggle competitions ask for (``kit.adapters.base.SUBMISSION_FORMATS``), as data: the
CSV's columns and how a probability matrix becomes its rows.

Example:
    >>> SubmissionFormat("class_probs", "image", classes=("MEL", "NV", "BCC")).columns
    ('image', 'MEL', 'NV', 'BCC')
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from kit.adapters.base import SUBMISSION_FORMATS
from kit.errors import KitError
from kit.metrics import TASKS, hard_labels, n_outputs

__all__ = ["SubmissionFormat", "check_values", "name_ids"]

_SHOW = 10  # ids named in a message before "... (N in all)"


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
        return n_outputs(self.task, self.classes)

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
        check_values(proba, pd.Index(ids), "the predictions have", ["values"] * proba.shape[1])
        names = np.asarray(self.classes, dtype=object)
        if self.kind == "class_name":
            values = names[hard_labels(proba, self.task)].tolist()
        else:
            hot = hard_labels(proba, "multilabel").astype(bool)
            none = ~hot.any(axis=1)
            hot[np.flatnonzero(none), proba[none].argmax(axis=1)] = True  # at least one label per row
            values = [" ".join(names[row]) for row in hot]
        return pd.DataFrame({self.id_column: ids, self.label_column: pd.Series(values, dtype=object)})


def name_ids(ids) -> str:
    """The first few ids and how many there are: "'a', 'b', ... (12 in all)"."""
    ids = list(ids)
    shown = ", ".join(repr(str(i)) for i in ids[:_SHOW])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > _SHOW else f" ({len(ids)} in all)")


def check_values(values: np.ndarray, ids: pd.Index, subject: str, nouns: list[str]) -> None:
    """Refuse NaN/inf and values outside [0, 1] in the (N, k) ``values``; ``nouns[j]`` names column j."""
    for j, noun in enumerate(nouns):
        column = values[:, j]
        bad = ~np.isfinite(column)
        if bad.any():
            raise KitError(
                f"{subject} NaN/inf {noun} for ids {name_ids(ids[bad])}. "
                "Fix: retrain or re-predict the runs that produced them."
            )
        outside = (column < 0) | (column > 1)
        if outside.any():
            raise KitError(
                f"{subject} {noun} outside [0, 1] for ids {name_ids(ids[outside])} "
                f"(min {column.min():.4g}, max {column.max():.4g}). Fix: submit probabilities (apply the "
                "sigmoid/softmax to logits)."
            )
