"""The last step of the pipeline: blend finished runs (mean, rank mean, or Caruana hill climbing on the OOF score of
the competition's metric, ``kit.infer.hill_climb``) and write the submission CSV with its sidecar
(``blend_and_submit``). Predictions are (rows, outputs) matrices: one column for a binary run, one per class else.

A run is blendable once ``kit train`` wrote ``folds.csv`` and ``oof.csv`` and ``kit predict RUN`` wrote
``test_pred.csv`` with the folds as they are now. Runs are blended only when they share the same folds (same ids,
same fold per id): OOF predictions of different splits cannot be compared or weighted honestly.

A run whose budget ran out before every fold trained (no ``oof.csv``) is refused unless ``partial=True``
(``kit ensemble RUN --partial``; ``kit.notebook.run`` does the same): then the test predictions are the finished
folds' average (``kit predict RUN`` makes them), the OOF rows are the finished folds' validation rows
(``fold{k}/valid_pred.npy``, labels from the run's store), and the CV is the metric on those rows only; with
several runs, only the OOF rows every run has are blended. The sidecar says ``partial``, the missing folds and the
rows the CV covers (``cv_folds``, ``cv_rows`` of ``train_rows``). The blend is saved
in a blend folder, ``runs/<competition>/ensembles/<time>_<method>_<n>runs/`` (``write_ensemble``; its files are
listed in ``kit.run``'s docstring).

Example:
    >>> from kit.infer.ensemble import blend_and_submit, ensemble_runs, format_report
    >>> csv = blend_and_submit(["runs/pcam/A", "runs/pcam/B"], method="hill")  # doctest: +SKIP
    >>> result = ensemble_runs(["runs/pcam/A", "runs/pcam/B"], method="hill")  # doctest: +SKIP
    >>> print(format_report(result))  # doctest: +SKIP
    member           roc_auc  weight
    A                 0.9512   0.600
    B                 0.9471   0.400
    blend in-sample   0.9563   (hill: weights chosen on the rows scored, optimistic)
    blend             0.9541   (hill: each fold half blended with weights chosen on the other half)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from kit import paths
from kit.adapters.registry import get_adapter
from kit.config import FOLD_AVERAGES
from kit.errors import KitError
from kit.files import write_json
from kit.infer.hill_climb import cross_fit, hill_climb
from kit.infer.submission import Sidecar, SubmissionFormat, expected_ids_from_store, write_submission
from kit.ingest.store import open_store, read_labels, read_table
from kit.metrics import Metric, get_metric
from kit.run import BlendFolder, RunFolder, load_run_config, pred_matrix, target_values

__all__ = [
    "RunPredictions",
    "Member",
    "EnsembleResult",
    "METHODS",
    "load_run",
    "ensemble_runs",
    "average_folds",
    "rank_normalise",
    "write_ensemble",
    "format_report",
    "blend_and_submit",
]

METHODS = ("mean", "rank", "hill")


@dataclasses.dataclass
class RunPredictions:
    """One run's predictions, as ``load_run`` reads them (every Series is indexed by id)."""

    name: str
    path: Path
    folds: pd.DataFrame  # id, fold: all of folds.csv, in its order
    oof: np.ndarray  # OOF predictions (rows, outputs) of the rows ``oof_ids``, folds.csv order
    target: np.ndarray  # labels of the rows ``oof_ids``: class indices (rows,) or multi-hot (rows, classes)
    test_ids: pd.Index  # test_pred.csv (submission) order
    test: np.ndarray  # test predictions (rows, outputs), test_ids order
    columns: list[str]  # the prediction columns' names: ["pred"], or the class names
    metric: Metric
    competition: str | None = None
    tta: str | None = None  # TTA of the test predictions (predict.json); the submission's sidecar lists it
    missing_folds: list[int] = dataclasses.field(default_factory=list)  # not trained (``load_run(partial=True)``)

    @property
    def oof_ids(self) -> pd.Series:
        """The ids of the OOF rows: every train id, or (partial run) those of the finished folds; folds.csv order."""
        rows = ~self.folds["fold"].isin(self.missing_folds)
        return self.folds.loc[rows, "id"].reset_index(drop=True)

    @property
    def oof_score(self) -> float:
        """The metric on the OOF rows (a partial run's: its finished folds' rows only)."""
        return self.metric(self.target, self.oof)


