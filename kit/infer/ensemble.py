"""The last step of the pipeline: blend finished runs (mean, rank mean, or Caruana hill climbing on the OOF score of
the competition's metric, ``kit.infer.hill_climb``) and write the submission CSV with its sidecar
(``blend_and_submit``). Predictions are (rows, outputs) matrices: one column for a binary run, one per class else.

Runs are read by ``kit.infer.run_predictions.load_run`` (when they are blendable is said there), and blended only
when they share the same folds (same ids, same fold per id): OOF predictions of different splits cannot be compared
or weighted honestly.

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

from kit import paths
from kit.adapters.registry import get_adapter
from kit.errors import KitError
from kit.files import write_json
from kit.infer.fold_average import rank_columns
from kit.infer.hill_climb import cross_fit, hill_climb
from kit.infer.run_predictions import RunPredictions, load_run
from kit.infer.sidecar import Sidecar
from kit.infer.submission import expected_ids_from_store, write_submission
from kit.infer.submission_format import SubmissionFormat
from kit.run import BlendFolder, RunFolder, load_run_config, pred_columns, pred_matrix

__all__ = ["Member", "EnsembleResult", "METHODS", "ensemble_runs", "write_ensemble", "format_report"]
__all__ += ["blend_and_submit"]

METHODS = ("mean", "rank", "hill")


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
        if first.competition:
            get_adapter(first.competition).check_rank_average("--method rank")
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
    expected = pred_columns(adapter.class_names, adapter.n_outputs)
    if loaded[0].columns != expected:
        raise KitError(
            f"expected predictions of {competition}'s classes {expected[:12]} in this order, got columns "
            f"{loaded[0].columns[:12]} in {loaded[0].path}. Fix: predict the run again on its competition's store "
            f"(`kit predict {loaded[0].path} --force`), or retrain it if the adapter's classes changed."
        )
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
