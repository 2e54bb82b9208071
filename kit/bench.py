"""Benchmarks that print one JSON line each: kit's figure next to a naive baseline measured in the same run.

Example:
    $ kit bench ingest --raw data/pcam/raw
    {"bench": "ingest", "images": 277483, "kit_images_per_s": ..., "pillow_images_per_s": ..., "ratio": ...}
    $ kit bench loader --store data/pcam/pcam.h5
    $ kit bench tta --store data/pcam/pcam.h5
"""

from __future__ import annotations

import copy
import os
import resource
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from kit.adapters.registry import get_adapter
from kit.errors import KitError
from kit.ingest.listing import plan_split
from kit.ingest.writer import ingest

__all__ = ["bench_ingest", "bench_loader", "bench_tta", "augmentation_throughput"]


def _pillow_loop(paths: list[str], spec) -> tuple[float, dict[str, str]]:
    """The naive baseline: seconds to decode ``paths`` one by one with Pillow, and the files it could not
    decode (path -> reason), skipped the way kit's ingest quarantines them."""
    from PIL import Image  # the naive baseline only; kit itself decodes with OpenCV

    bad: dict[str, str] = {}
    started = time.perf_counter()
    for path in paths:
        try:
            with Image.open(path) as image:
                if spec.fit != "exact":  # the same work as kit: every image to the stored size
                    image = image.resize(spec.shape[1::-1], Image.Resampling.BOX)
                np.asarray(image)
        except Exception as e:  # junk, truncated or unreadable: Pillow raises OSError, ValueError, SyntaxError...
            bad[path] = f"{type(e).__name__}: {e}"
    return time.perf_counter() - started, bad


def _relative(path: str, raw: Path) -> str:
    try:
        return Path(path).resolve().relative_to(raw.resolve()).as_posix()
    except ValueError:
        return str(path)


def bench_ingest(raw, competition: str = "pcam", workers: int | None = None, repeat: int = 3, size=None) -> dict:
    """Time kit's whole ingest (plan, parallel decode, HDF5 writes) against a one-process Pillow loop.

    Files that cannot be decoded are skipped by both (kit's ingest quarantines them), counted in ``bad_files``
    and a few named in ``bad_file_examples``; both rates are over the good files only, the time spent on the
    bad ones included, so the ratio compares the same work. A bad test file stops the bench before any timed
    kit run, since kit's ingest refuses such a folder (a submission needs every test id).
    """
    adapter = get_adapter(competition)
    spec = adapter.image_spec(size)
    raw = Path(raw)
    plans = {split: plan_split(adapter, raw, split) for split in ("train", "test")}
    paths = [p for plan in plans.values() for p in plan.paths]
    for path in paths:  # both contenders read from the page cache
        try:
            Path(path).read_bytes()
        except OSError:
            pass  # unreadable: both contenders find out and skip it
    pillow_s, pillow_bad = _pillow_loop(paths, spec)
    bad_test = sorted(set(plans["test"].paths) & set(pillow_bad))
    if bad_test:
        listing = "\n".join(f"  {_relative(p, raw)}: {pillow_bad[p]}" for p in bad_test[:5])
        raise KitError(
            f"expected every test image of {raw} to decode (kit's ingest refuses a folder without them), got "
            f"{len(bad_test)} bad test file(s):\n{listing}\n"
            f"Fix: restore them from Kaggle's download (`kit download {adapter.name}`) or bench a folder without them."
        )
    repeat = max(1, repeat)
    best_s = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            started = time.perf_counter()
            summary = ingest(
                competition, raw, Path(tmp) / "bench.h5", workers=workers, force=True, progress=False, size=size
            )
            best_s = min(best_s, time.perf_counter() - started)
        store_bytes = (Path(tmp) / "bench.h5").stat().st_size
    kit_bad = {q.path: q.reason for q in summary.quarantine if q.path}
    bad = {**kit_bad, **pillow_bad}  # a file either contender could not use
    good = len(paths) - len(set(bad) & set(paths))
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kit_rate, pillow_rate = good / best_s, good / pillow_s
    return {
        "bench": "ingest",
        "competition": competition,
        "stored_shape": list(spec.shape),
        "images": good,
        "bad_files": len(bad),
        "bad_file_examples": [_relative(p, raw) for p in sorted(bad)[:5]],
        "workers": workers or os.cpu_count(),
        "kit_images_per_s": round(kit_rate),
        "pillow_images_per_s": round(pillow_rate),
        "ratio": round(kit_rate / pillow_rate, 2),
        "store_mib": round(store_bytes / 2**20, 1),
        "peak_rss_mib": round(rss_mib),
        "best_of": repeat,
    }


