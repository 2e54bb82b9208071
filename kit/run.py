"""The run folder: one per experiment, everything needed to predict, ensemble and compare.

Layout::

    runs/<competition>/<YYYYmmdd-HHMMSS>_<name>/
        config.toml          fully resolved configuration (identifies the run; same config -> same folder)
        augment.json         the training augmentation, albumentations' own serialisation
        folds.csv            id, fold (store order)
        env.json             versions, git commit, device, precision, time budget
        fold{k}/             best.weights.h5 (by validation AUC), history.csv, valid_pred.npy (best epoch),
                             last.keras + state.json (resume point), done.json (the fold finished)
        oof.csv              id, fold, target, pred: every train id exactly once (once all folds are done)
        metrics.json         per-fold and overall OOF AUC, with and without TTA
        learning_curves.png, roc.png
        test_fold{k}.npy     test predictions of fold k (``kit predict``), test_pred.csv: id, pred (fold average)

Example:
    >>> from kit.run import fold_dir
    >>> fold_dir("runs/pcam/20261124-101500_compact_cnn", 2).name
    'fold2'
"""
from __future__ import annotations

import time
from pathlib import Path

from kit import paths
from kit.config import Config, config_from_dict, identity
from kit.tomlfile import dump_toml, load_toml
from kit.errors import KitError

__all__ = ["open_run", "load_run_config", "fold_dir", "is_fold_done", "CONFIG"]

CONFIG = "config.toml"


def fold_dir(run: Path, fold: int) -> Path:
    return Path(run) / f"fold{fold}"


def is_fold_done(run: Path, fold: int) -> bool:
    return (fold_dir(run, fold) / "done.json").exists()


def load_run_config(run) -> Config:
    run = Path(run)
    if not (run / CONFIG).exists():
        raise KitError(f"expected a run folder with {CONFIG} at {run}, found none. Fix: pass a folder made by "
                       "`kit train` (runs/<competition>/<time>_<name>).")
    # runs made before a key existed get its default, which is what they ran with
    return config_from_dict(load_toml(run / CONFIG), str(run / CONFIG))


def open_run(cfg: Config, run_dir=None) -> Path:
    """The run folder for ``cfg``: ``run_dir`` if given, else the newest folder under runs/<competition>/ whose
    config equals ``cfg`` (so rerunning a command resumes it), else a new timestamped one. Writes config.toml."""
    if run_dir is None:
        root = paths.runs_dir() / cfg.competition
        same = [d for d in sorted(root.glob(f"*_{cfg.name}"), reverse=True)
                if (d / CONFIG).exists() and identity(load_run_config(d)) == identity(cfg)]
        run_dir = same[0] if same else root / f"{time.strftime('%Y%m%d-%H%M%S')}_{cfg.name}"
    run = Path(run_dir)
    if (run / CONFIG).exists():
        if identity(load_run_config(run)) != identity(cfg):
            raise KitError(f"{run} holds a run with a different configuration; resuming it with this one would mix "
                           "two experiments. Fix: drop --run-dir (a new folder is made) or use the same config "
                           f"(see {run / CONFIG}).")
        return run
    run.mkdir(parents=True, exist_ok=True)
    (run / CONFIG).write_text(dump_toml(cfg.to_dict()))
    return run
