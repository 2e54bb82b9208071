"""Stream a competition's raw images into one HDF5 store: parallel, bounded memory, resumable, nothing dropped.

The store is written as ``<store>.partial`` in blocks; after each block the rows, the quarantine entries and the
split's ``consumed`` counter are flushed together, so an interrupted run (Ctrl-C, kill -9) continues from the last
block. Only a finished store gets ``complete=True`` and is renamed to its final name: a half-written store is never
mistaken for a finished one. Problems in the test split stop the ingest with an error (a submission needs every
test id); the next run re-reads the whole test split.

Example:
    >>> summary = ingest("pcam", raw="data/pcam/raw", store="data/pcam/pcam.h5")  # doctest: +SKIP
    >>> summary.n_train, summary.n_test  # doctest: +SKIP
    (220025, 57458)
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import os
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

import kit
from kit.adapters.base import Adapter
from kit.adapters.image_spec import ImageSpec
from kit.adapters.registry import get_adapter
from kit.errors import KitError
from kit.ingest.decode_pool import BlockDecoder
from kit.ingest.listing import Reject, SplitPlan, plan_split
from kit.ingest.store import QUARANTINE_FIELDS, chunk_rows, is_complete, read_quarantine

__all__ = ["ingest", "IngestSummary"]

SPLITS = ("train", "test")


@dataclasses.dataclass
class IngestSummary:
    store: Path
    n_train: int
    n_test: int
    quarantine: list[Reject]
    seconds: float
    images_per_s: float
    skipped: bool  # True when a finished store was found and left alone
    excluded: list[Reject] = dataclasses.field(default_factory=list)  # files the adapter excludes (masks), this run

    def report(self) -> str:
        size = self.store.stat().st_size / 2**20 if self.store.exists() else 0.0
        head = (
            "store already complete, left alone (--force rebuilds it)"
            if self.skipped
            else (f"ingested in {self.seconds:.1f} s ({self.images_per_s:,.0f} images/s this run)")
        )
        lines = [
            f"{self.store}: {head}",
            f"  train {self.n_train:,} images, test {self.n_test:,} images, {size:,.1f} MiB",
        ]
        if self.quarantine:
            lines.append(
                f"  quarantined {len(self.quarantine)} rows/files (kept out of the store, listed in /quarantine):"
            )
            lines += [f"    {q.split:5} {q.id or '-'}: {q.reason}" for q in self.quarantine[:20]]
            if len(self.quarantine) > 20:
                lines.append(
                    f"    ... {len(self.quarantine) - 20} more: kit.ingest.store.read_quarantine('{self.store}')"
                )
        if self.excluded:
            reasons = collections.Counter(r.reason.split(" of ")[0].split(" (")[0] for r in self.excluded)
            kinds = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
            lines.append(f"  not images to classify, left out as the adapter declares: {kinds}; e.g.")
            lines += [f"    {q.path}: {q.reason}" for q in self.excluded[:3]]
        return "\n".join(lines)


def ingest(
    competition: str,
    raw,
    store,
    workers: int | None = None,
    force: bool = False,
    block: int | None = None,
    progress: bool = True,
    size: int | None = None,
) -> IngestSummary:
    """Ingest ``raw`` (Kaggle layout) into ``store``; see the module docstring for the guarantees.

    ``size`` sets the stored side for adapters that resize (ISIC, folder datasets); PCam is stored as it is.
    ``block``: images per block, by default two HDF5 chunks (512 PCam images; fewer larger images, so the
    decode buffers in shared memory stay ~50 MiB whatever the image size).
    """
    adapter = get_adapter(competition)
    spec = adapter.image_spec(size)
    block = block or 2 * chunk_rows(spec.shape)
    raw, store = Path(raw), Path(store)
    partial = store.with_name(store.name + ".partial")
    workers = os.cpu_count() or 1 if workers is None else workers
    if store.exists() and not force:
        if not is_complete(store):
            raise KitError(f"{store} exists but is not a finished kit store. Fix: move it away or pass --force.")
        return _summary(store, store, 0.0, 0, skipped=True)
    if force:
        for path in (store, partial):
            path.unlink(missing_ok=True)
    plans = {split: plan_split(adapter, raw, split) for split in SPLITS}
    store.parent.mkdir(parents=True, exist_ok=True)
    started, done_now = time.perf_counter(), 0
    with _open_partial(partial) as h5:
        _write_header(h5, adapter, raw, spec)
        total = sum(len(p.ids) for p in plans.values())
        already = sum(_prepare_split(h5, plans[s]) for s in SPLITS)
        # disable=None: a bar on a terminal, nothing in a log file
        bar = tqdm(
            total=total, initial=already, unit="img", desc=f"ingest {adapter.name}", disable=None if progress else True
        )
        try:
            with BlockDecoder(spec, block, workers) as decoder:
                for split in SPLITS:
                    done_now += _fill_split(h5, plans[split], decoder, block, bar)
        except KeyboardInterrupt:
            raise KitError(
                f"interrupted; {partial} keeps every finished block. Fix: rerun the same command to resume."
            ) from None
        finally:
            bar.close()
        test_problems = [q for q in _quarantine(h5) if q.split == "test"]
        if not test_problems:
            _finish(h5)
    seconds = time.perf_counter() - started
    if test_problems:
        listing = "\n".join(f"  {q.path or q.id}: {q.reason}" for q in test_problems[:20])
        raise KitError(
            f"{len(test_problems)} test file(s) cannot be used, and a submission needs every test id:\n{listing}\n"
            f"Fix: restore these files from the Kaggle download (`kit download {adapter.name}`), then rerun the same "
            f"command; finished train blocks are kept in {partial} and the test split is read again."
        )
    os.replace(partial, store)
    excluded = [r for plan in plans.values() for r in plan.excluded]
    return dataclasses.replace(_summary(store, store, seconds, done_now, skipped=False), excluded=excluded)


def _open_partial(partial: Path) -> h5py.File:
    if partial.exists():
        try:
            h5 = h5py.File(partial, "a")
            h5.attrs.get("kit_version")
            return h5
        except Exception as e:  # noqa: BLE001  a kill -9 during a flush can leave the file unreadable
            warnings.warn(f"could not reopen the interrupted store {partial} ({e}); starting over.", stacklevel=2)
            partial.unlink()
    return h5py.File(partial, "w")


def _write_header(h5: h5py.File, adapter: Adapter, raw: Path, spec: ImageSpec) -> None:
    if "image_shape" in h5.attrs and tuple(h5.attrs["image_shape"]) != spec.shape:
        raise KitError(
            f"the interrupted store was being written at {tuple(h5.attrs['image_shape'])}, not "
            f"{spec.shape}. Fix: rerun with the earlier --size, or pass --force to start over."
        )
    h5.attrs.update(
        {
            "adapter": adapter.name,
            "slug": adapter.slug,
            "source": str(raw.resolve()),
            "kit_version": kit.__version__,
            "image_shape": spec.shape,
            "fit": spec.fit,
            "task": adapter.task,
            "classes": list(adapter.class_names),
            "complete": False,
        }
    )
    if "quarantine" not in h5:
        group = h5.create_group("quarantine")
        for field in QUARANTINE_FIELDS:
            group.create_dataset(field, (0,), h5py.string_dtype(), maxshape=(None,), chunks=(1024,))
        h5.attrs["quarantine_rows"] = 0
    _truncate(h5["quarantine"], int(h5.attrs["quarantine_rows"]))  # drop rows of a block cut short


def _prepare_split(h5: h5py.File, plan: SplitPlan) -> int:
    """Create the split's group, or check a resumed one still matches the plan; returns rows already done."""
    group = h5.get(plan.split)
    had_problems = group is not None and plan.split == "test" and group.attrs.get("rejected", 0) > 0
    if group is not None and (group.attrs.get("plan") != plan.fingerprint or had_problems):
        _reset_split(h5, plan.split)
        group = None
    if group is None:
        group = h5.create_group(plan.split)
        shape = tuple(h5.attrs["image_shape"])
        group.create_dataset(
            "images", (0, *shape), np.uint8, maxshape=(None, *shape), chunks=(chunk_rows(shape), *shape)
        )
        group.create_dataset("ids", (0,), h5py.string_dtype(), maxshape=(None,), chunks=(4096,))
        if plan.labels is not None:
            per_row = plan.labels.shape[1:]  # () for class indices, (C,) for multi-hot rows
            group.create_dataset(
                "labels", (0, *per_row), plan.labels.dtype, maxshape=(None, *per_row), chunks=(4096, *per_row)
            )
        if plan.groups is not None:
            group.create_dataset("groups", (0,), h5py.string_dtype(), maxshape=(None,), chunks=(4096,))
        group.attrs.update({"plan": plan.fingerprint, "consumed": 0, "written": 0, "rejected": 0})
        _append_quarantine(h5, plan.rejects)
        group.attrs["rejected"] = len(plan.rejects)
        h5.flush()
    _truncate(group, int(group.attrs["written"]))
    return int(group.attrs["consumed"])