@dataclasses.dataclass
class Member:
    name: str
    path: Path
    oof_score: float
    weight: float


@dataclasses.dataclass
class EnsembleResult:
    """A blend: its members (with their own OOF score), weights, blended OOF/test predictions and the blend's OOF
    score of ``metric``.

    ``oof_score`` scores ``oof`` (the CV, the sidecar's ``cv_score``); ``oof_score_in_sample`` scores ``weights`` on
    every OOF row. Only ``hill`` differs: its ``oof`` is cross-fitted over fold halves (``ensemble_runs``).
    """

    method: str
    members: list[Member]
    weights: dict[str, float]
    oof: pd.DataFrame  # id, target, then the prediction columns
    test: pd.DataFrame  # id, then the prediction columns
    oof_score: float
    metric: str = "roc_auc"
    history: list[dict] = dataclasses.field(default_factory=list)  # hill climbing: one entry per step
    oof_score_in_sample: float | None = None
    halves: list[dict] = dataclasses.field(default_factory=list)  # hill: per fold half, its folds and weights
    missing_folds: list[int] = dataclasses.field(default_factory=list)  # partial: folds some run has not trained
    train_rows: int | None = None  # rows of folds.csv; ``len(oof)`` of them are scored (fewer when partial)

    @property
    def partial(self) -> bool:
        return bool(self.missing_folds)

    @property
    def cv_rows(self) -> int:
        """The OOF rows the CV (``oof_score``) covers."""
        return len(self.oof)

    def partial_note(self) -> str:
        """One line saying which folds are missing and what the CV covers ("" for a complete blend)."""
        if not self.partial:
            return ""
        return (
            f"partial: fold(s) {self.missing_folds} not trained; the test predictions average the finished folds "
            f"and the CV {self.metric} covers only the finished folds' rows ({self.cv_rows} of {self.train_rows} "
            "train rows). Rerun `kit train` to finish the folds."
        )


def rank_normalise(pred) -> np.ndarray:
    """Ranks of ``pred`` scaled to [0, 1] (ties share their average rank); order-preserving, so AUC is unchanged."""
    pred = np.asarray(pred, dtype=np.float64)
    if pred.size <= 1:
        return np.full(pred.shape, 0.5)
    return (rankdata(pred) - 1.0) / (pred.size - 1.0)


def rank_columns(pred) -> np.ndarray:
    """Each column of a (rows, outputs) matrix rank-normalised (``rank_normalise``)."""
    pred = np.asarray(pred, dtype=np.float64)
    return np.column_stack([rank_normalise(column) for column in pred.T]) if pred.ndim == 2 else rank_normalise(pred)


def average_folds(test_matrix, method: str = "mean") -> np.ndarray:
    """Average fold predictions of shape (n_folds, n_test) or (n_folds, n_test, outputs) into one per test row.

    ``mean`` averages the probabilities; ``rank`` averages each fold's rank-normalised predictions (in [0, 1],
    per output column), which ignores differences in calibration between folds. Ranks are not probabilities, so
    ``rank`` is refused for a softmax (multiclass) head, whose rows must stay distributions.

    Example:
        >>> average_folds(np.array([[0.1, 0.9], [0.3, 0.7]])).round(3).tolist()
        [0.2, 0.8]
    """
    matrix = np.asarray(test_matrix, dtype=np.float64)
    if matrix.ndim not in (2, 3) or matrix.shape[0] == 0:
        raise KitError(
            f"expected fold predictions of shape (n_folds, n_test[, outputs]), got shape {matrix.shape}. "
            "Fix: stack one prediction array per fold."
        )
    if method not in FOLD_AVERAGES:
        raise KitError(
            f"unknown fold average {method!r}; known: {', '.join(FOLD_AVERAGES)}. Fix: --set predict.fold_average=mean."
        )
    if not np.isfinite(matrix).all():
        raise KitError("fold predictions contain NaN/inf. Fix: retrain the fold that produced them.")
    if method == "rank":
        _check_rankable(matrix)
        matrix = np.stack([rank_columns(fold) for fold in matrix])
    return matrix.mean(axis=0)


