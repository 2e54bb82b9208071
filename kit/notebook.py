"""The whole pipeline in one call, for a Kaggle notebook (or any Python session): raw files -> store -> K-fold
training -> TTA prediction -> fold ensemble -> ``submission.csv``.

Inside a Kaggle notebook (see ``kit.paths``) it reads the attached competition from ``/kaggle/input/<slug>`` and
writes only under ``/kaggle/working``: the store, the run folder, the submissions folder and
``/kaggle/working/submission.csv``, the file Kaggle offers to submit. Nothing needs installing or downloading:
put the kit bundle on ``sys.path`` (the driver that ``kit kernel build`` writes does it) and call ``run``.
Rerunning skips every finished step, so a notebook restarted after a timeout continues.

A code competition's notebook trains nothing: ``predict`` takes a run trained elsewhere (packed as a dataset by
``kit kernel build --inference``), ingests the attached competition's files and writes the same
``/kaggle/working/submission.csv`` (``kit.infer.code_submission``), with no internet.

Example:
    >>> import kit.notebook
    >>> csv = kit.notebook.run("pcam", max_minutes=540)  # doctest: +SKIP
    >>> csv  # doctest: +SKIP
    PosixPath('/kaggle/working/submission.csv')
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kit import paths

__all__ = ["run", "predict"]


def run(
    competition: str,
    max_minutes: float | None = None,
    overrides=(),
    raw=None,
    tta: str | None = None,
    run_name: str = "kernel",
    size: int | None = None,
    workers: int | None = None,
) -> Path:
    """Ingest, train, predict and ensemble ``competition``; return the path of ``submission.csv``.

    Args:
        max_minutes: training budget shared by the folds (Kaggle stops a session at 9-12 hours: leave room for
            ingest and prediction).
        overrides: ``["section.key=value", ...]`` as ``kit train --set``; pretrained weights come from an attached
            dataset, e.g. ``model.weights='/kaggle/input/keras-weights/densenet169_notop.h5'``.
        raw: the competition's files (default: ``kit.paths.default_raw``, on Kaggle the attached input).
        size: stored image side for adapters that resize at ingest.
        workers: processes decoding at ingest and threads loading and augmenting training batches (default: every
            core, so a Kaggle GPU machine's 4 cores feed the GPU, not one thread).
    """
    working = paths.working_dir()
    paths.keep_library_caches_in(working)
    from kit.ingest.writer import ingest

    raw = Path(raw) if raw is not None else paths.default_raw(competition)
    store = paths.default_store(competition)
    # ingest before TensorFlow is imported, so its decode workers can be forked (fast) rather than spawned
    print(ingest(competition, raw, store, workers=workers, size=size).report())
    from kit.infer.ensemble import blend_and_submit
    from kit.infer.predict import predict_run
    from kit.train.loop import train

    result = train(
        competition,
        store=store,
        overrides=list(overrides),
        max_minutes=max_minutes,
        run_dir=paths.runs_dir() / competition / run_name,
        workers=workers or os.cpu_count() or 1,
    )
    if not result.complete:
        print(
            f"folds {result.missing_folds} are not trained yet; the submission uses the finished ones. Rerun to "
            "continue training them."
        )
    predict_run(result.run_dir, tta=tta, oof=result.complete)
    # the same function as `kit ensemble RUN [--partial]`: an unfinished run is blended from its finished folds
    csv = blend_and_submit([result.run_dir], partial=not result.complete)
    final = working / "submission.csv"
    shutil.copyfile(csv, final)
    print(f"submission: {final} (a copy of {csv})")
    return final


def predict(bundle, raw=None, tta: str | None = None, workers: int | None = None) -> Path:
    """Inference only: predict the competition's test files with the run packed in ``bundle`` (the attached
    dataset's folder, ``/kaggle/input/<bundle>``); return the path of ``submission.csv``.

    Args:
        bundle: folder holding the run bundle (``kit_run.zip``, or the ``kit_run`` folder Kaggle unpacks it to).
        raw: the competition's files (default: ``kit.paths.default_raw``, on Kaggle the attached input).
        tta: override the run's ``predict.tta``.
        workers: processes decoding at ingest (default: every core).
    """
    working = paths.working_dir()
    paths.keep_library_caches_in(working)
    from kit.infer.code_submission import predict_bundle

    return predict_bundle(bundle, raw=raw, out=working / "submission.csv", workers=workers, tta=tta)
