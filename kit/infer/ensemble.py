"""The last step of the pipeline: blend finished runs (mean, rank mean, or Caruana hill climbing on the OOF ROC
AUC, ``kit.infer.hill_climb``) and write the submission CSV with its sidecar (``blend_and_submit``).

A run is blendable once ``kit train`` wrote ``folds.csv`` and ``oof.csv`` and ``kit predict RUN`` wrote
``test_pred.csv`` with the folds as they are now. Runs are blended only when they share the same folds (same ids,
same fold per id): OOF predictions of different splits cannot be compared or weighted honestly. The blend is saved
in a blend folder, ``runs/<competition>/ensembles/<time>_<method>_<n>runs/`` (``write_ensemble``; its files are
listed in ``kit.run``'s docstring).

Example:
    >>> from kit.infer.ensemble import blend_and_submit, ensemble_runs, format_report
    >>> csv = blend_and_submit(["runs/pcam/A", "runs/pcam/B"], method="hill")  # doctest: +SKIP
    >>> result = ensemble_runs(["runs/pcam/A", "runs/pcam/B"], method="hill")  # doctest: +SKIP
    >>> print(format_report(result))  # doctest: +SKIP
    member           OOF AUC  weight
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
from kit.infer.submission import Sidecar, expected_ids_from_store, write_submission
from kit.run import BlendFolder, RunFolder, load_run_config

__all__ = [
    "RunPredictions",
    "Member",
    "EnsembleResult",
    "METHODS",
    "load_run",
    "ensemble_runs",
    "average_folds",
    "rank_normalise",
    "roc_auc",
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
    folds: pd.DataFrame  # id, fold (folds.csv order)
    oof: pd.Series  # OOF prediction per train id, folds.csv order
    target: pd.Series  # label per train id, folds.csv order
    test: pd.Series  # test prediction per test id, test_pred.csv (submission) order
    competition: str | None = None
    tta: str | None = None  # TTA of the test predictions (predict.json); the submission's sidecar lists it

    @property
    def oof_auc(self) -> float:
        return roc_auc(self.target.to_numpy(), self.oof.to_numpy())


@dataclasses.dataclass
class Member:
    name: str
    path: Path
    oof_auc: float
    weight: float


@dataclasses.dataclass
class EnsembleResult:
    """A blend: its members (with their own OOF AUC), weights, blended OOF/test predictions and blend OOF AUC.

    ``oof_auc`` scores ``oof`` (the CV, the sidecar's ``cv_score``); ``oof_auc_in_sample`` scores ``weights`` on
    every OOF row. Only ``hill`` differs: its ``oof`` is cross-fitted over fold halves (``ensemble_runs``).
    """

    method: str
    members: list[Member]
    weights: dict[str, float]
    oof: pd.DataFrame  # id, target, pred
    test: pd.DataFrame  # id, pred
    oof_auc: float
    history: list[dict] = dataclasses.field(default_factory=list)  # hill climbing: one entry per step
    oof_auc_in_sample: float | None = None
    halves: list[dict] = dataclasses.field(default_factory=list)  # hill: per fold half, its folds and weights


def roc_auc(target, pred) -> float:
    """ROC AUC by the Mann-Whitney rank formula (ties count half; equals sklearn's ``roc_auc_score``)."""
    y = np.asarray(target).astype(bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise KitError(
            f"expected OOF targets of both classes to score ROC AUC, got {n_pos} positive and {n_neg} "
            "negative rows. Fix: check the run's oof.csv target column."
        )
    ranks = rankdata(np.asarray(pred, dtype=np.float64))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def rank_normalise(pred) -> np.ndarray:
    """Ranks of ``pred`` scaled to [0, 1] (ties share their average rank); order-preserving, so AUC is unchanged."""
    pred = np.asarray(pred, dtype=np.float64)
    if pred.size <= 1:
        return np.full(pred.shape, 0.5)
    return (rankdata(pred) - 1.0) / (pred.size - 1.0)


def average_folds(test_matrix, method: str = "mean") -> np.ndarray:
    """Average fold predictions of shape (n_folds, n_test) into one prediction per test row.

    ``mean`` averages the probabilities; ``rank`` averages each fold's rank-normalised predictions (in [0, 1]),
    which ignores differences in calibration between folds.

    Example:
        >>> average_folds(np.array([[0.1, 0.9], [0.3, 0.7]])).round(3).tolist()
        [0.2, 0.8]
    """
    matrix = np.asarray(test_matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise KitError(
            f"expected fold predictions of shape (n_folds, n_test), got shape {matrix.shape}. "
            "Fix: stack one 1-D prediction array per fold."
        )
    if method not in FOLD_AVERAGES:
        raise KitError(
            f"unknown fold average {method!r}; known: {', '.join(FOLD_AVERAGES)}. Fix: --set predict.fold_average=mean."
        )
    if not np.isfinite(matrix).all():
        raise KitError("fold predictions contain NaN/inf. Fix: retrain the fold that produced them.")
    if method == "rank":
        matrix = np.stack([rank_normalise(row) for row in matrix])
    return matrix.mean(axis=0)


def load_run(run_dir) -> RunPredictions:
    """Read a finished run's folds, OOF and test predictions (``kit train`` then ``kit predict RUN``).

    The OOF predictions are the TTA ones when ``kit predict --oof`` made them (then they were made the same way
    as the test predictions), else the plain ones training wrote. Refuses a run with a fold trained again since
    ``kit predict`` ran (its test predictions, and TTA OOF rows, come from the old models).
    """
    run = RunFolder(run_dir)
    if not run.path.is_dir():
        raise KitError(f"expected a run folder at {run.path}, found none. Fix: pass a folder made by `kit train`.")
    folds = run.read_folds()[["id", "fold"]]
    plain = run.read_oof()
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
    oof, oof_path = run.read_oof_tta(), run.oof_tta_source()
    if oof is None:
        oof, oof_path = plain, run.oof_path
    test = run.read_test_pred()
    if set(oof["id"]) != set(folds["id"]):
        missing = sorted(set(folds["id"]) - set(oof["id"]))
        raise KitError(
            f"{oof_path} does not cover the ids of folds.csv ({len(missing)} missing, e.g. "
            f"{missing[:5]}). Fix: finish every fold with `kit train` (same command resumes)."
        )
    oof = oof.set_index("id").loc[folds["id"]]
    if (oof["fold"].to_numpy() != folds["fold"].to_numpy()).any():
        raise KitError(f"{oof_path} and folds.csv disagree on the fold of some ids. Fix: rerun `kit train`.")
    for frame, path in ((oof, oof_path), (test, run.test_pred_path)):
        if not np.isfinite(frame["pred"].to_numpy(dtype=np.float64)).all():
            raise KitError(
                f"{path} has NaN/inf predictions. Fix: finish the folds (`kit train`) and "
                f"rerun `kit predict {run.path}`."
            )
    competition = run.read_config().competition if run.config_path.exists() else None
    return RunPredictions(
        name=run.name,
        path=run.path,
        folds=folds.reset_index(drop=True),
        oof=oof["pred"].astype(np.float64).rename("pred"),
        target=oof["target"].rename("target"),
        test=test.set_index("id")["pred"].astype(np.float64),
        competition=competition,
        tta=record.tta if record else None,
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
        if (first.target.to_numpy() != run.target.loc[first.target.index].to_numpy()).any():
            raise KitError(
                f"expected runs {first.name} and {run.name} to agree on the train labels, got different labels for "
                "some ids. Fix: train both on the same store."
            )
        if set(first.test.index) != set(run.test.index):
            raise KitError(
                f"expected runs {first.name} and {run.name} to predict the same test ids, got different test ids "
                f"({_only(first.test.index, run.test.index)}). Fix: rerun `kit predict RUN` on both, same store."
            )


def _member_names(runs: list[RunPredictions]) -> list[str]:
    names = [r.name for r in runs]
    if len(set(names)) < len(names):  # same folder name under different parents: use the paths
        names = [str(r.path) for r in runs]
    return names


def ensemble_runs(run_dirs, method: str = "mean", hill_iterations: int = 50) -> EnsembleResult:
    """Blend runs sharing the same folds; weights come from ``method`` (``hill`` maximises the OOF ROC AUC).

    ``mean`` averages probabilities; ``rank`` averages per-run rank-normalised predictions (in [0, 1]); neither
    fits anything, so the blend's OOF AUC is already honest. ``hill`` is Caruana's greedy forward selection with
    replacement from the best single run (weights = selection counts / total), climbed on all OOF rows for the
    test blend; its reported CV (``oof_auc``) is the ROC AUC of the pooled held-out predictions of 2-way
    cross-fitting: weights climbed on half of the folds blend the other half's rows, and the reverse.
    One run gives back its own predictions.

    Example: ``ensemble_runs(["runs/pcam/A", "runs/pcam/B"], "hill").oof_auc`` (and ``.oof_auc_in_sample``).
    """
    if method not in METHODS:
        raise KitError(f"unknown ensemble method {method!r}; known: {', '.join(METHODS)}. Fix: --method mean.")
    if hill_iterations < 1:
        raise KitError(f"expected hill_iterations >= 1, got {hill_iterations}. Fix: leave it at its default, 50.")
    runs = [r if isinstance(r, RunPredictions) else load_run(r) for r in run_dirs]
    if not runs:
        raise KitError("expected at least one run folder to blend, got none. Fix: kit ensemble RUN_DIR [RUN_DIR ...].")
    resolved = [r.path.resolve() for r in runs]
    if len(set(resolved)) < len(resolved):
        twice = sorted({str(p) for p in resolved if resolved.count(p) > 1})
        raise KitError(f"the same run was passed more than once: {twice}. Fix: list each run once.")
    _check_compatible(runs)
    names = _member_names(runs)
    ids, test_ids = runs[0].folds["id"], runs[0].test.index
    target = runs[0].target.to_numpy()
    oof = np.stack([r.oof.loc[ids].to_numpy() for r in runs])
    test = np.stack([r.test.loc[test_ids].to_numpy() for r in runs])
    history, halves, weights = [], [], np.full(len(runs), 1.0 / len(runs))  # one run: its own predictions
    if method == "rank" and len(runs) > 1:
        oof, test = np.stack([rank_normalise(p) for p in oof]), np.stack([rank_normalise(p) for p in test])
    if method == "hill" and len(runs) > 1:
        fit = hill_climb(target, oof, roc_auc, hill_iterations, names)
        weights, history = fit.weights, fit.history
    oof_blend, test_blend = weights @ oof, weights @ test
    in_sample = roc_auc(target, oof_blend)
    if method == "hill" and len(runs) > 1:
        # The saved OOF blend is the cross-fitted one, so no row is blended by weights chosen with its own label.
        crossed = cross_fit(target, oof, runs[0].folds["fold"].to_numpy(), roc_auc, hill_iterations, names)
        oof_blend, halves = crossed.pred, crossed.halves
    members = [Member(name, run.path, run.oof_auc, float(w)) for name, run, w in zip(names, runs, weights)]
    return EnsembleResult(
        method=method,
        members=members,
        weights={m.name: m.weight for m in members},
        oof=pd.DataFrame({"id": ids.to_numpy(), "target": target, "pred": oof_blend}),
        test=pd.DataFrame({"id": test_ids.to_numpy(), "pred": test_blend}),
        oof_auc=roc_auc(target, oof_blend),
        history=history,
        oof_auc_in_sample=in_sample,
        halves=halves,
    )


def write_ensemble(result: EnsembleResult, out_dir) -> dict[str, Path]:
    """Write the blend folder ``out_dir`` (``kit.run.BlendFolder``); return its files' paths by name (``weights``,
    ``members``, ``oof``, ``test_pred``)."""
    blend = BlendFolder(out_dir)
    blend.path.mkdir(parents=True, exist_ok=True)
    files = {"weights": blend.weights, "members": blend.members, "oof": blend.oof, "test_pred": blend.test_pred}
    record = {key: getattr(result, key) for key in ("method", "oof_auc", "oof_auc_in_sample", "weights")}
    record["members"] = [{"name": m.name, "path": str(m.path), "oof_auc": m.oof_auc} for m in result.members]
    record |= {"history": result.history, "halves": result.halves}
    write_json(files["weights"], record)
    pd.DataFrame(
        [{"name": m.name, "path": str(m.path), "oof_auc": m.oof_auc, "weight": m.weight} for m in result.members]
    ).to_csv(files["members"], index=False)
    result.oof.to_csv(files["oof"], index=False)
    result.test.to_csv(files["test_pred"], index=False)
    return files


def format_report(result: EnsembleResult) -> str:
    """A small table: each member's OOF AUC and weight, then the blend's OOF AUC (a hill blend's in-sample one
    too, so the optimism of scoring weights on the rows they were chosen on shows)."""
    rows = [(m.name, m.oof_auc, f"{m.weight:6.3f}") for m in result.members]
    if result.halves:
        rows.append(
            ("blend in-sample", result.oof_auc_in_sample, "(hill: weights chosen on the rows scored, optimistic)")
        )
        rows.append(("blend", result.oof_auc, "(hill: each fold half blended with weights chosen on the other half)"))
    else:
        rows.append(("blend", result.oof_auc, f"({result.method})"))
    width = max(len(name) for name, _, _ in [("member", 0, "")] + rows)
    return "\n".join([f"{'member':<{width}}  OOF AUC  weight"] + [f"{n:<{width}}  {a:7.4f}  {w}" for n, a, w in rows])


def blend_and_submit(
    run_dirs, method: str = "mean", out_dir=None, name: str | None = None, verbose: bool = True
) -> Path:
    """Blend ``run_dirs`` (``ensemble_runs``), save the blend, and write the submission; return the CSV path.

    The CSV goes to ``<out_dir or submissions/>/<competition>/<time>_<name>.csv``. When the same runs blended
    the same way already gave a byte-identical submission, that file is returned and nothing new is written.
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
    loaded = [load_run(r) for r in runs]
    result = ensemble_runs(loaded, method=method)
    name = name or "+".join(r.name.split("_", 1)[-1] for r in runs)
    blend = BlendFolder.new(runs[0].parent, method, len(runs))
    if verbose:
        print(format_report(result))
    sidecar = Sidecar(
        competition=competition,
        runs=tuple(str(r) for r in runs),
        method=method,
        weights=result.weights,
        cv_score=result.oof_auc,
        member_cv={m.name: m.oof_auc for m in result.members},
        tta=sorted({r.tta or "none" for r in loaded}),
        blend_dir=str(blend.path),
    )
    out_dir = Path(out_dir or paths.submissions_dir())
    earlier = set((out_dir / competition).glob("*.csv"))
    csv = write_submission(
        competition,
        result.test["id"].tolist(),
        result.test["pred"].to_numpy(),
        name,
        expected_ids=expected_ids_from_store(store),
        id_column=adapter.id_column,
        label_column=adapter.label_column,
        sidecar=sidecar,
        out_dir=out_dir,
        reuse_identical=True,
    )
    written = csv not in earlier
    if written:
        write_ensemble(result, blend.path)
    if verbose:
        state = "submission" if written else "identical submission already written, kept"
        optimism = f", in-sample {result.oof_auc_in_sample:.4f}" if result.halves else ""
        print(f"{state}: {csv}  (CV {result.oof_auc:.4f}{optimism}, {method} of {len(runs)} run(s))")
    return csv
