import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

FIXTURES = Path(__file__).parent / "fixtures"
REAL_PCAM = FIXTURES / "pcam-real"


@pytest.fixture(scope="session")
def synth_pcam_master(tmp_path_factory) -> Path:
    """A small synthetic PCam folder, shared read-only by the session; copy it before changing it."""
    from kit.synth import synthesize

    return synthesize("pcam", tmp_path_factory.mktemp("synth") / "raw", n_train=96, n_test=24, seed=0)


@pytest.fixture
def synth_pcam(synth_pcam_master, tmp_path) -> Path:
    """A private copy of the synthetic PCam folder that a test may damage."""
    return Path(shutil.copytree(synth_pcam_master, tmp_path / "raw"))


@pytest.fixture
def real_pcam(tmp_path) -> Path:
    return Path(shutil.copytree(REAL_PCAM, tmp_path / "real"))


@pytest.fixture(scope="session")
def synth_store(synth_pcam_master, tmp_path_factory) -> Path:
    """The synthetic PCam folder ingested into a store (96 train, 24 test), shared read-only by the session."""
    from kit.ingest.writer import ingest

    store = tmp_path_factory.mktemp("store") / "pcam.h5"
    ingest("pcam", synth_pcam_master, store, workers=1, progress=False)
    return store


@pytest.fixture(scope="session")
def large_synth_store(tmp_path_factory) -> Path:
    """A store of 1,100 train images (several HDF5 chunks) written directly, for loader tests."""
    import h5py
    import numpy as np

    store = tmp_path_factory.mktemp("large") / "pcam.h5"
    n = 1100
    images = np.zeros((n, 8, 8, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(n) % 256  # each image says which row it is
    images[:, 0, 0, 1] = np.arange(n) // 256
    with h5py.File(store, "w") as h5:
        h5.create_dataset("train/images", data=images, chunks=(256, 8, 8, 3))
        h5.create_dataset("train/labels", data=np.arange(n) % 2)
        h5.create_dataset("train/ids", data=[f"id{k}" for k in range(n)], dtype=h5py.string_dtype())
        h5.create_dataset("test/images", data=images[:300], chunks=(256, 8, 8, 3))
        h5.create_dataset("test/ids", data=[f"t{k}" for k in range(300)], dtype=h5py.string_dtype())
        h5.attrs["complete"] = True
    return store


@pytest.fixture(scope="session")
def train_store(tmp_path_factory) -> Path:
    """A synthetic PCam store big enough for a tiny model to learn (320 train, 48 test)."""
    from kit.ingest.writer import ingest
    from kit.synth import synthesize

    root = tmp_path_factory.mktemp("trainable")
    synthesize("pcam", root / "raw", n_train=320, n_test=48, seed=1)
    ingest("pcam", root / "raw", root / "pcam.h5", workers=1, progress=False)
    return root / "pcam.h5"


# A recipe small enough for CPU tests that still learns the synthetic task.
# (The crop keeps the synthetic positives' centre feature and lets the global pooling see it undiluted.)
TINY_RECIPE = [
    "model.backbone=tiny_cnn",
    "model.crop=48",
    "folds.k=2",
    "train.epochs=10",
    "data.batch_size=32",
    "train.lr=3e-3",
    "data.in_memory=true",
]


@pytest.fixture(scope="session")
def trained_run(train_store, tmp_path_factory) -> Path:
    """A finished two-fold tiny run on ``train_store``, shared read-only; copy it before predicting into it."""
    from kit.train.loop import train

    return train(
        "pcam", store=train_store, overrides=TINY_RECIPE, run_dir=tmp_path_factory.mktemp("trained") / "run", verbose=0
    ).run_dir
