"""Decode blocks of image files in worker processes straight into shared memory.

Returning decoded arrays from a process pool pickles every pixel, which costs more than the decode itself
(measured: a pickling pool ran at less than half the rate of threads; docs/benchmarks.md). Here workers write
into slots of one shared buffer and return only the failures, so the parallel decode costs no pixel copies
between processes.

Example:
    >>> with BlockDecoder(ImageSpec((96, 96, 3), "tiff"), block=512, workers=2) as pool:  # doctest: +SKIP
    ...     for images, failures in pool.map(list_of_path_lists):
    ...         ...  # images: (len(paths), 96, 96, 3) view, valid until the next item
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import signal
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import shared_memory

import numpy as np

from kit.adapters.image_spec import ImageSpec
from kit.ingest.decode import BadImage, read_image

__all__ = ["BlockDecoder"]

_worker_slots: np.ndarray | None = None  # each worker's view of the shared buffer
_worker_memory: shared_memory.SharedMemory | None = None


def _attach(name: str, shape: tuple[int, ...]) -> None:
    global _worker_slots, _worker_memory
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us cleanly
    _worker_memory = shared_memory.SharedMemory(name=name)
    _worker_slots = np.ndarray(shape, np.uint8, buffer=_worker_memory.buf)


def _decode_into(out: np.ndarray, paths: list[str], spec: ImageSpec) -> list[tuple[int, str]]:
    failures = []
    for i, path in enumerate(paths):
        try:
            out[i] = read_image(path, spec)
        except BadImage as e:
            failures.append((i, str(e)))
        except Exception as e:  # noqa: BLE001  a decoder crash on one file must not stop the ingest
            failures.append((i, f"decoder error: {type(e).__name__}: {e}"))
    return failures


def _context() -> mp.context.BaseContext:
    # fork starts a worker many times faster than spawn (measured: 4x on a 20,000-image ingest). Forking after
    # TensorFlow/JAX started their thread pools can deadlock, so those parents spawn.
    unsafe = any(name in sys.modules for name in ("tensorflow", "jax", "torch"))
    if "fork" in mp.get_all_start_methods() and not unsafe:
        return mp.get_context("fork")
    return mp.get_context("spawn")


def _decode_slot(slot: int, paths: list[str], spec: ImageSpec) -> list[tuple[int, str]]:
    return _decode_into(_worker_slots[slot], paths, spec)


class BlockDecoder:
    """Decode path blocks in order, ``workers`` processes at a time (``workers <= 1``: in this process)."""

    def __init__(self, spec: ImageSpec, block: int = 512, workers: int = 2):
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.spec, self.shape, self.block, self.workers = spec, tuple(spec.shape), block, workers
        self._memory = self._pool = self._slots = None

    def __enter__(self) -> BlockDecoder:
        n_slots = 1 if self.workers <= 1 else 2 * self.workers  # two in flight per worker keeps them busy
        slots_shape = (n_slots, self.block, *self.shape)
        if self.workers <= 1:
            self._slots = np.empty(slots_shape, np.uint8)
            return self
        self._memory = shared_memory.SharedMemory(create=True, size=int(np.prod(slots_shape)))
        self._slots = np.ndarray(slots_shape, np.uint8, buffer=self._memory.buf)
        self._pool = ProcessPoolExecutor(
            self.workers,
            mp_context=_context(),
            initializer=_attach,
            initargs=(self._memory.name, slots_shape),
        )
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._slots = None
        if self._memory is not None:
            self._memory.close()
            self._memory.unlink()

    def map(self, blocks: Iterable[list[str]]) -> Iterator[tuple[np.ndarray, list[tuple[int, str]]]]:
        """Yield (images, failures) per block, in order. ``images`` is reused after the next item."""
        if self._pool is None:
            for paths in blocks:
                out = self._slots[0, : len(paths)]
                yield out, _decode_into(out, paths, self.spec)
            return
        free = collections.deque(range(len(self._slots)))
        pending = collections.deque()
        blocks = iter(blocks)
        while True:
            while free:
                paths = next(blocks, None)
                if paths is None:
                    break
                slot = free.popleft()
                pending.append((slot, len(paths), self._pool.submit(_decode_slot, slot, paths, self.spec)))
            if not pending:
                return
            slot, n, future = pending.popleft()
            failures = future.result()
            yield self._slots[slot, :n], failures
            free.append(slot)  # the caller has consumed the view by the time we resume