def _check_rankable(matrix: np.ndarray) -> None:
    rows = matrix.reshape(-1, matrix.shape[-1]) if matrix.ndim == 3 else None
    if rows is not None and matrix.shape[-1] > 1 and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3):
        raise KitError(
            "expected probabilities of a binary or multilabel head to rank, got softmax rows (each sums to 1): "
            "ranks would no longer be class probabilities. Fix: use mean (--method mean, predict.fold_average=mean)."
        )


def _missing_folds(run: RunFolder, folds: pd.DataFrame) -> list[int]:
    """The folds of folds.csv not trained yet (no ``fold{k}/done.json``); for a run folder without fold folders
    (copied without its models), metrics.json's ``missing_folds``."""
    every = sorted(int(f) for f in folds["fold"].unique())
    if any(run.fold(f).dir.is_dir() for f in every):
        return [f for f in every if not run.fold(f).is_done()]
    metrics = run.read_metrics()
    return sorted(int(f) for f in metrics.missing_folds) if metrics else []


def _refuse_incomplete(run: RunFolder, missing: list[int]) -> None:
    state = f"fold(s) {missing} not trained yet" if missing else f"no {run.oof_path.name} (written once every fold is)"
    raise KitError(
        f"expected a run with every fold trained ({run.oof_path.name} covers every train row only then), got "
        f"{state} in {run.path}. Fix: finish the folds with `kit train` (the same command resumes), or blend the "
        f"finished folds now with `kit ensemble {run.path} --partial` (its CV covers only their rows)."
    )


def _store_labels(run: RunFolder, ids: pd.Series) -> np.ndarray:
    """The train labels of ``ids`` from the run's store (a partial run has no oof.csv holding them)."""
    store = run.store()
    if store is None:
        raise KitError(
            f"expected env.json with the store in {run.path} (a partial run's labels are read from it), found "
            "none. Fix: rerun `kit train` for that run (finished folds are skipped)."
        )
    with open_store(store) as h5:
        labels, store_ids = read_labels(h5), pd.Index(read_table(h5, "train")["id"])
    index = store_ids.get_indexer(ids)
    if (index < 0).any():
        raise KitError(
            f"expected the store {store} to hold every train id of {run.folds_path}, got {int((index < 0).sum())} "
            f"missing. Fix: blend the run on the store it was trained on (env.json)."
        )
    return np.asarray(labels[index], np.int64)


def _partial_oof(run: RunFolder, folds: pd.DataFrame, missing: list[int], columns: list[str]):
    """(OOF predictions, labels) of the finished folds' validation rows, folds.csv order, from their
    ``valid_pred.npy`` (plain predictions of the best epoch, as oof.csv would hold them)."""
    finished = [f for f in sorted(int(f) for f in folds["fold"].unique()) if f not in missing]
    if not finished:
        raise KitError(
            f"expected at least one finished fold in {run.path}, got none (folds {missing} not trained). "
            "Fix: run `kit train` until a fold finishes."
        )
    covered = folds[folds["fold"].isin(finished)].reset_index(drop=True)
    oof = np.full((len(covered), len(columns)), np.nan)
    for f in finished:
        rows = covered["fold"].to_numpy() == f
        pred = np.asarray(run.fold(f).read_valid_pred(), np.float64)
        pred = pred.reshape(len(pred), -1)
        if pred.shape != (int(rows.sum()), len(columns)):
            raise KitError(
                f"expected {run.fold(f).valid_pred} to hold {int(rows.sum())} x {len(columns)} predictions (fold "
                f"{f} of folds.csv), got {pred.shape}. Fix: retrain fold {f} (delete its folder, rerun `kit train`)."
            )
        oof[rows] = pred
    return oof, _store_labels(run, covered["id"])


