"""The metric registry: each competition metric with its direction, what it scores (probabilities or hard labels)
and the tasks it applies to.

Every metric is called the same way, ``metric(target, proba)``: ``target`` holds class indices, shape (N,), for
``binary`` and ``multiclass`` and a multi-hot matrix, shape (N, C), for ``multilabel``; ``proba`` holds the model's
probabilities, shape (N, C) (binary: C = 1, the positive class, or a vector of N). Metrics on labels turn the
probabilities into labels themselves (``hard_labels``: argmax for one label per image, 0.5 per column otherwise), so
the engine never thresholds. ``better`` and ``worst`` follow the direction, so callers never assume "higher".

Example:
    >>> from kit.metrics import get_metric
    >>> accuracy = get_metric("accuracy")
    >>> accuracy(np.array([0, 2]), np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])), accuracy.higher_is_better
    (1.0, True)
    >>> get_metric("log_loss").better(0.2, 0.3)
    True
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np

from kit.errors import KitError

__all__ = [
    "TASKS",
    "Metric",
    "get_metric",
    "list_metrics",
    "hard_labels",
    "as_matrix",
    "n_outputs",
    "register_metric",
]


class _Sklearn:
    """``sklearn.metrics``, imported on first use: adapters import this registry, and the CLI starts without it."""

    def __getattr__(self, name):
        from sklearn import metrics

        return getattr(metrics, name)


skm = _Sklearn()

TASKS = ("binary", "multiclass", "multilabel")


def n_outputs(task: str, classes) -> int:
    """How many probabilities a model of ``task`` gives per image: 1 for binary (the positive class), else one per
    class.

    Example:
        >>> n_outputs("binary", ("0", "1")), n_outputs("multiclass", ("a", "b", "c"))
        (1, 3)
    """
    return 1 if task == "binary" else len(classes)


def as_matrix(proba) -> np.ndarray:
    """Probabilities as an (N, C) float64 matrix (a vector becomes one column).

    Example:
        >>> as_matrix([0.2, 0.9]).shape
        (2, 1)
    """
    proba = np.asarray(proba, dtype=np.float64)
    return proba.reshape(-1, 1) if proba.ndim == 1 else proba


def hard_labels(proba, task: str) -> np.ndarray:
    """The predicted labels: binary 0/1 at 0.5, multiclass the argmax, multilabel a 0/1 matrix at 0.5 per column.

    Example:
        >>> hard_labels([[0.2, 0.5, 0.3]], "multiclass").tolist()
        [1]
    """
    proba = as_matrix(proba)
    if task == "multiclass":
        return proba.argmax(axis=1)
    if task == "binary":
        return (proba[:, -1] >= 0.5).astype(np.int64)
    return (proba >= 0.5).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class Metric:
    """One metric. ``fn(target, proba_matrix, task)`` does the scoring; calling the metric checks the shapes first."""

    name: str
    higher_is_better: bool
    needs: str  # "proba" or "labels"
    tasks: tuple[str, ...]
    description: str
    fn: Callable[[np.ndarray, np.ndarray, str], float]

    @property
    def column_ranks_suffice(self) -> bool:
        """True when the score depends only on each probability column's order (the per-column AUCs), so averaging
        per-column ranks (``rank`` fold average or blend) cannot change what it measures."""
        return self.name in _COLUMN_RANK_METRICS

    @property
    def worst(self) -> float:
        return -np.inf if self.higher_is_better else np.inf

    def better(self, a: float, b: float) -> bool:
        """True when score ``a`` is strictly better than ``b``."""
        return a > b if self.higher_is_better else a < b

    def task_of(self, target, proba) -> str:
        """The task these arrays describe: multilabel for a 2-D target, binary for one probability column."""
        if np.ndim(target) == 2:
            return "multilabel"
        return "binary" if as_matrix(proba).shape[1] == 1 else "multiclass"

    def __call__(self, target, proba, task: str | None = None) -> float:
        target, proba = np.asarray(target), as_matrix(proba)
        task = task or self.task_of(target, proba)
        if task not in self.tasks:
            raise KitError(
                f"expected a {' or '.join(self.tasks)} task for metric {self.name!r}, got {task}. "
                f"Fix: pick a metric for {task} ({', '.join(list_metrics(task))})."
            )
        if len(target) != len(proba):
            raise KitError(
                f"expected one prediction per target row, got {len(proba)} predictions for {len(target)} rows."
            )
        if not np.isfinite(proba).all():
            raise KitError(
                f"cannot score {self.name}: the predictions hold NaN/inf. Fix: retrain the fold that made them."
            )
        _check_shapes(target, proba, task)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn warns and returns NaN where a score is undefined
            try:
                score = float(self.fn(target, proba, task))
            except ValueError as e:
                score, why = float("nan"), str(e)
            else:
                why = "undefined on these rows"
        if not np.isfinite(score):  # e.g. AUC of rows holding one class, kappa of one class predicted for all
            raise KitError(
                f"cannot score {self.name} on these {len(target)} rows ({why}; classes present: "
                f"{np.unique(target, axis=0).shape[0]}). Fix: score more rows (every class present), or use fewer "
                "folds."
            )
        return score


def _check_shapes(target: np.ndarray, proba: np.ndarray, task: str) -> None:
    outputs = proba.shape[1]
    if task == "multilabel" and (target.ndim != 2 or target.shape[1] != outputs):
        raise KitError(
            f"expected one probability column per label, got {outputs} columns for targets of shape {target.shape}."
        )
    if task == "binary" and outputs not in (1, 2):
        raise KitError(f"expected 1 probability column for a binary task, got {outputs}.")
    if task != "multilabel":
        if target.ndim != 1:
            raise KitError(f"expected class indices (N,) as {task} targets, got shape {target.shape}.")
        top = 2 if task == "binary" else outputs
        if len(target) and (target.min() < 0 or target.max() >= top):
            raise KitError(
                f"expected class indices 0..{top - 1} ({outputs} probability columns), got {target.min()}.."
                f"{target.max()}. Fix: score with the run's own store (its labels)."
            )


_METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add a metric under its name (names are unique)."""
    if metric.name in _METRICS:
        raise KitError(f"expected one metric per name, got a second {metric.name!r}. Fix: choose another name.")
    _METRICS[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    """The metric called ``name``; an unknown name lists the known ones."""
    if name not in _METRICS:
        raise KitError(f"unknown metric {name!r}; known: {', '.join(sorted(_METRICS))}. Fix: use one of these.")
    return _METRICS[name]


def list_metrics(task: str | None = None) -> list[str]:
    """Names of the metrics (for ``task`` only, when given), sorted."""
    return sorted(n for n, m in _METRICS.items() if task is None or task in m.tasks)


def _one_hot(target: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes, dtype=np.int64)[target.astype(np.int64)]


def _roc_auc(target, proba, task):
    return skm.roc_auc_score(target, proba[:, -1])


def _auc_ovr(average: str):
    def score(target, proba, task):
        if average == "micro":
            return skm.roc_auc_score(_one_hot(target, proba.shape[1]), proba, average="micro")
        return skm.roc_auc_score(target, proba, multi_class="ovr", average="macro", labels=range(proba.shape[1]))

    return score


def _mean_column_auc(target, proba, task):
    return np.mean([skm.roc_auc_score(target[:, c], proba[:, c]) for c in range(proba.shape[1])])


def _log_loss(target, proba, task):
    eps = 1e-15
    if task == "multilabel":
        p = np.clip(proba, eps, 1 - eps)
        return -np.mean(target * np.log(p) + (1 - target) * np.log(1 - p))
    if task == "binary":
        proba = np.column_stack([1 - proba[:, -1], proba[:, -1]])
    return skm.log_loss(target, np.clip(proba, eps, 1), labels=range(proba.shape[1]))


def _on_labels(name: str, **kwargs):
    def score(target, proba, task):
        return getattr(skm, name)(target, hard_labels(proba, task), **kwargs)

    return score


def _f1(average: str):
    def score(target, proba, task):
        labels = range(proba.shape[1]) if task != "binary" else None
        return skm.f1_score(target, hard_labels(proba, task), average=average, labels=labels, zero_division=0)

    return score


_ONE_LABEL = ("binary", "multiclass")
_COLUMN_RANK_METRICS = ("roc_auc", "auc_macro_ovr", "mean_column_auc")  # auc_micro_ovr pools columns: not these
_METRIC_TABLE = (  # name, higher is better, needs, tasks, description, scorer
    ("roc_auc", True, "proba", ("binary",), "ROC AUC of the positive class", _roc_auc),
    ("auc_macro_ovr", True, "proba", ("multiclass",), "one-vs-rest ROC AUC, classes averaged", _auc_ovr("macro")),
    ("auc_micro_ovr", True, "proba", ("multiclass",), "one-vs-rest ROC AUC, all pairs pooled", _auc_ovr("micro")),
    ("mean_column_auc", True, "proba", ("multilabel",), "ROC AUC of each label, averaged", _mean_column_auc),
    ("log_loss", False, "proba", TASKS, "cross-entropy of the probabilities (lower is better)", _log_loss),
    ("accuracy", True, "labels", TASKS, "share of images labelled right", _on_labels("accuracy_score")),
    ("micro_f1", True, "labels", TASKS, "F1 of all decisions pooled (one label per image: accuracy)", _f1("micro")),
    ("macro_f1", True, "labels", TASKS, "F1 of each class, averaged", _f1("macro")),
    ("balanced_accuracy", True, "labels", _ONE_LABEL, "recall of each class, averaged",
     _on_labels("balanced_accuracy_score")),
    ("qwk", True, "labels", _ONE_LABEL, "quadratic weighted Cohen's kappa (graded labels)",
     _on_labels("cohen_kappa_score", weights="quadratic")),
)  # fmt: skip
for _row in _METRIC_TABLE:
    register_metric(Metric(*_row))
