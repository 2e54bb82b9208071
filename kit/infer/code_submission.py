"""Predict a packed run on a competition's raw folder and write ``submission.csv``: the inference half of a code
competition's notebook (``kit kernel build --inference`` packs the run; the notebook calls ``kit.notebook.predict``,
which calls ``predict_bundle``).

A run bundle is ``kit_run.zip`` (or the ``kit_run/`` folder Kaggle unpacks it to) holding a trained run folder
without its test predictions: ``config.toml``, ``env.json``, ``metrics.json``, ``folds.csv``, ``oof.csv`` /
``oof_tta.csv`` / ``predict.json`` when present, and per finished fold ``best.weights.h5``, ``done.json`` and
``valid_pred.npy``. ``predict_bundle`` copies the run under the runs folder, ingests the raw folder into a store
(at the run's stored image size), points the copy's env.json at that store, then runs exactly what
``kit predict RUN`` and ``kit ensemble RUN`` run (``predict_run``, then ``blend_and_submit`` of the one run; a run
whose budget ran out before every fold trained is blended from its finished folds), so the CSV has the same bytes
as the one made locally from the same files.

Example:
    >>> from kit.infer.code_submission import predict_bundle
    >>> predict_bundle("/kaggle/input/kit-pcam-run", "/kaggle/input/histopathologic-cancer-detection")  # doctest: +SKIP
    PosixPath('/kaggle/working/submission.csv')
"""

from __future__ import annotations

import dataclasses
import shutil
import zipfile
from pathlib import Path

from kit import paths
from kit.errors import KitError

__all__ = ["RUN_ZIP", "RUN_FILES", "FOLD_FILES", "MANIFEST", "run_files", "unpack_run", "predict_bundle"]

RUN_ZIP = "kit_run.zip"
MANIFEST = "kit_run.json"  # beside the zip: competition, run name, folds, tta, CV (read by `kit submit --kernel`)
RUN_FILES = ("config.toml", "env.json", "metrics.json", "folds.csv", "oof.csv", "oof_tta.csv", "predict.json")
FOLD_FILES = ("best.weights.h5", "done.json", "valid_pred.npy")


def run_files(run_dir) -> list[Path]:
    """The files of ``run_dir`` a bundle carries (relative paths): the run's files that exist, and each finished
    fold's weights, done.json and validation predictions."""
    from kit.run import RunFolder

    run = RunFolder(run_dir)
    cfg = run.read_config()
    found = [Path(name) for name in RUN_FILES if (run.path / name).is_file()]
    for k in range(cfg.folds.k):
        fold = run.fold(k)
        if fold.is_done() and fold.best_weights.is_file():
            found += [Path(fold.dir.name) / name for name in FOLD_FILES if (fold.dir / name).is_file()]
    return found


def _bundled_run(bundle: Path) -> Path:
    """The zip, or the folder Kaggle unpacked it to."""
    for candidate in (bundle / RUN_ZIP, bundle / RUN_ZIP.removesuffix(".zip")):
        if candidate.exists():
            return candidate
    raise KitError(
        f"expected {RUN_ZIP} (or its unpacked folder kit_run/) in {bundle}, found neither. Fix: attach the dataset "
        "`kit kernel build --inference` made (and `kit kernel push` uploaded) to the notebook."
    )


def unpack_run(bundle, into) -> Path:
    """Copy the bundled run to the folder ``into`` (replacing what is there); return it."""
    source, into = _bundled_run(Path(bundle)), Path(into)
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    if source.is_dir():
        inner = source / source.name if (source / source.name).is_dir() else source
        shutil.copytree(inner, into, dirs_exist_ok=True)
    else:
        with zipfile.ZipFile(source) as zf:
            zf.extractall(into)
    return into


def _stored_size(adapter, image_shape) -> int | None:
    """The ``size`` to ingest with so the store has the run's stored shape (None: the adapter's own)."""
    if not image_shape or adapter.fit == "exact" or tuple(image_shape) == tuple(adapter.image_shape):
        return None
    return int(image_shape[0])


def predict_bundle(bundle, raw=None, out=None, workers: int | None = None, tta: str | None = None) -> Path:
    """Predict the test files of ``raw`` with the run packed in ``bundle``; write ``out`` and return it.

    Args:
        bundle: folder holding ``kit_run.zip`` (or ``kit_run/``): on Kaggle the attached dataset.
        raw: the competition's files (default ``kit.paths.default_raw``: on Kaggle ``/kaggle/input/<slug>``).
        out: the submission (default ``<working>/submission.csv``: on Kaggle ``/kaggle/working/submission.csv``).
        workers: ingest decode processes (default: every core).
        tta: override the run's ``predict.tta``.
    """
    from kit.adapters.registry import get_adapter
    from kit.ingest.writer import ingest
    from kit.run import RunFolder

    bundle = Path(bundle)
    staged = Path(paths.working_dir()) / ".kit_run_staging"
    unpack_run(bundle, staged)
    cfg = RunFolder(staged).read_config()
    competition, name = cfg.competition, _run_name(bundle) or "inference"
    run = RunFolder(paths.runs_dir() / competition / name)
    if run.path.exists():
        shutil.rmtree(run.path)
    run.path.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staged), str(run.path))
    adapter = get_adapter(competition)
    raw = Path(raw) if raw is not None else paths.default_raw(competition)
    env = run.read_env()
    store = paths.default_store(competition)
    size = _stored_size(adapter, env.image_shape if env is not None else None)
    # ingest before TensorFlow is imported, so its decode workers can be forked (fast) rather than spawned
    print(ingest(competition, raw, store, workers=workers, size=size).report())
    if env is not None:
        run.write_env(dataclasses.replace(env, store=str(store)))
    from kit.infer.ensemble import blend_and_submit
    from kit.infer.predict import predict_run

    folds = [k for k in range(cfg.folds.k) if run.fold(k).is_done()]
    complete = len(folds) == cfg.folds.k
    if not complete:
        print(f"the bundled run has folds {folds} of {cfg.folds.k}; the submission averages those.")
    predict_run(run.path, tta=tta)
    csv = blend_and_submit([run.path], partial=not complete)
    out = Path(out) if out is not None else paths.working_dir() / "submission.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(csv, out)
    print(f"submission: {out} (a copy of {csv})")
    return out


def _run_name(bundle: Path) -> str | None:
    import json

    try:
        return json.loads((bundle / MANIFEST).read_text()).get("run")
    except (OSError, ValueError, AttributeError):
        return None
