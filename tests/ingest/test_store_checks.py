"""A store is used only with the competition, task, classes and image shape it was ingested for (issue 19)."""

import shutil
import subprocess
import sys

import h5py
import pytest

from kit.adapters.registry import get_adapter
from kit.errors import KitError
from kit.infer.predict import predict_run
from kit.ingest.store import check_store, open_store
from kit.ingest.writer import ingest
from kit.synth import synthesize
from kit.train.loop import train


def test_training_another_competition_on_a_store_is_refused_naming_both_sides(synth_store, tmp_path):
    with pytest.raises(KitError) as error:
        train("head-ct", store=synth_store, overrides=["model.backbone=tiny_cnn"], run_dir=tmp_path / "run")
    message = str(error.value)
    assert "expected a store of head-ct (binary, 2 classes, images 128x128x1)" in message
    assert "ingested for pcam" in message and "images 96x96x3" in message and "Fix: " in message
    assert not (tmp_path / "run").exists()  # refused before the run folder is made


def test_the_cli_refuses_it_too(synth_store, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kit",
            "train",
            "head-ct",
            "--store",
            str(synth_store),
            "--run-dir",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "ingested for pcam" in done.stderr and "Traceback" not in done.stderr


def test_a_store_of_the_same_competition_at_another_size_is_refused_for_a_run(tmp_path):
    raw = synthesize("isic", tmp_path / "raw", n_train=24, n_test=6, seed=0)
    for size in (32, 48):
        ingest("isic", raw, tmp_path / f"isic{size}.h5", workers=1, progress=False, size=size)
    with h5py.File(tmp_path / "isic48.h5") as h5:
        check_store(h5, "isic48.h5", get_adapter("isic"))  # a resizing adapter takes any stored side
        with pytest.raises(KitError, match="images 48x48x3 where the run trained on 32x32x3"):
            check_store(h5, "isic48.h5", get_adapter("isic"), image_shape=(32, 32, 3))


def test_predicting_a_run_from_another_competitions_store_is_refused(trained_run, tmp_path):
    raw = synthesize("head-ct", tmp_path / "raw", n_train=20, n_test=4, seed=0)
    ingest("head-ct", raw, tmp_path / "ct.h5", workers=1, progress=False)
    with pytest.raises(KitError, match="expected a store of pcam .* got .*ct.h5: ingested for head-ct"):
        predict_run(trained_run, store=tmp_path / "ct.h5")


def test_a_binary_store_of_an_older_kit_without_task_or_classes_still_opens(synth_store, tmp_path):
    old = tmp_path / "old.h5"
    shutil.copy(synth_store, old)
    with h5py.File(old, "a") as h5:
        del h5.attrs["task"], h5.attrs["classes"]
    with open_store(old, get_adapter("pcam")) as h5:
        assert h5.attrs["adapter"] == "pcam"
    with pytest.raises(KitError, match="ingested for pcam"):
        open_store(old, get_adapter("chest-xray")).close()