def _images_per_s(dataset, threads: int, seconds: float = 3.0) -> float:
    """Serve epochs of ``dataset`` the way PyDataset thread workers do, for at least ``seconds``; images/s."""
    from concurrent.futures import ThreadPoolExecutor

    served, started = 0, time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        while served == 0 or time.perf_counter() - started < seconds:
            served += sum(len(b[0]) for b in pool.map(dataset.__getitem__, range(len(dataset))))
            dataset.on_epoch_end()
    return served / (time.perf_counter() - started)


def bench_loader(
    store,
    competition: str = "pcam",
    batch_size: int = 128,
    threads: int | None = None,
    naive_images: int = 2000,
    seconds: float = 3.0,
) -> dict:
    """Training-loader images/s with and without the competition's augmentation, against a naive loader (one
    random HDF5 row read and one albumentations call per image) measured in the same run; also the augmentation
    alone, batched and per image."""
    import h5py

    from kit.config import resolve_config
    from kit.train.augment import build_augmentation
    from kit.train.batch_augment import BatchAugmenter
    from kit.train.loader import StoreDataset

    threads = threads or os.cpu_count() or 1
    compose = build_augmentation(resolve_config(competition).augment.train)
    with h5py.File(store, "r") as h5:
        n = len(h5["train/labels"])
    rows = np.arange(n)
    plain = StoreDataset(store, "train", rows, batch_size, shuffle=True)
    augmented = StoreDataset(store, "train", rows, batch_size, shuffle=True, augment=BatchAugmenter(compose))
    _images_per_s(plain, threads, seconds=0)  # warm the page cache
    plain_rate = _images_per_s(plain, threads, seconds)
    augmented_rate = _images_per_s(augmented, threads, seconds)
    rng = np.random.default_rng(0)
    picks = rng.choice(n, min(naive_images, n), replace=False)
    with h5py.File(store, "r") as h5:
        images = h5["train/images"]
        started = time.perf_counter()
        for row in picks:
            compose(image=images[row])["image"]
        naive = len(picks) / (time.perf_counter() - started)
        sample = images[:1024]
    kernels = augmentation_throughput(sample, compose, seconds=seconds, batch_size=batch_size, threads=threads)
    return {
        "bench": "loader",
        "images": n,
        "batch_size": batch_size,
        "threads": threads,
        "plain_images_per_s": round(plain_rate),
        "augmented_images_per_s": round(augmented_rate),
        "naive_images_per_s": round(naive),
        "augmented_vs_naive": round(augmented_rate / naive, 2),
        "augment_only_batched_images_per_s": kernels["batch_images_per_s"],
        "augment_only_per_image_albumentations_images_per_s": kernels["per_image_images_per_s"],
    }