def load_run(run_dir, partial: bool = False) -> RunPredictions:
    """Read a finished run's folds, OOF and test predictions (``kit train`` then ``kit predict RUN``).

    The OOF predictions are the TTA ones when ``kit predict --oof`` made them (then they were made the same way
    as the test predictions), else the plain ones training wrote. Refuses a run with a fold trained again since
    ``kit predict`` ran (its test predictions, and TTA OOF rows, come from the old models), and a run with a fold
    not trained yet unless ``partial``: then the OOF rows are the finished folds' validation rows only (plain
    predictions; ``missing_folds`` lists the others) and the test predictions those ``kit predict`` averaged.
    """
    run = RunFolder(run_dir)
    if not run.path.is_dir():
        raise KitError(f"expected a run folder at {run.path}, found none. Fix: pass a folder made by `kit train`.")
    folds = run.read_folds()[["id", "fold"]]
    missing = _missing_folds(run, folds)
    if not partial and (missing or not run.oof_path.exists()):
        _refuse_incomplete(run, missing)
    record = run.read_predict_record()
    changed = record.changed_folds(run.fold_stamps()) if record is not None else []
    if changed:
        # Refused, not blended from oof.csv: test_pred.csv is stale too, so a fallback would still submit the old
        # models' test predictions; a competitor expects weights, CV and submission from the models just trained.
        stale = " and ".join(p.name for p in (run.test_pred_path, run.oof_tta_path) if p.exists())
        raise KitError(
            f"expected {stale or run.predict_path.name} of {run.path} made by its folds as they are now, got "
            f"predictions made before fold(s) {changed} were trained again (or removed). "
            f"Fix: run `kit predict {run.path} --oof`."
        )
    test = run.read_test_pred()
    columns = [c for c in test.columns if c != "id"]
    if missing:
        oof_matrix, target = _partial_oof(run, folds, missing, columns)
        oof_path = run.path / "fold*" / run.fold(0).valid_pred.name
    else:
        oof_matrix, target, oof_path = _complete_oof(run, folds, columns)
    for matrix, path in ((oof_matrix, oof_path), (pred_matrix(test), run.test_pred_path)):
        if not np.isfinite(matrix).all():
            raise KitError(
                f"{path} has NaN/inf predictions. Fix: finish the folds (`kit train`) and "
                f"rerun `kit predict {run.path}`."
            )
    competition = run.read_config().competition if run.config_path.exists() else None
    metrics = run.read_metrics()
    metric = metrics.metric if metrics else get_adapter(competition).metric
    return RunPredictions(
        name=run.name,
        path=run.path,
        folds=folds.reset_index(drop=True),
        oof=oof_matrix,
        target=target,
        test_ids=pd.Index(test["id"]),
        test=pred_matrix(test),
        columns=columns,
        metric=get_metric(metric),
        competition=competition,
        tta=record.tta if record else None,
        missing_folds=missing,
    )


def _complete_oof(run: RunFolder, folds: pd.DataFrame, columns: list[str]):
    """(OOF predictions, labels, the file read) of a run with every fold trained, folds.csv order."""
    plain = run.read_oof()
    oof, oof_path = run.read_oof_tta(), run.oof_tta_source()
    if oof is None:
        oof, oof_path = plain, run.oof_path
    if [c for c in oof.columns if c not in ("id", "fold", "target")] != columns:
        raise KitError(
            f"expected {oof_path} and {run.test_pred_path} to have the same prediction columns, got different "
            f"ones. Fix: rerun `kit predict {run.path} --oof`."
        )
    if set(oof["id"]) != set(folds["id"]):
        missing = sorted(set(folds["id"]) - set(oof["id"]))
        raise KitError(
            f"{oof_path} does not cover the ids of folds.csv ({len(missing)} missing, e.g. "
            f"{missing[:5]}). Fix: finish every fold with `kit train` (same command resumes)."
        )
    oof = oof.set_index("id").loc[folds["id"]]
    if (oof["fold"].to_numpy() != folds["fold"].to_numpy()).any():
        raise KitError(f"{oof_path} and folds.csv disagree on the fold of some ids. Fix: rerun `kit train`.")
    return pred_matrix(oof), target_values(oof), oof_path


def _only(a, b) -> str:
    """How two id sets differ, for an error message."""
    first, second = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    return f"{len(first)} only in the first, e.g. {first[:5]}; {len(second)} only in the second, e.g. {second[:5]}"


