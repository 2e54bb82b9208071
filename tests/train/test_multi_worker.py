"""One fold on several machines: TF_CONFIG parsing, and two TensorFlow workers on loopback training one fold."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from conftest import TINY_RECIPE

from kit.errors import KitError
from kit.infer.predict import predict_rows
from kit.models.build import build_task_model
from kit.run import RunFolder
from kit.train.device import Device
from kit.train.device.multi_worker import Cluster, check_multi_worker, cluster_from_tf_config
from kit.train.folds import fold_rows
from kit.train.loader import StoreDataset


def _tf_config(cluster, task):
    return json.dumps({"cluster": cluster, "task": task})


def test_tf_config_names_the_cluster_and_the_chief():
    workers = {"worker": ["a:1", "b:1", "c:1"]}
    assert cluster_from_tf_config(None) is None and cluster_from_tf_config("  ") is None
    assert cluster_from_tf_config(_tf_config(workers, {"type": "worker", "index": 0})) == Cluster(3, 0, True)
    assert cluster_from_tf_config(_tf_config(workers, {"type": "worker", "index": 2})) == Cluster(3, 2, False)
    with_chief = {"chief": ["a:1"], "worker": ["b:1"]}
    assert cluster_from_tf_config(_tf_config(with_chief, {"type": "chief", "index": 0})) == Cluster(2, 0, True)
    assert cluster_from_tf_config(_tf_config(with_chief, {"type": "worker", "index": 0})) == Cluster(2, 1, False)
    # one task: nothing to distribute, train as on one machine
    assert cluster_from_tf_config(_tf_config({"worker": ["a:1"]}, {"type": "worker", "index": 0})) is None


@pytest.mark.parametrize(
    "text, words",
    [
        ("{not json", "expected TF_CONFIG to be JSON"),
        ('["worker"]', 'a "cluster"'),
        (_tf_config({"worker": ["a:1", "b:1"]}, None), "task to name a type"),
        (_tf_config({"worker": ["a:1", "b:1"]}, {"type": "ps", "index": 0}), "task to name a type"),
        (_tf_config({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 2}), "index in 0..1"),
        (_tf_config({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": "0"}), "index in 0..1"),
        (_tf_config({"worker": ["a:1"], "ps": ["b:1"]}, {"type": "worker", "index": 0}), "only chief and worker"),
        (_tf_config({"worker": "a:1,b:1"}, {"type": "worker", "index": 0}), "list of host:port"),
    ],
)
def test_a_bad_tf_config_is_a_kit_error_with_a_fix(text, words):
    with pytest.raises(KitError, match="Fix: set TF_CONFIG") as error:
        cluster_from_tf_config(text)
    assert words in str(error.value)


def test_a_time_budget_is_refused_when_several_workers_train():
    two = Device("cpu", 1, ("CPU",), "tensorflow", workers=2, worker=1, chief=False)
    with pytest.raises(KitError, match="no --max-minutes"):
        check_multi_worker(two, 5)
    check_multi_worker(two, None)
    check_multi_worker(Device("cpu", 1, ("CPU",), "tensorflow"), 5)


def test_the_replicas_shares_make_up_each_batch_in_order(train_store):
    data = StoreDataset(train_store, "train", range(0, 300, 2), 32, shuffle=True, seed=3, epoch=2)
    for index in (0, len(data) - 1):
        images, labels = data[index]
        shares = [data.replica_batch(index, r, 3) for r in range(3)]
        assert [len(s[0]) for s in shares] == [11, 11, 10]
        np.testing.assert_array_equal(np.concatenate([s[0] for s in shares]), images)  # no augmentation here
        np.testing.assert_array_equal(np.concatenate([s[1] for s in shares]), labels)
    with pytest.raises(KitError, match="at most 32 replicas"):
        data.replica_batch(0, 0, 33)


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _weights(path: Path) -> list[np.ndarray]:
    arrays = []
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda name, item: arrays.append((name, item[()])) if isinstance(item, h5py.Dataset) else None)
    return arrays


def _two_workers(store, tmp_path, *sets_of_worker) -> tuple[list[int], list[str], list[Path]]:
    """Run `kit train` of fold 0 on two workers on loopback, worker i with the tiny recipe plus ``sets_of_worker[i]``,
    and the same --run-dir; return their exit codes, outputs and TMPDIRs (a non-chief's scratch folder goes there)."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs, scratch = [], []
    for index, sets in enumerate(sets_of_worker):
        command = [
            sys.executable,
            "-m",
            "kit",
            "train",
            "pcam",
            "--store",
            str(store),
            "--run-dir",
            str(tmp_path / "run"),
        ]
        command += ["--folds", "0"] + [a for s in TINY_RECIPE + sets for a in ("--set", s)]
        scratch.append(tmp_path / f"tmp{index}")
        scratch[-1].mkdir()
        env = dict(
            os.environ,
            TF_CONFIG=_tf_config(cluster, {"type": "worker", "index": index}),
            TMPDIR=str(scratch[-1]),
            TF_CPP_MIN_LOG_LEVEL="3",
            CUDA_VISIBLE_DEVICES="",
        )
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for proc in procs:  # a hung collective fails the test instead of blocking it
            outputs.append(proc.communicate(timeout=240)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return [proc.returncode for proc in procs], outputs, scratch


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="MultiWorkerMirroredStrategy is TensorFlow's")
def test_two_workers_on_loopback_train_one_fold_to_identical_weights(train_store, tmp_path):
    run = tmp_path / "run"  # both see it, as on a shared filesystem: only the chief may write it
    # 3 epochs, validated every epoch; batch 24 over 160 train rows: 6 global steps of 12 images per worker
    sets = ["train.epochs=3", "data.batch_size=24"]
    codes, outputs, scratch = _two_workers(train_store, tmp_path, sets, sets)
    assert codes == [0, 0], outputs

    chief = run / "fold0"
    assert (chief / "done.json").exists() and (run / "metrics.json").exists()
    assert json.loads((run / "env.json").read_text())["device"]["workers"] == 2
    worker = list(scratch[1].glob("kit-worker1-*/run/fold0"))
    assert len(worker) == 1, outputs[1]
    worker = worker[0]
    assert not list(scratch[0].iterdir())  # the chief wrote no scratch files
    assert (
        json.loads((chief / "done.json").read_text())["best_epoch"]
        == json.loads((worker / "done.json").read_text())["best_epoch"]
    )
    for (name, a), (other, b) in zip(_weights(chief / "best.weights.h5"), _weights(worker / "best.weights.h5")):
        assert name == other
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6, err_msg=name)
    assert len(_weights(chief / "best.weights.h5")) > 0
    # the validation predictions: every validation row once, in row order, gathered from both workers' shares;
    # what the saved weights predict on one machine
    pred, twin = np.load(chief / "valid_pred.npy"), np.load(worker / "valid_pred.npy")
    np.testing.assert_allclose(pred, twin, atol=1e-6)
    folder = RunFolder(run)
    _, valid_rows = fold_rows(folder.read_folds(), 0)
    model = build_task_model(folder.read_config().model, (96, 96, 3), "binary", ("0", "1"))
    model.load_weights(chief / "best.weights.h5")
    alone = predict_rows(model, train_store, "train", valid_rows, (0,), 64)
    np.testing.assert_allclose(pred, alone[:, 0], atol=1e-5)
    # each epoch's loss is the global batch's: the same on both workers
    assert (chief / "history.csv").read_text() == (worker / "history.csv").read_text()


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="MultiWorkerMirroredStrategy is TensorFlow's")
def test_workers_that_would_train_differently_stop_with_an_error_instead_of_hanging(train_store, tmp_path):
    codes, outputs, _ = _two_workers(train_store, tmp_path, ["train.epochs=3"], ["train.epochs=4"])
    assert codes == [2, 2], outputs
    assert all("expected every worker to train the same folds" in out for out in outputs), outputs
    assert not (tmp_path / "run" / "fold0").exists()  # stopped before training