def _fill_split(h5: h5py.File, plan: SplitPlan, decoder: BlockDecoder, block: int, bar) -> int:
    group = h5[plan.split]
    start = int(group.attrs["consumed"])
    starts = range(start, len(plan.ids), block)
    blocks = (plan.paths[s : s + block] for s in starts)
    for s, (images, failures) in zip(starts, decoder.map(blocks)):
        stop = s + len(images)
        bad = {i for i, _ in failures}
        keep = [i for i in range(len(images)) if i not in bad]
        written = int(group.attrs["written"])
        _append(group["images"], images if not bad else images[keep], written)
        _append(group["ids"], [plan.ids[s + i] for i in keep], written)
        if plan.labels is not None:
            _append(group["labels"], plan.labels[s:stop][keep], written)
        if plan.groups is not None:
            _append(group["groups"], [plan.groups[s + i] for i in keep], written)
        _append_quarantine(h5, [Reject(plan.split, plan.ids[s + i], plan.paths[s + i], r) for i, r in failures])
        group.attrs.update(
            {"consumed": stop, "written": written + len(keep), "rejected": int(group.attrs["rejected"]) + len(failures)}
        )
        h5.flush()  # the block, its quarantine rows and the counters reach the disk together
        bar.update(len(images))
    return len(plan.ids) - start