def bench_tta(store, backbone: str = "compact_cnn", images: int = 512, batch_size: int = 64, rounds: int = 3) -> dict:
    """D4 TTA cost against 8 plain forward passes over the same images (same model, same forward batch size).

    The two alternate for ``rounds`` rounds and the medians are compared, so a machine whose speed drifts (shared
    CPUs here vary by tens of percent from minute to minute) does not favour one of them. The parts TTA adds are
    timed alone: building the 8 views of each batch, and reading the store (TTA reads each image once, the plain
    passes 8 times); what is left of the difference is the forward pass and noise.
    """
    import h5py
    import keras

    from kit.infer.predict import predict_rows
    from kit.models import create_model
    from kit.train.augment import D4_VIEWS, dihedral_stack
    from kit.train.loader import StoreDataset

    with h5py.File(store, "r") as h5:
        n = min(images, len(h5["test/ids"]))
        shape = h5["test/images"].shape[1:]
    model = create_model(backbone, input_shape=shape)
    rows = np.arange(n)
    predict_rows(model, store, "test", rows, D4_VIEWS, batch_size)  # trace both batch shapes once
    predict_rows(model, store, "test", rows, (0,), 8 * batch_size)
    plain, tta = [], []
    for _ in range(max(1, rounds)):
        started = time.perf_counter()
        for _ in range(8):  # eight plain passes, each forward batch as large as a TTA batch
            predict_rows(model, store, "test", rows, (0,), 8 * batch_size)
        plain.append(time.perf_counter() - started)
        started = time.perf_counter()
        predict_rows(model, store, "test", rows, D4_VIEWS, batch_size)
        tta.append(time.perf_counter() - started)
    keras.backend.clear_session()
    data = StoreDataset(store, "test", rows, batch_size, labels=False)
    batches = [data[b] for b in range(len(data))]
    started = time.perf_counter()
    for batch in batches:
        dihedral_stack(batch, D4_VIEWS)
    views_s = time.perf_counter() - started
    started = time.perf_counter()
    for b in range(len(data)):
        data[b]
    read_s = time.perf_counter() - started
    plain_s, tta_s = float(np.median(plain)), float(np.median(tta))
    return {
        "bench": "tta",
        "backbone": backbone,
        "images": n,
        "views": 8,
        "rounds": len(tta),
        "tta_s": round(tta_s, 3),
        "eight_plain_passes_s": round(plain_s, 3),
        "tta_images_per_s": round(n / tta_s),
        "overhead_pct": round(100 * (tta_s / plain_s - 1), 1),
        "round_overheads_pct": [round(100 * (t / p - 1), 1) for t, p in zip(tta, plain)],
        "views_s": round(views_s, 3),
        "views_pct_of_plain": round(100 * views_s / plain_s, 1),
        "read_once_s": round(read_s, 3),
    }


def augmentation_throughput(
    images: np.ndarray, compose, seconds: float = 2.0, batch_size: int = 128, threads: int = 2
) -> dict:
    """Images/s of ``BatchAugmenter`` and of the per-image albumentations loop on the same images.

    Both run in ``threads`` threads, each repeatedly augmenting ``batch_size``-image batches for about
    ``seconds``, the way loader threads do.

    Example:
        >>> x = np.random.default_rng(0).integers(0, 256, (256, 96, 96, 3), dtype=np.uint8)
        >>> augmentation_throughput(x, build_augmentation(get_adapter("pcam").train_augment), 1.0)  # doctest: +SKIP
        {'batch_images_per_s': ..., 'per_image_images_per_s': ..., 'speedup': ...}
    """
    images = np.ascontiguousarray(images)
    batches = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]
    from kit.train.batch_augment import BatchAugmenter

    augmenter = BatchAugmenter(compose)

    def batched(worker):
        rng = np.random.default_rng(worker)
        return lambda batch: augmenter(batch, rng)

    def per_image(worker):
        private = copy.deepcopy(compose)
        private.set_random_seed(worker)
        return lambda batch: [private(image=image)["image"] for image in batch]

    rates = {
        name: _rate(make, batches, seconds, threads)
        for name, make in (("batch_images_per_s", batched), ("per_image_images_per_s", per_image))
    }
    rates["speedup"] = round(rates["batch_images_per_s"] / rates["per_image_images_per_s"], 1)
    return {"images": len(images), "shape": list(images.shape[1:]), "threads": threads, **rates}


def _rate(make, batches, seconds: float, threads: int) -> int:
    """Images/s of ``threads`` workers, each calling its ``make(worker)`` on the batches for ``seconds``."""

    def work(worker):
        fn, done, started = make(worker), 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for batch in batches:
                fn(batch)
                done += len(batch)
        return done

    make(threads)(batches[0])  # warm code paths and caches once
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        done = sum(pool.map(work, range(threads)))
    return round(done / (time.perf_counter() - started))