def _check_compatible(runs: list[RunPredictions]) -> None:
    # Same folds.csv (ids and fold per id) in every run: OOF predictions of different splits cannot be compared,
    # and hill climbing's fold halves (kit.infer.hill_climb.cross_fit) must hold out the same rows for every member.
    first = runs[0]
    base = first.folds.set_index("id")["fold"]
    same = "OOF predictions of different splits cannot be blended honestly"
    for run in runs[1:]:
        other = run.folds.set_index("id")["fold"]
        if set(base.index) != set(other.index):
            raise KitError(
                f"expected runs {first.name} and {run.name} to share folds.csv, got different train ids "
                f"({_only(base.index, other.index)}): {same}. Fix: train both on the same store with the same folds "
                "(same --set folds.seed= and folds.k, or copy folds.csv into the new run)."
            )
        moved = base.index[base.to_numpy() != other.loc[base.index].to_numpy()]
        if len(moved):
            raise KitError(
                f"expected runs {first.name} and {run.name} to share folds.csv, got different fold assignments "
                f"({len(moved)} ids in another fold, e.g. {list(moved[:5])}): {same}. "
                "Fix: retrain with the same folds (same --set folds.seed= and folds.k, or copy folds.csv)."
            )
        if first.columns != run.columns or first.metric.name != run.metric.name:
            raise KitError(
                f"expected runs {first.name} and {run.name} to predict the same classes, scored by the same metric, "
                f"got {first.columns} ({first.metric.name}) and {run.columns} ({run.metric.name}). Fix: blend runs "
                "of one competition's store."
            )
        common = first.oof_ids[first.oof_ids.isin(set(run.oof_ids))]
        mine = first.target[pd.Index(first.oof_ids).get_indexer(common)]
        if (mine != run.target[pd.Index(run.oof_ids).get_indexer(common)]).any():
            raise KitError(
                f"expected runs {first.name} and {run.name} to agree on the train labels, got different labels for "
                "some ids. Fix: train both on the same store."
            )
        if set(first.test_ids) != set(run.test_ids):
            raise KitError(
                f"expected runs {first.name} and {run.name} to predict the same test ids, got different test ids "
                f"({_only(first.test_ids, run.test_ids)}). Fix: rerun `kit predict RUN` on both, same store."
            )


def _member_names(runs: list[RunPredictions]) -> list[str]:
    names = [r.name for r in runs]
    if len(set(names)) < len(names):  # same folder name under different parents: use the paths
        names = [str(r.path) for r in runs]
    return names


