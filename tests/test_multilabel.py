"""Multi-label tasks end to end: a declarative (TOML) multilabel adapter, its synthetic data (one shape per label,
labels space-separated), ingest (multi-hot rows), iteratively stratified folds, sigmoid training, OOF and test
predictions with class-named columns, mean and hill-climbing blends, and a ``labels`` submission."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from kit.adapters import registry
from kit.adapters.declarative import load_adapter_toml
from kit.errors import KitError
from kit.infer.ensemble import blend_and_submit, ensemble_runs
from kit.infer.predict import predict_run
from kit.infer.run_predictions import load_run
from kit.infer.submission import validate_submission
from kit.infer.submission_format import SubmissionFormat
from kit.ingest.store import open_store, read_labels
from kit.ingest.writer import ingest
from kit.metrics import get_metric
from kit.run import RunFolder, pred_matrix, target_values
from kit.synth import SYNTH_TEST_LABELS, synthesize
from kit.synth.generic import draw_label_signals, synthesize_generic
from kit.train.loop import class_weights, train

CLASSES = ("disc", "box", "peak", "moon")
TOML = f"""
name = "toml-multilabel-shapes"
slug = "someone/multilabel-shapes"
kind = "competition"
layout = "csv"
train_dir = "train"
test_dir = "test"
labels_csv = "train.csv"
sample_submission_csv = "sample_submission.csv"
id_column = "id"
label_column = "labels"
image_suffix = ".png"
task = "multilabel"
classes = {list(CLASSES)!r}
metric = "mean_column_auc"
extra_metrics = ["micro_f1"]
submission = "labels"
size = 32
channels = 3
fit = "stretch"
tta = "hflip"
""".replace("'", '"')

RECIPE = [
    "model.backbone=tiny_cnn",
    "folds.k=2",
    "train.epochs=4",
    "data.batch_size=16",
    "train.lr=3e-3",
    "data.in_memory=true",
]
N_TRAIN, N_TEST = 64, 12


@pytest.fixture
def adapter(tmp_path, monkeypatch):
    """The TOML adapter, registered for one test; the registry is restored afterwards."""
    registry.list_adapters()  # load the discovered adapters first, so the copies below hold them
    monkeypatch.setattr(registry, "_ADAPTERS", dict(registry._ADAPTERS))
    monkeypatch.setattr(registry, "_SOURCES", dict(registry._SOURCES))
    monkeypatch.setenv("KIT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("KIT_SUBMISSIONS_DIR", str(tmp_path / "submissions"))
    path = tmp_path / "multilabel_shapes.toml"
    path.write_text(TOML)
    return registry.register_adapter(load_adapter_toml(path))


def _labels(column) -> list[set[str]]:
    return [set(str(text).split()) for text in column]


def test_synthetic_multilabel_data_has_one_to_three_named_labels_and_every_class(adapter, tmp_path):
    assert adapter.task == "multilabel" and adapter.classes == CLASSES and adapter.submission == "labels"
    raw = synthesize(adapter.name, tmp_path / "raw", n_train=24, n_test=8, seed=0)
    for table, column in ((raw / "train.csv", "labels"), (raw / SYNTH_TEST_LABELS, "label")):
        labels = _labels(pd.read_csv(table, dtype=str)[column])
        assert all(1 <= len(s) <= 3 and s <= set(CLASSES) for s in labels)
    train_labels = _labels(pd.read_csv(raw / "train.csv", dtype=str)["labels"])
    assert set().union(*train_labels) == set(CLASSES)
    assert len({frozenset(s) for s in train_labels}) > 4  # real combinations, not one class per image
    text = pd.read_csv(raw / "train.csv", dtype=str)["labels"]  # written in class order
    assert all(t.split() == [c for c in CLASSES if c in t.split()] for t in text)
    again = synthesize(adapter.name, tmp_path / "again", n_train=24, n_test=8, seed=0)
    assert (again / "train.csv").read_bytes() == (raw / "train.csv").read_bytes()


def test_one_shape_per_label_each_in_its_own_quarter():
    hot = np.array([[1, 0, 0, 0], [0, 1, 1, 1], [1, 1, 0, 1]], np.uint8)
    images = draw_label_signals(np.random.default_rng(0), hot, (32, 32, 3), 4, vary=False)
    for row, image in zip(hot, images):
        assert image.shape == (32, 32, 3)
        quarters = [image[r : r + 16, c : c + 16] for r in (0, 16) for c in (0, 16)]
        saturated = [int(((q.max(axis=2) - q.min(axis=2)) > 120).sum() > 8) for q in quarters]  # a coloured shape
        assert sum(saturated) == row.sum()
    with pytest.raises(ValueError, match="at most 4 labels"):
        draw_label_signals(np.random.default_rng(0), np.ones((1, 5), np.uint8), (32, 32, 3), 5)


def test_a_folder_per_class_layout_refuses_a_multilabel_task():
    with pytest.raises(KitError, match="folder-per-class layout .* got 'multilabel'"):
        dataclasses.replace(
            registry.get_adapter("intel-image-classification"),
            task="multilabel",
            metric="mean_column_auc",
            extra_metrics=(),
            submission="labels",
            class_columns=(),
        )


def test_balanced_class_weight_is_refused_for_multilabel(adapter):
    hot = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]], np.uint8)
    assert class_weights("none", hot, task="multilabel") is None
    with pytest.raises(KitError, match="class_weight 'none' for a multilabel task"):
        class_weights("balanced", hot, task="multilabel")


def test_balanced_class_weight_is_refused_when_training_a_multilabel_store(adapter, tmp_path):
    raw = synthesize(adapter.name, tmp_path / "raw", n_train=16, n_test=4, seed=0)
    ingest(adapter.name, raw, tmp_path / "s.h5", workers=1, progress=False)
    with pytest.raises(KitError, match="multilabel"):
        train(
            adapter.name,
            store=tmp_path / "s.h5",
            overrides=[*RECIPE, "train.class_weight=balanced"],
            run_dir=tmp_path / "run",
            verbose=0,
        )


def _train(name, store, seed, run_dir):
    result = train(name, store=store, overrides=[*RECIPE, f"seed={seed}"], run_dir=run_dir, verbose=0)
    assert result.complete and result.task == "multilabel" and result.metric == "mean_column_auc"
    assert np.isfinite(result.oof_score) and set(result.extra) == {"micro_f1"}
    return result


@pytest.mark.slow
def test_multilabel_end_to_end_synth_ingest_train_predict_blend_submit(adapter, tmp_path):
    name = adapter.name
    raw = synthesize(name, tmp_path / "raw", n_train=N_TRAIN, n_test=N_TEST, seed=0)
    store = tmp_path / "store.h5"
    summary = ingest(name, raw, store, workers=1, progress=False)
    assert (summary.n_train, summary.n_test, summary.quarantine) == (N_TRAIN, N_TEST, [])

    with open_store(store) as h5:  # (N, C) multi-hot rows, as the table says
        labels = read_labels(h5)
        ids = h5["train/ids"].asstr()[:]
        assert h5.attrs["task"] == "multilabel" and tuple(h5.attrs["classes"]) == CLASSES
    assert labels.shape == (N_TRAIN, len(CLASSES)) and labels.dtype == np.uint8
    assert set(np.unique(labels)) == {0, 1} and (labels.sum(axis=1) >= 1).all()
    table = pd.read_csv(raw / "train.csv", dtype=str).set_index("id")
    expected = np.array([[c in set(table.loc[i, "labels"].split()) for c in CLASSES] for i in ids], np.uint8)
    np.testing.assert_array_equal(labels, expected)

    runs = [_train(name, store, seed, tmp_path / f"run{seed}").run_dir for seed in (0, 1)]

    folds = RunFolder(runs[0]).read_folds().set_index("id").loc[ids]
    assert sorted(folds["fold"].unique()) == [0, 1]
    for fold in (0, 1):  # iterative stratification: every label in every fold
        assert (labels[folds["fold"].to_numpy() == fold].sum(axis=0) > 0).all()

    metric, micro_f1 = get_metric("mean_column_auc"), get_metric("micro_f1")
    for run_dir in runs:
        run = RunFolder(run_dir)
        oof = run.read_oof()
        assert list(oof.columns) == ["id", "fold", "target", *CLASSES]
        assert all(len(t.split()) == len(CLASSES) and set(t.split()) <= {"0", "1"} for t in oof["target"].astype(str))
        target = target_values(oof)
        by_id = dict(zip(ids, labels.tolist()))
        assert target.tolist() == [by_id[i] for i in oof["id"]]
        pred = pred_matrix(oof)
        assert pred.shape == (N_TRAIN, len(CLASSES)) and ((pred >= 0) & (pred <= 1)).all()
        metrics = run.read_metrics()
        assert metrics.oof_score == pytest.approx(metric(target, pred, "multilabel"), abs=1e-6)
        assert metrics.extra["micro_f1"] == pytest.approx(micro_f1(target, pred, "multilabel"), abs=1e-6)

        predicted = predict_run(run_dir, oof=True)
        test_pred = predicted.test_pred
        assert list(test_pred.columns) == ["id", *CLASSES] and len(test_pred) == N_TEST
        assert np.isfinite(pred_matrix(test_pred)).all()
        oof_tta = run.read_oof_tta()
        assert list(oof_tta.columns) == ["id", "fold", "target", *CLASSES]
        assert np.isfinite(metric(target_values(oof_tta), pred_matrix(oof_tta), "multilabel"))

    for method in ("mean", "hill"):
        blend = ensemble_runs([load_run(r) for r in runs], method=method)
        assert blend.metric == "mean_column_auc" and blend.oof_score > 0.6  # the shapes were learned (chance: 0.5)
        assert list(blend.test.columns) == ["id", *CLASSES]
        assert blend.oof_score == pytest.approx(metric(target_values(blend.oof), pred_matrix(blend.oof)), abs=1e-6)
        assert sum(blend.weights.values()) == pytest.approx(1.0)

        csv = blend_and_submit(runs, method=method, out_dir=tmp_path / "subs", name=method, verbose=False)
        fmt = SubmissionFormat.from_adapter(adapter)
        submission = pd.read_csv(csv, dtype=str, keep_default_na=False)
        assert list(submission.columns) == ["id", "labels"] == list(fmt.columns)
        hidden = pd.read_csv(raw / SYNTH_TEST_LABELS, dtype=str)
        assert sorted(submission["id"]) == sorted(hidden["id"])
        predicted_labels = _labels(submission["labels"])
        assert all(1 <= len(s) and s <= set(CLASSES) for s in predicted_labels)
        assert all(t.split() == [c for c in CLASSES if c in t.split()] for t in submission["labels"])
        validate_submission(submission, submission["id"], fmt)
