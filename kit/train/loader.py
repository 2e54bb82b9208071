"""A ``keras.utils.PyDataset`` over the HDF5 store, restricted to some rows (a fold's training or validation set).

HDF5 reads whole chunks about a thousand times faster than single random rows (docs/benchmarks.md), so a
shuffled epoch is built from chunks: the chunk order is shuffled, chunks are grouped into windows of
``window_chunks``, and the rows of each window are shuffled together (a shuffle buffer of ``window_chunks``
chunks: 2,048 PCam images). A batch then touches only the chunks of its window, which an LRU cache keeps. With
``in_memory=True`` the rows are loaded once and every epoch is a full random permutation. The order of an epoch
and the augmentation of each batch depend only on (seed, epoch, batch index), so workers (threads or processes)
do not change what the model sees.

Example:
    >>> from kit.train.loader import StoreDataset
    >>> ds = StoreDataset("data/pcam/pcam.h5", "train", range(1000), 128, shuffle=True)  # doctest: +SKIP
    >>> x, y = ds[0]; x.shape, x.dtype, y.shape  # doctest: +SKIP
    ((128, 96, 96, 3), dtype('uint8'), (128,))
"""

from __future__ import annotations

import collections
import math
import os
import threading

import h5py
import keras
import numpy as np

from kit.errors import KitError
from kit.ingest.store import chunk_rows

__all__ = ["StoreDataset", "fits_in_memory"]


