"""`kit bench train`: images/s of the training step next to the loader's, in one JSON line naming the bound.

The step is timed on one fixed batch converted to a device tensor once (no input pipeline in the way), after a
warm-up that compiles it; the loader is ``StoreDataset`` with the competition's augmentation over ``--store``, or
over a synthetic store written to a temporary file when none is given. Whichever is slower bounds training. With
``--augment-on model`` the augmentation layers run inside the timed step and the loader serves plain batches.

Example:
    $ kit bench train --backbone compact_cnn --batch 64 --seconds 5
    {"bench": "train", "backbone": "compact_cnn", ..., "model_images_per_s": ..., "loader_images_per_s": ...,
     "bound": "model"}
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from kit.errors import KitError

__all__ = ["bench_train"]


def _synthetic_store(path: Path, shape, n: int, chunk: int) -> None:
    """A store with just what ``StoreDataset`` reads for training: random uint8 images and 0/1 labels."""
    import h5py

    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        h5.create_dataset("train/images", data=images, chunks=(min(chunk, n), *shape))
        h5.create_dataset("train/labels", data=(np.arange(n) % 2).astype(np.float32))


def _loader_rate(store, batch: int, seconds: float, augment) -> tuple[float, int]:
    """Images/s of the training loader over the store's train split, in os.cpu_count() threads, applying
    ``augment`` (a BatchAugmenter, or None when the augmentation runs in the model)."""
    import h5py

    from kit.bench import _images_per_s
    from kit.train.loader import StoreDataset

    with h5py.File(store, "r") as h5:
        n = len(h5["train/labels"])
    if n < batch:
        raise KitError(f"expected at least --batch {batch} train images in {store}, got {n}. Fix: a smaller --batch.")
    dataset = StoreDataset(store, "train", np.arange(n), batch, shuffle=True, augment=augment)
    threads = os.cpu_count() or 1
    _images_per_s(dataset, threads, seconds=0)  # page cache and code paths
    return _images_per_s(dataset, threads, seconds), threads


def _model_rate(backbone: str, shape, batch: int, seconds: float, scope, augment=()) -> tuple[float, int, float]:
    """Images/s of ``model.train_on_batch`` on one fixed device batch, after a warm-up; also the steps timed and
    the warm-up's seconds (tracing and compiling). ``augment``: layers in front (augment.on = "model")."""
    import keras

    from kit.models import create_model

    with scope():
        model = create_model(backbone, input_shape=shape, augment=augment)
        model.compile(keras.optimizers.Adam(1e-4), keras.losses.BinaryCrossentropy())
    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(rng.integers(0, 256, (batch, *shape)).astype(np.float32))
    y = keras.ops.convert_to_tensor((np.arange(batch) % 2).astype(np.float32).reshape(batch, 1))
    started = time.perf_counter()
    for _ in range(2):  # the first call traces and compiles; the loss comes back as a number, so each call syncs
        model.train_on_batch(x, y)
    warm_s = time.perf_counter() - started
    steps, started = 0, time.perf_counter()
    while steps < 3 or time.perf_counter() - started < seconds:
        model.train_on_batch(x, y)
        steps += 1
    rate = steps * batch / (time.perf_counter() - started)
    del model
    keras.backend.clear_session()
    return rate, steps, warm_s


def bench_train(
    backbone: str = "compact_cnn",
    batch_size: int = 64,
    precision: str = "auto",
    store=None,
    seconds: float = 5.0,
    competition: str = "pcam",
    augment_on: str = "cpu",
) -> dict:
    """Training-step images/s (synthetic device-resident batch) against the loader's images/s; the competition's
    augmentation runs in the loader (``augment_on="cpu"``) or as layers in the timed step ("model")."""
    import keras

    from kit.adapters.registry import get_adapter
    from kit.config import resolve_config
    from kit.models import list_backbones
    from kit.train.augment import build_augmentation
    from kit.train.batch_augment import BatchAugmenter
    from kit.train.device import detect_device, distribution_scope, set_precision
    from kit.train.model_augment import model_augmentation

    if backbone not in list_backbones():
        raise KitError(f"expected a backbone of {', '.join(list_backbones())}, got {backbone!r}. Fix: --backbone.")
    if batch_size < 1 or seconds <= 0:
        raise KitError(f"expected --batch >= 1 and --seconds > 0, got {batch_size} and {seconds}. Fix: e.g. 64, 5.")
    if augment_on not in ("cpu", "model"):
        raise KitError(f"expected --augment-on cpu or model, got {augment_on!r}. Fix: --augment-on model.")
    compose = build_augmentation(resolve_config(competition).augment.train)
    layers = model_augmentation(compose) if augment_on == "model" else ()
    batch_augment = BatchAugmenter(compose) if augment_on == "cpu" and compose is not None else None
    device = detect_device()
    scope = distribution_scope(device)
    previous = keras.mixed_precision.global_policy().name
    policy = set_precision(precision, device)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if store is None:
                shape = tuple(get_adapter(competition).image_spec(None).shape)
                store = Path(tmp) / "synthetic.h5"
                _synthetic_store(store, shape, max(8 * batch_size, 512), chunk=256)
                source = "synthetic"
            else:
                import h5py

                with h5py.File(store, "r") as h5:
                    shape = tuple(h5["train/images"].shape[1:])
                source = str(store)
            loader, threads = _loader_rate(store, batch_size, seconds, batch_augment)
        model, steps, warm_s = _model_rate(backbone, shape, batch_size, seconds, scope, layers)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return {
        "bench": "train",
        "backbone": backbone,
        "batch": batch_size,
        "image_shape": list(shape),
        "precision": policy,
        "augment_on": augment_on,
        "device": device.kind,
        "devices": device.count,
        "backend": device.backend,
        "model_images_per_s": round(model, 1),
        "model_steps": steps,
        "warmup_s": round(warm_s, 1),
        "loader_images_per_s": round(loader, 1),
        "loader_threads": threads,
        "loader_store": source,
        "bound": "model" if model <= loader else "loader",
    }