def _aligned(run: RunPredictions, ids: pd.Series, test_ids: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """The run's OOF rows in ``ids`` order and test rows in ``test_ids`` order."""
    return run.oof[pd.Index(run.oof_ids).get_indexer(ids)], run.test[run.test_ids.get_indexer(test_ids)]


def _shared_rows(runs: list[RunPredictions]) -> pd.Series:
    """The OOF ids every run has (all train ids unless a run is partial), in the first run's folds.csv order."""
    first = runs[0].oof_ids
    shared = set(first).intersection(*(set(r.oof_ids) for r in runs[1:]))
    if not shared:
        finished = {r.name: sorted(set(r.folds["fold"]) - set(r.missing_folds)) for r in runs}
        raise KitError(
            f"expected OOF rows that every run has, got none: the runs' finished folds do not overlap ({finished}). "
            "Fix: finish a common fold in each run with `kit train --folds K`, or blend them separately."
        )
    return first[first.isin(shared)].reset_index(drop=True)


def ensemble_runs(run_dirs, method: str = "mean", hill_iterations: int = 50, partial: bool = False) -> EnsembleResult:
    """Blend runs sharing the same folds; weights come from ``method`` (``hill`` optimises the OOF score of the runs'
    metric, in its direction).

    ``mean`` averages probabilities; ``rank`` averages per-run rank-normalised predictions (in [0, 1], per class
    column; not for softmax heads); neither fits anything, so the blend's OOF score is already honest. ``hill`` is
    Caruana's greedy forward selection with replacement from the best single run (weights = selection counts /
    total), climbed on all OOF rows for the test blend; its reported CV (``oof_score``) is the score of the pooled
    held-out predictions of 2-way cross-fitting: weights climbed on half of the folds blend the other half's rows,
    and the reverse. One run gives back its own predictions.

    ``partial`` (``load_run``): runs with folds not trained yet are blended on the OOF rows every run has (the
    finished folds' rows), which is all the CV and the members' scores cover (``missing_folds``, ``cv_rows``).

    Example: ``ensemble_runs(["runs/pcam/A", "runs/pcam/B"], "hill").oof_score`` (and ``.oof_score_in_sample``).
    """
    if method not in METHODS:
        raise KitError(f"unknown ensemble method {method!r}; known: {', '.join(METHODS)}. Fix: --method mean.")
    if hill_iterations < 1:
        raise KitError(f"expected hill_iterations >= 1, got {hill_iterations}. Fix: leave it at its default, 50.")
    runs = [r if isinstance(r, RunPredictions) else load_run(r, partial=partial) for r in run_dirs]
    if not runs:
        raise KitError("expected at least one run folder to blend, got none. Fix: kit ensemble RUN_DIR [RUN_DIR ...].")
    resolved = [r.path.resolve() for r in runs]
    if len(set(resolved)) < len(resolved):
        twice = sorted({str(p) for p in resolved if resolved.count(p) > 1})
        raise KitError(f"the same run was passed more than once: {twice}. Fix: list each run once.")
    _check_compatible(runs)
    names = _member_names(runs)
    first, metric = runs[0], runs[0].metric
    ids, test_ids = _shared_rows(runs), first.test_ids
    target = first.target[pd.Index(first.oof_ids).get_indexer(ids)]
    oof, test = (np.stack(parts) for parts in zip(*(_aligned(r, ids, test_ids) for r in runs)))
    member_scores = [metric(target, pred) for pred in oof]  # on the rows blended (a partial run's: its finished)
    history, halves, weights = [], [], np.full(len(runs), 1.0 / len(runs))  # one run: its own predictions
    if method == "rank" and len(runs) > 1:
        _check_rankable(oof)
        oof, test = np.stack([rank_columns(p) for p in oof]), np.stack([rank_columns(p) for p in test])
    hill = method == "hill" and len(runs) > 1
    if hill:
        fit = hill_climb(target, oof, metric, hill_iterations, names, metric.higher_is_better)
        weights, history = fit.weights, fit.history
    oof_blend, test_blend = np.tensordot(weights, oof, axes=1), np.tensordot(weights, test, axes=1)
    in_sample = metric(target, oof_blend)
    if hill:
        # The saved OOF blend is the cross-fitted one, so no row is blended by weights chosen with its own label.
        folds = first.folds.set_index("id")["fold"].loc[ids].to_numpy()
        crossed = cross_fit(target, oof, folds, metric, hill_iterations, names, metric.higher_is_better)
        oof_blend, halves = crossed.pred, crossed.halves
    members = [Member(n, r.path, s, float(w)) for n, r, s, w in zip(names, runs, member_scores, weights)]
    columns = first.columns
    target_column = target if target.ndim == 1 else [" ".join(map(str, row)) for row in target]
    return EnsembleResult(
        method=method,
        members=members,
        weights={m.name: m.weight for m in members},
        oof=pd.DataFrame({"id": ids.to_numpy(), "target": target_column, **dict(zip(columns, oof_blend.T))}),
        test=pd.DataFrame({"id": test_ids.to_numpy(), **dict(zip(columns, test_blend.T))}),
        oof_score=metric(target, oof_blend),
        metric=metric.name,
        history=history,
        oof_score_in_sample=in_sample,
        halves=halves,
        missing_folds=sorted(set().union(*(r.missing_folds for r in runs))),
        train_rows=len(first.folds),
    )


def write_ensemble(result: EnsembleResult, out_dir) -> dict[str, Path]:
    """Write the blend folder ``out_dir`` (``kit.run.BlendFolder``); return its files' paths by name (``weights``,
    ``members``, ``oof``, ``test_pred``)."""
    blend = BlendFolder(out_dir)
    blend.path.mkdir(parents=True, exist_ok=True)
    files = {"weights": blend.weights, "members": blend.members, "oof": blend.oof, "test_pred": blend.test_pred}
    record = {key: getattr(result, key) for key in ("method", "metric", "oof_score", "oof_score_in_sample", "weights")}
    record["members"] = [{"name": m.name, "path": str(m.path), "oof_score": m.oof_score} for m in result.members]
    record |= {"history": result.history, "halves": result.halves}
    if result.partial:
        record |= {"partial": True, "missing_folds": result.missing_folds, "cv_rows": result.cv_rows}
    write_json(files["weights"], record)
    pd.DataFrame(
        [{"name": m.name, "path": str(m.path), "oof_score": m.oof_score, "weight": m.weight} for m in result.members]
    ).to_csv(files["members"], index=False)
    result.oof.to_csv(files["oof"], index=False)
    result.test.to_csv(files["test_pred"], index=False)
    return files


def format_report(result: EnsembleResult) -> str:
    """A small table: each member's OOF score and weight, then the blend's OOF score (a hill blend's in-sample one
    too, so the optimism of scoring weights on the rows they were chosen on shows)."""
    rows = [(m.name, m.oof_score, f"{m.weight:6.3f}") for m in result.members]
    if result.halves:
        rows.append(
            ("blend in-sample", result.oof_score_in_sample, "(hill: weights chosen on the rows scored, optimistic)")
        )
        rows.append(("blend", result.oof_score, "(hill: each fold half blended with weights chosen on the other half)"))
    else:
        rows.append(("blend", result.oof_score, f"({result.method})"))
    width = max(len(name) for name, _, _ in [("member", 0, "")] + rows)
    head = f"{'member':<{width}}  {result.metric:>7}  weight"
    return "\n".join([head] + [f"{n:<{width}}  {a:7.4f}  {w}" for n, a, w in rows])


def blend_and_submit(
    run_dirs,
    method: str = "mean",
    out_dir=None,
    name: str | None = None,
    verbose: bool = True,
    partial: bool = False,
) -> Path:
    """Blend ``run_dirs`` (``ensemble_runs``), save the blend, and write the submission; return the CSV path.

    The CSV goes to ``<out_dir or submissions/>/<competition>/<time>_<name>.csv``. When the same runs blended
    the same way already gave a byte-identical submission, that file is returned and nothing new is written.
    ``partial`` blends runs whose budget ran out from their finished folds (``load_run``); such a submission's
    name ends in ``-partial`` and its sidecar says ``partial``, the missing folds and the rows the CV covers
    (``kit submit`` puts that in the ledger row's message). ``kit.notebook.run`` submits through here too.
    """
    runs = [Path(r) for r in run_dirs]
    configs = [load_run_config(r) for r in runs]
    competitions = {c.competition for c in configs}
    if len(competitions) != 1:
        raise KitError(f"expected runs of one competition, got {sorted(competitions)}. Fix: blend each separately.")
    competition = competitions.pop()
    adapter = get_adapter(competition)
    store = RunFolder(runs[0]).store()
    if store is None:
        raise KitError(
            f"expected env.json with the store in {runs[0]}, found none (the submission's ids are checked against "
            f"the store's test split). Fix: rerun `kit train` for that run (finished folds are skipped)."
        )
    loaded = [load_run(r, partial=partial) for r in runs]
    result = ensemble_runs(loaded, method=method)
    name = name or "+".join(r.name.split("_", 1)[-1] for r in runs) + ("-partial" if result.partial else "")
    blend = BlendFolder.new(runs[0].parent, method, len(runs))
    if verbose:
        print(format_report(result))
        if result.partial:
            print(result.partial_note())
    extra = {"metric": result.metric}
    if result.partial:
        finished = sorted(set(loaded[0].folds["fold"].astype(int)) - set(result.missing_folds))
        extra |= {
            "partial": True,
            "missing_folds": result.missing_folds,
            "cv_folds": finished,
            "cv_rows": result.cv_rows,
            "train_rows": result.train_rows,
        }
    sidecar = Sidecar(
        competition=competition,
        runs=tuple(str(r) for r in runs),
        method=method,
        weights=result.weights,
        cv_score=result.oof_score,
        member_cv={m.name: m.oof_score for m in result.members},
        tta=sorted({r.tta or "none" for r in loaded}),
        blend_dir=str(blend.path),
        extra=extra,
    )
    out_dir = Path(out_dir or paths.submissions_dir())
    earlier = set((out_dir / competition).glob("*.csv"))
    csv = write_submission(
        competition,
        result.test["id"].tolist(),
        pred_matrix(result.test),
        name,
        expected_ids=expected_ids_from_store(store, adapter),
        fmt=SubmissionFormat.from_adapter(adapter),
        sidecar=sidecar,
        out_dir=out_dir,
        reuse_identical=True,
    )
    written = csv not in earlier
    if written:
        write_ensemble(result, blend.path)
    if verbose:
        state = "submission" if written else "identical submission already written, kept"
        optimism = f", in-sample {result.oof_score_in_sample:.4f}" if result.halves else ""
        cv = f"CV {result.metric} {result.oof_score:.4f}{optimism}"
        if result.partial:
            cv += f" on {result.cv_rows} of {result.train_rows} rows, folds {result.missing_folds} missing"
        print(f"{state}: {csv}  ({cv}, {method} of {len(runs)} run(s))")
    return csv