class StoreDataset(keras.utils.PyDataset):
    """Batches ``(images uint8, labels float32)`` (or images only with ``labels=False``) from one store split.

    Args:
        store: path of a finished kit store.
        split: "train" or "test".
        rows: store row indices to serve (any order; served sorted unless shuffled).
        batch_size: images per batch; a shuffled dataset drops the last partial batch.
        labels: yield labels too.
        class_weight: ``{class index: weight}``; when given, batches are (images, labels, per-image weights).
        n_classes: serve class indices as one-hot rows of this width (multiclass: the softmax's targets).
        pad_to: a batch shorter than a multiple of this (the last) repeats its last row up to one; the caller drops
            the extra predictions (JAX's DataParallel needs batches that divide over its devices).
        shuffle: chunk-window shuffle (or full shuffle in memory), new order every epoch.
        augment: ``f(images, rng) -> images`` applied to each batch (e.g. a ``kit.train.batch_augment.BatchAugmenter``).
        seed, epoch: the epoch order and augmentation come from these; ``epoch`` resumes an interrupted fold.
        in_memory: load the rows into RAM once (see ``fits_in_memory``).
        window_chunks: chunks shuffled together when streaming.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of ``keras.utils.PyDataset``.
    """

    def __init__(
        self,
        store,
        split,
        rows,
        batch_size,
        *,
        labels=True,
        shuffle=False,
        augment=None,
        seed=0,
        epoch=0,
        in_memory=False,
        window_chunks=8,
        class_weight=None,
        n_classes=None,
        pad_to=1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.store, self.split = str(store), split
        self.rows = np.unique(np.asarray(rows, dtype=np.int64))
        if len(self.rows) == 0:
            raise KitError(f"expected some {split} rows to serve, got none. Fix: check the folds.")
        if batch_size < 1:
            raise KitError(f"expected data.batch_size >= 1, got {batch_size}. Fix: --set data.batch_size=64.")
        self.batch_size, self.with_labels, self.shuffle = int(batch_size), labels, shuffle
        self.augment, self.seed, self.epoch = augment, int(seed), int(epoch)
        self.n_classes, self.pad_to = n_classes, max(1, int(pad_to))
        self._one_hot = np.eye(n_classes, dtype=np.float32) if n_classes else None  # row k: class k's target
        self._weight_of = (
            None
            if class_weight is None
            else np.array([class_weight.get(k, 1.0) for k in range(max(class_weight) + 1)], np.float32)
        )
        self.in_memory, self.window_chunks = in_memory, max(1, int(window_chunks))
        with h5py.File(self.store, "r") as h5:
            images = h5[f"{split}/images"]
            shape, chunks = images.shape, images.chunks
        if self.rows[0] < 0 or self.rows[-1] >= shape[0]:
            raise KitError(
                f"expected {split} rows in 0..{shape[0] - 1} of {self.store}, got {self.rows[0]}.."
                f"{self.rows[-1]}. Fix: the folds belong to another store; start a new run."
            )
        # whole-chunk reads are the fast ones: serve by the store's own chunks
        self.chunk = chunks[0] if chunks else chunk_rows(shape[1:])
        self._order = self._epoch_order()
        self._reset_handles()

    # h5py handles, caches and locks belong to one process: rebuild them after pickling to a worker process.
    def _reset_handles(self):
        self._h5 = None
        self._lock = threading.Lock()
        self._chunks: collections.OrderedDict = collections.OrderedDict()
        self._memory = None
        self._labels = None

    def close(self) -> None:
        """Drop the images held in RAM and the open file. Keras' TensorFlow input pipeline keeps a reference to a
        dataset after ``fit`` returns, so a finished fold must let its images go itself; reading again reopens."""
        with self._lock:
            if self._h5 is not None:
                self._h5.close()
            self._h5, self._memory, self._labels = None, None, None
            self._chunks.clear()

    def __getstate__(self):
        state = dict(self.__dict__)
        for key in ("_h5", "_lock", "_chunks", "_memory", "_labels"):
            state.pop(key)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._reset_handles()

    def __len__(self) -> int:
        n = len(self.rows)
        return n // self.batch_size if self.shuffle and n >= self.batch_size else math.ceil(n / self.batch_size)

    def on_epoch_end(self):
        self.epoch += 1
        self._order = self._epoch_order()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self._order = self._epoch_order()

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range 0..{len(self) - 1}")
        rows = self.batch_rows(index)
        if len(rows) % self.pad_to:  # a short last batch, repeated to a size every device can take its part of
            rows = np.concatenate([rows, np.repeat(rows[-1:], self.pad_to - len(rows) % self.pad_to)])
        return self._serve(rows, [self.seed, self.epoch, index])

    def replica_batch(self, index: int, replica: int, replicas: int):
        """Replica ``replica``'s share of batch ``index`` when ``replicas`` replicas (of several workers) train on
        each batch together: its rows split in ``replicas`` near-equal contiguous parts (``np.array_split``), so the
        replicas' shares make up the batch, in order, and each worker reads and augments only its own.

        Example:
            >>> [len(ds.replica_batch(0, r, 2)[0]) for r in range(2)]  # doctest: +SKIP
            [64, 64]
        """
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range 0..{len(self) - 1}")
        if not 0 <= replica < replicas <= len(self.batch_rows(index)):
            raise KitError(
                f"expected a replica in 0..{replicas - 1} and at most {len(self.batch_rows(index))} replicas (the "
                f"batch's images), got replica {replica} of {replicas}. Fix: --set data.batch_size={replicas * 32}."
            )
        rows = np.array_split(self.batch_rows(index), replicas)[replica]
        return self._serve(rows, [self.seed, self.epoch, index, replica])

    def _serve(self, rows: np.ndarray, key: list[int]):
        images = self._read(rows)
        if self.augment is not None:
            images = self.augment(images, np.random.default_rng(key))
        if not self.with_labels:
            return images
        labels = self._all_labels()[rows]
        targets = self._one_hot[labels] if self.n_classes else labels.astype(np.float32)
        if self._weight_of is None:
            return images, targets
        return images, targets, self._weight_of[labels]

    def batch_rows(self, index: int) -> np.ndarray:
        """Store rows of batch ``index`` in the current epoch (what ``self[index]`` serves)."""
        return self._order[index * self.batch_size : (index + 1) * self.batch_size]

    def _epoch_order(self) -> np.ndarray:
        if not self.shuffle:
            return self.rows
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.in_memory:
            return rng.permutation(self.rows)
        chunks, chunk_index = np.unique(self.rows // self.chunk, return_inverse=True)
        window_of_chunk = rng.permutation(len(chunks)) // self.window_chunks
        # sort by window, randomly within a window: one O(n log n) pass however many windows there are
        return self.rows[np.lexsort((rng.random(len(self.rows)), window_of_chunk[chunk_index]))]

    def _file(self) -> h5py.File:
        if self._h5 is None:
            self._h5 = h5py.File(self.store, "r")
        return self._h5

    def _all_labels(self) -> np.ndarray:
        with self._lock:
            if self._labels is None:
                self._labels = self._file()[f"{self.split}/labels"][:]
            return self._labels

    def _read(self, rows: np.ndarray) -> np.ndarray:
        if self.in_memory:
            with self._lock:
                if self._memory is None:
                    self._memory = self._load_all()
            return self._memory[np.searchsorted(self.rows, rows)]
        if not self.shuffle:  # rows ascend: read the covering slice once, then pick
            with self._lock:
                block = self._file()[f"{self.split}/images"][rows[0] : rows[-1] + 1]
            return block[rows - rows[0]]
        out = None
        for chunk in np.unique(rows // self.chunk):
            data = self._chunk(int(chunk))
            mask = rows // self.chunk == chunk
            if out is None:
                out = np.empty((len(rows),) + data.shape[1:], data.dtype)
            out[mask] = data[rows[mask] - chunk * self.chunk]
        return out

    def _chunk(self, chunk: int) -> np.ndarray:
        with self._lock:
            if chunk in self._chunks:
                self._chunks.move_to_end(chunk)
                return self._chunks[chunk]
            data = self._file()[f"{self.split}/images"][chunk * self.chunk : (chunk + 1) * self.chunk]
            self._chunks[chunk] = data
            while len(self._chunks) > 2 * self.window_chunks:  # the current window plus the next one
                self._chunks.popitem(last=False)
            return data

    def _load_all(self) -> np.ndarray:
        images = self._file()[f"{self.split}/images"]
        out = np.empty((len(self.rows),) + images.shape[1:], images.dtype)
        chunk_of = self.rows // self.chunk
        for chunk in np.unique(chunk_of):  # whole-chunk reads, never per-row ones
            mask = chunk_of == chunk
            out[mask] = images[chunk * self.chunk : (chunk + 1) * self.chunk][self.rows[mask] - chunk * self.chunk]
        return out


def fits_in_memory(n_images: int, image_shape, fraction: float = 0.4) -> bool:
    """True when ``n_images`` uint8 images take less than ``fraction`` of this machine's RAM."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return False
    return n_images * int(np.prod(image_shape)) < fraction * total
