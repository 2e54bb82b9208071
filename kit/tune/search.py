"""``kit tune``: a keras_tuner search whose every trial is an ordinary kit run folder.

``KitTuner`` is a ``keras_tuner.Tuner`` that overrides ``run_trial`` (keras_tuner's documented way to tune a
training it does not drive itself): a trial's values become ``--set`` overrides on top of the base configuration,
``kit.train.loop.train`` trains the chosen folds (default fold 0) into ``<search folder>/trial_<id>/``, and the
objective is the mean of those folds' scores by the competition's metric, maximised or minimised as the metric
says. Hyperband's epoch budget per trial becomes ``train.epochs``.

The search folder (default ``runs/<competition>/tune/<space file name>/``) holds keras_tuner's project
(``keras_tuner/``: the oracle's state and one ``trial.json`` per trial), the trial run folders, ``search.json``
(what the search is: competition, space, base configuration, folds), ``trials.csv`` and ``best.toml`` (the best
trial's resolved configuration: ``kit train COMPETITION --config best.toml`` trains it on every fold).

Rerunning the same command resumes: keras_tuner reloads its project (``overwrite=False``), finished trials count
towards ``max_trials``, and a trial that was killed midway is handed out again under the same id, so kit's own
resume points continue its run folder. ``max_minutes`` bounds this call: each trial gets an equal share of what
is left for the trials still to run, and no trial starts once it is spent.

Several machines share one search through keras_tuner's distributed mode: the same command on each, with
``KERASTUNER_TUNER_ID`` (``chief`` on one, ``tuner0``, ``tuner1``, ... on the others), ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT`` (the chief's address) set. The chief runs the oracle (a gRPC server) and trains nothing;
the workers train trials and report their scores to it; the chief writes ``trials.csv`` and ``best.toml`` when
every worker is done.

Example:
    >>> from kit.tune.search import tune
    >>> result = tune("pcam", "space.toml", max_trials=10, max_minutes=60)  # doctest: +SKIP
    >>> result.best_score, result.best_toml  # doctest: +SKIP
    (0.941, PosixPath('runs/pcam/tune/space/best.toml'))
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import time
from pathlib import Path

import keras_tuner

from kit import paths
from kit.adapters.registry import get_adapter
from kit.config import identity, resolve_config
from kit.errors import KitError
from kit.files import atomic_write
from kit.metrics import get_metric
from kit.tomlfile import dump_toml
from kit.train.folds import parse_folds
from kit.train.loop import format_table, train
from kit.tune.space import Space, load_space, parse_space, plain_value

__all__ = ["tune", "TuneResult", "KitTuner", "make_oracle", "objective_for", "search_dir_for"]

_ORACLES = {
    "random": keras_tuner.oracles.RandomSearchOracle,
    "bayesian": keras_tuner.oracles.BayesianOptimizationOracle,
    "hyperband": keras_tuner.oracles.HyperbandOracle,
}
_STATUS = keras_tuner.engine.trial.TrialStatus
PROJECT = "keras_tuner"  # keras_tuner's project folder inside the search folder


@dataclasses.dataclass(frozen=True)
class TuneResult:
    """What a search call leaves: the search folder and its files, every trial so far (``trials``: one dict per
    trial, the trials table's rows), the trials this call ran, and the best trial (None on a worker or before any
    trial finished)."""

    search_dir: Path
    metric: str
    direction: str
    trials: list[dict]
    ran: list[str]
    best_trial: str | None
    best_score: float | None
    best_values: dict | None
    best_toml: Path | None
    table_csv: Path | None


def objective_for(competition: str) -> keras_tuner.Objective:
    """The search objective: the competition's metric, "max" or "min" as the metric says.

    Example:
        >>> objective_for("pcam").direction
        'max'
    """
    metric = get_metric(get_adapter(competition).metric)
    return keras_tuner.Objective(metric.name, "max" if metric.higher_is_better else "min")


def search_dir_for(competition: str, name: str) -> Path:
    """Where a search named ``name`` lives by default: ``runs/<competition>/tune/<name>``."""
    return paths.runs_dir() / get_adapter(competition).name / "tune" / name


class _Budget:
    """Mixed into an oracle: once ``deadline`` (wall-clock seconds) has passed, it hands out no new trial.

    A trial handed back for a retry (one that was running when the search was killed) still runs."""

    deadline: float | None = None

    def populate_space(self, trial_id):
        if self.deadline is not None and time.time() >= self.deadline:
            return {"status": _STATUS.STOPPED, "values": None}
        return super().populate_space(trial_id)


def make_oracle(space: Space, objective, max_trials: int | None, deadline: float | None, epochs: int):
    """The oracle the space chooses, with the space's keys, ``max_trials`` and the time budget ``deadline``."""
    base = _ORACLES[space.oracle]
    cls = type(f"Budget{base.__name__}", (_Budget, base), {})
    kwargs = dict(
        objective=objective,
        hyperparameters=space.hyperparameters(),
        seed=space.options.get("seed", 0),
        allow_new_entries=False,
        tune_new_entries=False,
    )
    if space.oracle == "hyperband":
        kwargs.update(
            max_epochs=space.options.get("max_epochs", epochs),
            factor=space.options.get("factor", 3),
            hyperband_iterations=space.options.get("hyperband_iterations", 1),
        )
    else:
        kwargs["max_trials"] = max_trials
    if space.oracle == "bayesian" and "num_initial_points" in space.options:
        kwargs["num_initial_points"] = space.options["num_initial_points"]
    oracle = cls(**kwargs)
    if space.oracle == "hyperband":
        oracle.max_trials = max_trials  # Hyperband sizes its brackets itself; --max-trials still caps them
    oracle.deadline = deadline
    return oracle