def _append(dataset: h5py.Dataset, values, at: int) -> None:
    dataset.resize(at + len(values), axis=0)
    if len(values):
        dataset[at:] = values


def _truncate(group: h5py.Group, rows: int) -> None:
    for dataset in group.values():
        if dataset.shape[0] > rows:
            dataset.resize(rows, axis=0)


def _append_quarantine(h5: h5py.File, rejects: list[Reject]) -> None:
    at = int(h5.attrs["quarantine_rows"])
    for field in QUARANTINE_FIELDS:
        _append(h5[f"quarantine/{field}"], [getattr(r, field) for r in rejects], at)
    h5.attrs["quarantine_rows"] = at + len(rejects)


def _quarantine(h5: h5py.File) -> list[Reject]:
    columns = [h5[f"quarantine/{f}"].asstr()[:] for f in QUARANTINE_FIELDS]
    return [Reject(*row) for row in zip(*columns)]


def _reset_split(h5: h5py.File, split: str) -> None:
    """Forget a split (its plan changed, or its test problems must be re-read) and its quarantine rows."""
    kept = [q for q in _quarantine(h5) if q.split != split]
    del h5[split]
    h5.attrs["quarantine_rows"] = 0
    _truncate(h5["quarantine"], 0)
    _append_quarantine(h5, kept)


def _finish(h5: h5py.File) -> None:
    h5.attrs.update(
        {
            "n_train": int(h5["train"].attrs["written"]),
            "n_test": int(h5["test"].attrs["written"]),
            "n_quarantined": int(h5.attrs["quarantine_rows"]),
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
    )
    h5.flush()
    h5.attrs["complete"] = True  # last: everything above is on disk before the store claims to be finished
    h5.flush()


def _summary(store: Path, path: Path, seconds: float, n_done: int, skipped: bool) -> IngestSummary:
    with h5py.File(path, "r") as h5:
        n_train, n_test = int(h5.attrs["n_train"]), int(h5.attrs["n_test"])
    quarantine = [Reject(*row) for row in read_quarantine(path).itertuples(index=False)]
    return IngestSummary(store, n_train, n_test, quarantine, seconds, n_done / seconds if seconds else 0.0, skipped)
