import pickle

import h5py
import numpy as np
import pytest

from kit.ingest.store import CHUNK
from kit.train.loader import StoreDataset


def _row_of(images):
    return images[:, 0, 0, 0].astype(int) + 256 * images[:, 0, 0, 1].astype(int)


def _epoch_rows(ds):
    return np.concatenate([_row_of(ds[b][0]) for b in range(len(ds))])


def test_shuffled_epoch_serves_each_row_once_with_matching_labels(large_synth_store):
    rows = np.arange(0, 1100, 3)  # a fold's subset spread over every chunk
    ds = StoreDataset(large_synth_store, "train", rows, batch_size=32, shuffle=True, seed=1)
    served = []
    for b in range(len(ds)):
        images, labels = ds[b]
        assert images.dtype == np.uint8 and labels.dtype == np.float32
        assert (labels == _row_of(images) % 2).all()  # labels travel with their images
        served.append(_row_of(images))
    served = np.concatenate(served)
    assert len(served) == len(ds) * 32 and len(set(served)) == len(served)
    assert set(served) <= set(rows) and len(rows) - len(served) < 32  # only the last partial batch is dropped


def test_shuffle_is_chunk_windowed_and_changes_every_epoch(large_synth_store):
    ds = StoreDataset(large_synth_store, "train", np.arange(1100), batch_size=64, shuffle=True, seed=0, window_chunks=2)
    first = _epoch_rows(ds)
    assert not (np.diff(first) > 0).all()  # shuffled
    for b in range(len(ds)):  # a batch never needs more than two windows' chunks
        assert len(np.unique(ds.batch_rows(b) // CHUNK)) <= 4
    ds.on_epoch_end()
    second = _epoch_rows(ds)
    assert not np.array_equal(first, second)
    ds.set_epoch(0)
    assert np.array_equal(_epoch_rows(ds), first)  # order depends only on (seed, epoch): resumable


def test_in_memory_mode_serves_the_same_rows_fully_shuffled(large_synth_store):
    rows = np.arange(100, 900)
    mem = StoreDataset(large_synth_store, "train", rows, 50, shuffle=True, in_memory=True, seed=0)
    served = _epoch_rows(mem)
    assert sorted(served) == list(rows)
    assert len(np.unique(mem.batch_rows(0) // CHUNK)) == 4  # rows from all over, not from one window


def test_unshuffled_dataset_reads_rows_in_order_including_the_last_partial_batch(large_synth_store):
    rows = np.array([5, 7, 300, 301, 1099])
    ds = StoreDataset(large_synth_store, "train", rows, batch_size=2, labels=False)
    assert len(ds) == 3
    assert np.concatenate([_row_of(ds[b]) for b in range(3)]).tolist() == rows.tolist()
    with h5py.File(large_synth_store) as h5:
        assert np.array_equal(ds[1], h5["train/images"][300:302])


def test_augment_is_applied_per_batch_with_a_seed_from_epoch_and_index(large_synth_store):
    seen = []

    def augment(images, rng):
        seen.append(rng.integers(1 << 30))
        return images[:, ::-1]

    ds = StoreDataset(large_synth_store, "train", np.arange(256), 64, shuffle=True, augment=augment, seed=5)
    plain = StoreDataset(large_synth_store, "train", np.arange(256), 64, shuffle=True, seed=5)
    assert np.array_equal(ds[0][0], plain[0][0][:, ::-1])
    ds[0]
    assert seen[0] == seen[1]  # the same batch of the same epoch gets the same augmentation


def test_dataset_survives_pickling_for_process_workers(large_synth_store):
    ds = StoreDataset(large_synth_store, "train", np.arange(600), 100, shuffle=True, seed=2)
    ds[0]  # opens the file and fills the cache: neither may travel
    clone = pickle.loads(pickle.dumps(ds))
    assert np.array_equal(clone[3][0], ds[3][0])


@pytest.mark.parametrize("use_multiprocessing", [False, True])
def test_keras_fit_with_workers(large_synth_store, use_multiprocessing):
    import keras

    ds = StoreDataset(
        large_synth_store, "train", np.arange(512), 64, shuffle=True, workers=2, use_multiprocessing=use_multiprocessing
    )
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile("sgd", "binary_crossentropy")
    history = model.fit(ds, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


def test_pad_to_repeats_the_last_row_of_a_short_last_batch_only(large_synth_store):
    rows = np.arange(7)
    plain = StoreDataset(large_synth_store, "train", rows, 4, labels=False)
    padded = StoreDataset(large_synth_store, "train", rows, 4, labels=False, pad_to=2)
    np.testing.assert_array_equal(padded[0], plain[0])  # a full batch is left alone
    last = padded[1]
    assert len(last) == 4 and len(plain[1]) == 3
    np.testing.assert_array_equal(last[:3], plain[1])
    np.testing.assert_array_equal(last[3], plain[1][2])  # row 6 again
