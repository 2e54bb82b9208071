"""Predict new images (a folder, or a CSV of paths) with a trained run: its preprocessing, TTA and fold average.

Each file is decoded exactly as the run's adapter ingests it (``kit.ingest.decode``: channels, fit and resize to
the stored shape of the run's store), in blocks like ingest so a large folder never sits in memory at once, then
goes through every finished fold model with the run's TTA; the folds are combined as the run's
``predict.fold_average`` says. The output CSV is ``id`` (file name without suffix) then one probability column
per class (``class_columns``). An unreadable file stops the run with a listing of every such file; files that
are not images by suffix in a folder are reported, never silently dropped.

Example:
    >>> from kit.infer.predict_images import predict_images
    >>> result = predict_images("runs/pcam/20261124-101500_compact_cnn", "new/", "new_pred.csv")  # doctest: +SKIP
    >>> result.table.columns.tolist()  # doctest: +SKIP
    ['id', 'label']
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kit.adapters.base import Adapter
from kit.adapters.image_spec import ImageSpec
from kit.adapters.registry import get_adapter
from kit.config import check_tta
from kit.errors import KitError
from kit.files import atomic_write
from kit.infer.fold_average import average_folds
from kit.infer.predict import predict_tta, tta_views
from kit.infer.submission import FLOAT_FORMAT
from kit.ingest.decode_pool import BlockDecoder
from kit.ingest.store import chunk_rows, open_store, store_classes
from kit.models.build import build_task_model
from kit.run import RunFolder

__all__ = ["predict_images", "list_images", "class_columns", "PredictImagesResult", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
_SHOW = 10  # files named in an error before "... and N more"


@dataclasses.dataclass
class PredictImagesResult:
    out: Path
    tta: str
    folds: list
    table: pd.DataFrame  # id, then one probability column per class
    ignored: list[str]  # files in the folder that are not images by suffix (reported, not predicted)


def class_columns(adapter: Adapter, classes=None) -> list[str]:
    """The probability columns of the output: binary, the positive class's probability under the label column;
    else one column per class, named by the class (``classes``: the run's store's, default the adapter's).

    Example:
        >>> from kit.adapters.registry import get_adapter
        >>> class_columns(get_adapter("pcam"))
        ['label']
    """
    if adapter.task == "binary":
        return [adapter.label_column]
    return [str(c) for c in (classes or adapter.class_names)]


def list_images(images) -> tuple[list[str], list[str], list[str]]:
    """(ids, paths, ignored) of a folder (searched recursively; images by suffix) or of a CSV of paths (its
    ``path`` column, else its first; relative paths are taken from the CSV's folder). Ids are file stems and
    must be unique.

    Example:
        >>> list_images("no/such/folder")
        Traceback (most recent call last):
        kit.errors.KitError: expected --images to be a folder of images or a CSV of paths, got 'no/such/folder' ...
    """
    source = Path(images)
    if source.is_dir():
        paths, ignored = [], []
        for root, dirs, files in os.walk(source):
            dirs.sort()  # a stable order whatever the file system returns
            for name in sorted(files):
                path = os.path.join(root, name)
                (paths if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES else ignored).append(path)
    elif source.is_file() and source.suffix.lower() == ".csv":
        paths, ignored = _paths_from_csv(source), []
    else:
        raise KitError(
            f"expected --images to be a folder of images or a CSV of paths, got {str(images)!r} "
            f"({'a ' + source.suffix + ' file' if source.is_file() else 'nothing there'}). "
            "Fix: pass a folder, or a .csv with a `path` column."
        )
    if not paths:
        raise KitError(
            f"expected images ({', '.join(IMAGE_SUFFIXES)}) in {source}, found none"
            + (f" (only {len(ignored)} other files, e.g. {ignored[0]})" if ignored else "")
            + ". Fix: point --images at the folder holding the images, or at a CSV listing them."
        )
    ids = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    _refuse_duplicates(ids, paths)
    return ids, paths, ignored


def _paths_from_csv(csv: Path) -> list[str]:
    try:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise KitError(f"expected a readable CSV of image paths at {csv}, got: {e}. Fix: one `path` column.") from None
    if table.shape[1] == 0:
        raise KitError(f"expected a `path` column in {csv}, got no columns. Fix: write a header `path`, one per row.")
    column = "path" if "path" in table.columns else table.columns[0]
    values = table[column].str.strip()
    if (values == "").any():
        line = int(np.flatnonzero(values == "")[0]) + 2
        raise KitError(f"expected a path on every row of {csv}, got an empty one on line {line}. Fix: remove it.")
    # relative paths mean relative to the CSV, so the CSV and its images can move together
    return [str(p if p.is_absolute() else csv.parent / p) for p in map(Path, values)]


def _refuse_duplicates(ids: list[str], paths: list[str]) -> None:
    seen: dict[str, list[str]] = {}
    for i, p in zip(ids, paths):
        seen.setdefault(i, []).append(p)
    clashes = {i: ps for i, ps in seen.items() if len(ps) > 1}
    if clashes:
        shown = "\n".join(f"  {i}: {', '.join(ps)}" for i, ps in list(clashes.items())[:_SHOW])
        more = f"\n  ... and {len(clashes) - _SHOW} more" if len(clashes) > _SHOW else ""
        raise KitError(
            f"expected one file per id (the file name without suffix), got {len(clashes)} id(s) named by several "
            f"files:\n{shown}{more}\nFix: rename or remove the duplicates so each id names one image."
        )


def _run_spec(run: RunFolder, adapter: Adapter, store) -> tuple[ImageSpec, str, tuple[str, ...]]:
    """How to decode a new image for this run (the adapter's fit and channels at its store's stored shape), and
    the store's task and class names."""
    store = Path(store) if store else run.store()
    if store is None:
        raise KitError(
            f"expected env.json naming the run's store in {run.path}, found none; the stored image shape comes "
            "from it. Fix: pass --store with the store the run was trained on."
        )
    with open_store(store, adapter, run.image_shape()) as h5:
        shape = tuple(int(s) for s in h5.attrs.get("image_shape", h5["test/images"].shape[1:]))
        task, classes = store_classes(h5)
    run.check_classes(task, classes, store)
    # no format check: the adapter's magic check guards a competition's files, while new images may be any
    # format; TIFFs still go through the same codec (decode tries kit.ingest.tiff first)
    return ImageSpec(shape, None, adapter.fit), task, classes


def _decode_error(failures: list[tuple[str, str]], total: int) -> KitError:
    shown = "\n".join(f"  {p}: {reason}" for p, reason in failures[:_SHOW])
    more = f"\n  ... and {len(failures) - _SHOW} more" if len(failures) > _SHOW else ""
    return KitError(
        f"expected every image to decode, got {len(failures)} of {total} file(s) that cannot be used:\n"
        f"{shown}{more}\nFix: replace or remove these files (or their rows in the CSV) and rerun; nothing was "
        "written."
    )


def predict_images(
    run_dir,
    images,
    out,
    tta: str | None = None,
    force: bool = False,
    store=None,
    batch_size: int = 64,
    workers: int | None = None,
) -> PredictImagesResult:
    """Predict every image of ``images`` (folder or CSV of paths) with the run's finished folds; write ``out``.

    ``tta`` defaults to the run's ``predict.tta``; ``store`` (default: env.json's) gives the stored image shape.
    ``out`` is never overwritten unless ``force``. ``workers``: decode processes (default: all cores for more
    than one block, else none).
    """
    run = RunFolder(run_dir)
    cfg = run.read_config()
    adapter = get_adapter(cfg.competition)
    tta = check_tta(adapter, tta or cfg.predict.tta)
    views = tta_views(tta)
    out = Path(out)
    if out.exists() and not force:
        raise KitError(f"expected a new file for --out, got {out}, which exists. Fix: pass --force to overwrite it.")
    folds = [f for f in range(cfg.folds.k) if run.fold(f).is_done()]
    if not folds:
        raise KitError(f"{run.path} has no finished fold to predict with. Fix: run `kit train` until a fold finishes.")
    spec, task, classes = _run_spec(run, adapter, store)
    columns = class_columns(adapter, classes)
    ids, paths, ignored = list_images(images)
    # every fold model at once, so each image is decoded once; a model is small next to a folder of images
    models = []
    for f in folds:
        model = build_task_model(cfg.model, spec.shape, task, classes)
        model.load_weights(run.fold(f).best_weights)
        models.append(model)
    block = 2 * chunk_rows(spec.shape)
    workers = ((os.cpu_count() or 1) if len(paths) > block else 0) if workers is None else workers
    pred = np.full((len(folds), len(paths), len(columns)), np.nan)
    failures: list[tuple[str, str]] = []
    starts = range(0, len(paths), block)
    bar = tqdm(total=len(paths), unit="img", desc=f"predict ({tta})", disable=None)
    with BlockDecoder(spec, block, workers) as decoder:
        for s, (decoded, bad) in zip(starts, decoder.map(paths[s : s + block] for s in starts)):
            failures += [(paths[s + i], reason) for i, reason in bad]
            if not failures:  # once a file fails nothing is written: keep decoding only, to list every failure
                for b in range(0, len(decoded), batch_size):
                    for k, model in enumerate(models):
                        pred[k, s + b : s + b + batch_size] = predict_tta(model, decoded[b : b + batch_size], views)
            bar.update(len(decoded))
    bar.close()
    keras.backend.clear_session()
    if failures:
        raise _decode_error(failures, len(paths))
    if not np.isfinite(pred).all():
        raise KitError(
            "expected finite probabilities, got NaN/inf for some images; a fold's weights are unusable. Fix: "
            "retrain that fold (delete its folder) with a lower train.lr."
        )
    probs = average_folds(pred, cfg.predict.fold_average)  # (N, columns)
    table = pd.DataFrame({"id": ids, **{column: probs[:, c] for c, column in enumerate(columns)}})
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, table.to_csv(index=False, float_format=FLOAT_FORMAT).encode())
    return PredictImagesResult(out, tta, folds, table, ignored)