@dataclasses.dataclass(frozen=True)
class _Search:
    """What every trial of one search shares."""

    competition: str
    space: Space
    store: Path | None
    config_file: Path | None
    overrides: tuple[str, ...]
    folds: list[int]
    dir: Path
    deadline: float | None
    max_trials: int | None
    verbose: int

    def trial_overrides(self, values: dict) -> list[str]:
        return list(self.overrides) + self.space.overrides(values)

    def run_dir(self, trial_id: str) -> Path:
        return self.dir / f"trial_{trial_id}"


class KitTuner(keras_tuner.Tuner):
    """A keras_tuner Tuner whose trial is ``kit.train.loop.train`` on the search's folds; no Keras model of its
    own (``hypermodel`` is None: ``run_trial`` is overridden)."""

    def __init__(self, oracle, search: _Search, **kwargs):
        self.search_job = search
        self.ran: list[str] = []
        self.own: list[dict] = []
        super().__init__(oracle=oracle, hypermodel=None, **kwargs)

    def run_trial(self, trial, *args, **kwargs) -> float:
        job = self.search_job
        overrides = job.trial_overrides(trial.hyperparameters.values)
        run_dir = job.run_dir(trial.trial_id)
        minutes = self._share()
        if job.verbose:
            shown = " ".join(overrides[len(job.overrides) :])
            budget = f", {minutes:.1f} min" if minutes is not None else ""
            print(f"trial {trial.trial_id}: {shown} (folds {_folds_text(job.folds)}{budget}) -> {run_dir}")
        result = train(
            job.competition,
            store=job.store,
            config_file=job.config_file,
            overrides=overrides,
            folds=_folds_text(job.folds),
            max_minutes=minutes,
            run_dir=run_dir,
            verbose=max(0, job.verbose - 1),
        )
        missing = [f for f in job.folds if f not in result.fold_score]
        if missing:
            raise keras_tuner.errors.FailedTrialError(f"folds {missing} of trial {trial.trial_id} did not train")
        score = sum(result.fold_score[f] for f in job.folds) / len(job.folds)
        self.ran.append(trial.trial_id)
        values = trial.hyperparameters.values
        self.own.append(_row(trial.trial_id, "COMPLETED", job.space, values, score, run_dir, result.metric))
        if job.verbose:
            print(f"trial {trial.trial_id}: {result.metric} {score:.4f}")
        return score

    def on_search_begin(self) -> None:
        # keras_tuner first saves the tuner when a trial ends, and reloads a project only if that file exists: save
        # now, so that a search killed during its first trial resumes (the trial handed out again) rather than
        # starting over with new values in the same trial folders.
        self.save()
        super().on_search_begin()

    def _share(self) -> float | None:
        """This trial's minutes: what is left of the budget over the trials still to run (this one included)."""
        job = self.search_job
        if job.deadline is None:
            return None
        left = max(job.deadline - time.time(), 0.0)
        trials = getattr(self.oracle, "trials", None)  # a worker's oracle is a gRPC client: it only knows its own
        done = len(self.ran) if trials is None else sum(t.status != _STATUS.RUNNING for t in trials.values())
        todo = max(1, (job.max_trials or 1) - done)
        return left / todo / 60


def tune(
    competition: str,
    space,
    max_trials: int | None = 10,
    max_minutes: float | None = None,
    folds="0",
    store=None,
    config_file=None,
    overrides=(),
    name: str | None = None,
    search_dir=None,
    verbose: int = 1,
) -> TuneResult:
    """Search the space file ``space`` (a path, or a table as ``parse_space`` takes) for ``competition``; see the
    module docstring. ``config_file`` and ``overrides`` are the base every trial starts from.

    Raises:
        KitError: a bad space file or base configuration, a search folder that holds another search, or a
            search whose trials keep failing (keras_tuner's message).
    """
    space = load_space(space) if isinstance(space, (str, Path)) else parse_space(space)
    base = resolve_config(competition, config_file, list(overrides))  # a bad base fails before any trial
    name = name or (Path(space.source).stem if space.source.endswith(".toml") else "search")
    root = Path(search_dir) if search_dir else search_dir_for(competition, name)
    fold_list = parse_folds(folds, base.folds.k)
    deadline = time.time() + 60 * max_minutes if max_minutes else None
    job = _Search(
        competition=base.competition,
        space=space,
        store=Path(store) if store else None,
        config_file=Path(config_file) if config_file else None,
        overrides=tuple(overrides),
        folds=fold_list,
        dir=root,
        deadline=deadline,
        max_trials=max_trials,
        verbose=verbose,
    )
    _claim(root, job, base)
    objective = objective_for(base.competition)
    oracle = make_oracle(space, objective, max_trials, deadline, base.train.epochs)
    try:
        tuner = KitTuner(oracle, job, directory=str(root), project_name=PROJECT, overwrite=False)
        tuner.search(verbose=0)
    except RuntimeError as e:  # keras_tuner: too many consecutive failed trials, or an unreadable project
        raise KitError(
            f"the search stopped: {e}. Fix: see the failed trials' messages under {root / PROJECT}; rerun to resume."
        ) from None
    if _is_worker():
        rows = tuner.own
        if verbose and rows:
            print(format_table(_table_rows(rows, space, objective.name)))
        return TuneResult(root, objective.name, objective.direction, rows, tuner.ran, None, None, None, None, None)
    return _finish(tuner.oracle, job, objective, tuner.ran)


