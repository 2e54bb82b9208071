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