def _finish(oracle, job: _Search, objective, ran: list[str]) -> TuneResult:
    """Write trials.csv and best.toml from the oracle's trials and print the table."""
    metric = objective.name
    rows = [
        _row(t.trial_id, t.status, job.space, t.hyperparameters.values, t.score, job.run_dir(t.trial_id), metric)
        for t in sorted(oracle.trials.values(), key=lambda t: t.trial_id)
    ]
    table_csv = job.dir / "trials.csv"
    atomic_write(table_csv, _csv(rows, job.space, objective.name).encode())
    best = oracle.get_best_trials(1)
    best_toml = best_values = best_score = best_id = None
    if best and best[0].score is not None:
        best_id, best_score = best[0].trial_id, float(best[0].score)
        best_values = _values(job.space, best[0].hyperparameters.values)
        cfg = resolve_config(job.competition, job.config_file, job.trial_overrides(best[0].hyperparameters.values))
        best_toml = job.dir / "best.toml"
        header = f"# kit tune: trial {best_id}, {objective.name} {best_score:.6g} on folds {_folds_text(job.folds)}\n"
        atomic_write(best_toml, (header + dump_toml(cfg.to_dict())).encode())
    if job.verbose:
        print(format_table(_table_rows(rows, job.space, objective.name)))
        if best_id is not None:
            print(f"best: trial {best_id}, {objective.name} {best_score:.4f} ({objective.direction}) -> {best_toml}")
        print(f"trials table: {table_csv}")
    return TuneResult(
        job.dir, objective.name, objective.direction, rows, ran, best_id, best_score, best_values, best_toml, table_csv
    )


def _row(trial_id: str, status, space: Space, values: dict, score, run_dir: Path, metric: str) -> dict:
    status = getattr(status, "value", status)
    return {
        "trial": trial_id,
        "status": str(status),
        **_values(space, values),
        metric: None if score is None else float(score),
        "run_dir": str(run_dir),
    }


def _values(space: Space, values: dict) -> dict:
    out = {key: values.get(key) for key in space.keys}
    if "tuner/epochs" in values:
        out["train.epochs"] = int(values["tuner/epochs"])
    return {k: plain_value(v) for k, v in out.items()}


def _columns(rows: list[dict], space: Space, metric: str) -> list[str]:
    keys = list(space.keys) + (["train.epochs"] if any("train.epochs" in r for r in rows) else [])
    return ["trial", "status", *keys, metric, "run_dir"]


def _csv(rows: list[dict], space: Space, metric: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = _columns(rows, space, metric)
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if v is None else v for v in _cells(r, columns)])
    return out.getvalue()


def _cells(row: dict, columns: list[str]) -> list:
    return [row.get(c) for c in columns]


def _table_rows(rows: list[dict], space: Space, metric: str) -> list[list[str]]:
    columns = _columns(rows, space, metric)
    text = [columns]
    for r in rows:
        cells = _cells(r, columns)
        text.append([_cell(v, c == metric) for c, v in zip(columns, cells)])
    return text


def _cell(value, score: bool) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if score else f"{value:.4g}"
    return str(value)


def _folds_text(folds: list[int]) -> str:
    return ",".join(str(f) for f in folds)


def _is_worker() -> bool:
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in tuner_id


def _claim(root: Path, job: _Search, base) -> None:
    """Write search.json, or check that the folder's search is this one (same space, base and folds)."""
    what = {
        "competition": job.competition,
        "space": json.loads(job.space.identity()),
        "base": json.loads(identity(base)),
        "folds": job.folds,
    }
    path = root / "search.json"
    if path.exists():
        held = json.loads(path.read_text())
        if held != what:
            changed = [k for k in what if held.get(k) != what[k]]
            raise KitError(
                f"{root} holds another search (its {', '.join(changed)} differ); resuming it with this one would "
                "mix two searches. Fix: pass --name NEW for a new search, or the same space file, --config, --set "
                f"and --folds (see {path})."
            )
        return
    root.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(what, indent=2, sort_keys=True) + "\n").encode())
