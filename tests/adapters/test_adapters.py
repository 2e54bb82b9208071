"""Every registered adapter end to end on synthetic data, and the general capabilities they brought: resizing,
channel conversion, grouped folds, class weights, folder-per-class layouts, sniffed separators and integer ids."""

import dataclasses
import shutil

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest

from kit.adapters.image_spec import ImageSpec
from kit.adapters.registry import get_adapter, list_adapters
from kit.errors import KitError
from kit.infer.ensemble import blend_and_submit
from kit.infer.predict import predict_run
from kit.infer.submission import validate_submission
from kit.infer.submission_format import SubmissionFormat
from kit.ingest.decode import BadImage, decode_image, fit_image
from kit.ingest.store import chunk_rows, read_quarantine
from kit.ingest.writer import ingest
from kit.synth import SYNTH_TEST_LABELS, synthesize
from kit.train.folds import check_folds, make_folds
from kit.train.loop import class_weights, train

RECIPE = [
    "model.backbone=tiny_cnn",
    "model.resize=48",
    "folds.k=2",
    "train.epochs=6",
    "data.batch_size=16",
    "train.lr=3e-3",
    "data.in_memory=true",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", list_adapters())
def test_adapter_end_to_end_synth_ingest_train_predict_submit(name, tmp_path):
    adapter = get_adapter(name)
    raw = synthesize(name, tmp_path / "raw", n_train=64, n_test=12, seed=0)
    store = tmp_path / f"{name}.h5"
    summary = ingest(name, raw, store, workers=1, progress=False)
    assert (summary.n_train, summary.n_test, summary.quarantine) == (64, 12, [])
    with h5py.File(store) as h5:
        assert h5["train/images"].shape[1:] == adapter.image_shape
        assert ("train/groups" in h5) == bool(adapter.group_column)
    extra = ["model.crop=48", "model.resize=0"] if name == "pcam" else []
    result = train(name, store=store, overrides=RECIPE + extra, run_dir=tmp_path / "run", verbose=0)
    assert result.complete and np.isfinite(result.oof_score) and result.metric == adapter.metric
    assert set(result.extra) == set(adapter.extra_metrics) and result.task == adapter.task
    predicted = predict_run(result.run_dir, oof=True)
    pred = predicted.test_pred.drop(columns="id")
    assert pred.shape[1] == adapter.n_outputs and np.isfinite(pred.to_numpy()).all()
    if adapter.task == "multiclass":  # softmax rows, columns named by the classes
        assert list(pred.columns) == list(adapter.class_names) and np.allclose(pred.sum(axis=1), 1, atol=1e-5)
    csv = blend_and_submit([result.run_dir], out_dir=tmp_path / "subs", verbose=False)
    fmt = SubmissionFormat.from_adapter(adapter)
    submission = fmt.read(csv)
    hidden = pd.read_csv(raw / SYNTH_TEST_LABELS, dtype={"id": str})
    assert list(submission.columns) == list(fmt.columns)
    assert sorted(submission[adapter.id_column]) == sorted(hidden["id"])
    validate_submission(submission, submission[adapter.id_column], fmt)  # Kaggle's format, as the adapter declares


def test_isic_resizes_varied_jpegs_keeps_patients_in_one_fold_and_positives_in_every_fold(tmp_path):
    raw = synthesize("isic", tmp_path / "raw", n_train=120, n_test=8, seed=1)
    sizes = {cv2.imread(str(p)).shape[:2] for p in (raw / "jpeg/train").glob("*.jpg")}
    assert len(sizes) > 20  # the files really vary in size
    ingest("isic", raw, tmp_path / "isic.h5", workers=2, progress=False, size=64)
    with h5py.File(tmp_path / "isic.h5") as h5:
        assert h5["train/images"].shape[1:] == (64, 64, 3) and h5.attrs["fit"] == "crop"
        groups, labels, ids = h5["train/groups"].asstr()[:], h5["train/labels"][:], h5["train/ids"].asstr()[:]
    table = pd.read_csv(raw / "train.csv", dtype=str).set_index("image_name")
    assert (table.loc[ids, "patient_id"].to_numpy() == groups).all()
    assert 0 < labels.mean() < 0.2
    folds = make_folds(ids, labels, k=3, seed=0, groups=groups)
    check_folds(folds, 3, ids=ids)
    assert all(labels[folds["fold"] == f].sum() > 0 for f in range(3))


def test_a_fold_without_positives_is_refused_with_the_fix():
    labels = np.array([1, 1, 1] + [0] * 9)
    groups = ["a", "a", "a"] + [f"g{k}" for k in range(9)]  # every positive belongs to one patient
    with pytest.raises(KitError, match="without every class.*lower folds.k"):
        make_folds([f"i{k}" for k in range(12)], labels, k=3, seed=0, groups=groups)


def test_ingest_size_is_refused_for_a_fixed_size_adapter(synth_pcam_master, tmp_path):
    with pytest.raises(KitError, match="stored as they are"):
        ingest("pcam", synth_pcam_master, tmp_path / "s.h5", workers=1, progress=False, size=64)


def test_class_weights():
    assert class_weights("none", np.array([0, 1])) is None
    balanced = class_weights("balanced", np.array([0] * 9 + [1]))
    assert balanced[1] == pytest.approx(5.0) and balanced[0] == pytest.approx(10 / 18)
    assert class_weights(3, np.array([0, 1])) == {0: 1.0, 1: 3.0}
    with pytest.raises(KitError, match="class_weight"):
        class_weights("heavy", np.array([0, 1]))


@pytest.mark.slow
def test_balanced_class_weight_trains(tmp_path):
    raw = synthesize("isic", tmp_path / "raw", n_train=48, n_test=4, seed=2)
    ingest("isic", raw, tmp_path / "isic.h5", workers=1, progress=False, size=32)
    result = train(
        "isic",
        store=tmp_path / "isic.h5",
        run_dir=tmp_path / "run",
        verbose=0,
        overrides=RECIPE + ["model.resize=0", "train.epochs=2", 'train.class_weight="balanced"'],
    )
    assert result.complete and np.isfinite(result.oof_score)


def test_folder_per_class_quarantines_strays_and_reads_a_flat_test_folder(tmp_path):
    raw = synthesize("chest-xray", tmp_path / "raw", n_train=20, n_test=6, seed=0)
    train_dir, test_dir = raw / "chest_xray/train", raw / "chest_xray/test"
    (train_dir / "COVID").mkdir()  # not a class of this adapter
    (train_dir / "NORMAL" / "notes.txt").write_text("not an image")
    shutil.copy(next((train_dir / "NORMAL").glob("*.jpeg")), train_dir / "loose.jpeg")
    for image in list(test_dir.rglob("*.jpeg")):  # a competition-style unlabelled test folder
        image.rename(test_dir / image.name)
    summary = ingest("chest-xray", raw, tmp_path / "x.h5", workers=1, progress=False)
    assert (summary.n_train, summary.n_test) == (20, 6)
    reasons = read_quarantine(tmp_path / "x.h5")["reason"].tolist()
    assert any("not one of the classes" in r for r in reasons)
    assert any("not an image file" in r for r in reasons)
    assert any("not inside a class folder" in r for r in reasons)
    with h5py.File(tmp_path / "x.h5") as h5:
        ids, labels = h5["train/ids"].asstr()[:], h5["train/labels"][:]
        assert list(h5["test/ids"].asstr()[:]) == sorted(h5["test/ids"].asstr()[:])
    positives = {p.stem for p in (train_dir / "PNEUMONIA").glob("*.jpeg")}
    assert all((label == 1) == (i in positives) for i, label in zip(ids, labels))


def _head_ct_real_layout(raw, n=6):
    """The files exactly as Kaggle ships head-ct-hemorrhage: head_ct/head_ct/000.png.., "id, hemorrhage", no test."""
    folder = raw / "head_ct" / "head_ct"
    folder.mkdir(parents=True)
    for k in range(n):
        image = np.full((40 + 3 * k, 50), 20 * k, np.uint8)
        cv2.imwrite(str(folder / f"{k:03d}.png"), image)
    (raw / "labels.csv").write_text("id, hemorrhage\n" + "".join(f"{k}, {k % 2}\n" for k in range(n)))
    return raw


def test_head_ct_reads_the_kaggle_layout_integer_ids_spaced_header_and_no_test_split(tmp_path):
    raw = _head_ct_real_layout(tmp_path / "raw")
    summary = ingest("head-ct", raw, tmp_path / "h.h5", workers=1, progress=False)
    assert (summary.n_train, summary.n_test, summary.quarantine) == (6, 6, [])  # test = the labelled images
    with h5py.File(tmp_path / "h.h5") as h5:
        assert list(h5["train/ids"].asstr()[:]) == [str(k) for k in range(6)]
        assert list(h5["train/labels"][:]) == [0, 1, 0, 1, 0, 1]
        assert list(h5["test/ids"].asstr()[:]) == [str(k) for k in range(6)]
        assert h5["train/images"].shape[1:] == (128, 128, 1)
        assert h5["train/images"][3].max() == 60  # 003.png is row id 3


def test_head_ct_still_reads_a_semicolon_table(tmp_path):
    raw = _head_ct_real_layout(tmp_path / "raw")
    (raw / "labels.csv").write_text("id;hemorrhage\n" + "".join(f"{k};{k % 2}\n" for k in range(6)))
    summary = ingest("head-ct", raw, tmp_path / "h.h5", workers=1, progress=False)
    assert (summary.n_train, summary.quarantine) == (6, [])


def test_head_ct_non_integer_id_and_unlisted_file_are_quarantined_with_the_reason(tmp_path):
    raw = _head_ct_real_layout(tmp_path / "raw")
    with open(raw / "labels.csv", "a") as f:
        f.write("seven, 1\n")
    cv2.imwrite(str(raw / "head_ct/head_ct/099.png"), np.zeros((8, 8), np.uint8))
    adapter = dataclasses.replace(get_adapter("head-ct"), optional_test=False)
    (raw / "test").mkdir()
    cv2.imwrite(str(raw / "test/100.png"), np.zeros((30, 30), np.uint8))
    (raw / "test.csv").write_text("id\n100\n")
    rows = adapter.list_split(raw, "test").rows
    assert rows.path.str.endswith("test/100.png").all() and rows.exists.all()
    summary = ingest("head-ct", raw, tmp_path / "h.h5", workers=1, progress=False)
    assert (summary.n_train, summary.n_test) == (6, 1)  # test.csv present: it is the test split
    reasons = read_quarantine(tmp_path / "h.h5")["reason"].tolist()
    assert any("expected an integer id" in r and "'seven'" in r for r in reasons)
    assert any("file has no row in labels.csv" in r for r in reasons)


def test_a_pinned_separator_that_does_not_match_names_the_fix(tmp_path):
    raw = _head_ct_real_layout(tmp_path / "raw")
    pinned = dataclasses.replace(get_adapter("head-ct"), csv_sep=";")
    with pytest.raises(KitError, match=r"must have columns \['id', 'hemorrhage'\] separated by ';'.*Fix:"):
        pinned.list_split(raw, "train")


def test_a_file_stem_that_cannot_format_an_id_is_refused_at_declaration():
    with pytest.raises(KitError, match=r"expected file_stem.*got '\{id:03d\}'.*Fix: write e.g."):
        dataclasses.replace(get_adapter("head-ct"), file_stem="{id:03d}")


def test_fit_modes():
    image = np.zeros((60, 120, 3), np.uint8)
    image[:, 30:90] = 200  # the centre square is bright, the sides dark
    assert fit_image(image, (20, 20), "crop").min() == 200
    padded = fit_image(image, (20, 20), "pad")
    assert padded[:5].max() == 0 and padded[10, 10].min() == 200  # letterbox bands above and below
    stretched = fit_image(image, (20, 20), "stretch")
    assert stretched[:, :5].max() == 0 and stretched[:, 5:15].min() == 200  # the dark sides squeezed, not cut
    assert fit_image(image[:, :, :1], (10, 10), "stretch").shape == (10, 10, 1)


def test_channels_are_converted_and_odd_depths_refused():
    gray = np.full((40, 50), 90, np.uint8)
    png = cv2.imencode(".png", gray)[1].tobytes()
    assert decode_image(png, ImageSpec((20, 20, 3), None, "stretch")).min() == 90
    colour = cv2.imencode(".png", np.dstack([gray, gray, gray]))[1].tobytes()
    assert decode_image(colour, ImageSpec((20, 20, 1), None, "stretch")).shape == (20, 20, 1)
    deep = cv2.imencode(".png", gray.astype(np.uint16) * 256)[1].tobytes()
    with pytest.raises(BadImage, match="8-bit"):
        decode_image(deep, ImageSpec((20, 20, 1), None, "stretch"))
    with pytest.raises(BadImage, match="wrong shape"):
        decode_image(png, ImageSpec((20, 20, 1), None, "exact"))


def test_large_jpeg_reduced_decode_matches_a_full_decode():
    rng = np.random.default_rng(0)
    smooth = cv2.resize(rng.integers(0, 255, (12, 16, 3)).astype(np.uint8), (1600, 1200), cv2.INTER_CUBIC)
    data = cv2.imencode(".jpg", smooth, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    fast = decode_image(data, ImageSpec((128, 128, 3), None, "crop"))  # 1200/128 > 8: decoded at 1/8 scale
    full = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    slow = fit_image(full, (128, 128), "crop")
    assert np.abs(fast.astype(int) - slow.astype(int)).mean() < 2.0


def test_chunk_rows_keeps_chunks_near_pcam_size():
    assert chunk_rows((96, 96, 3)) == 256 and chunk_rows((8, 8, 3)) == 256
    assert chunk_rows((512, 512, 3)) == 8 and chunk_rows((128, 128, 1)) == 256


def test_datasets_cannot_be_submitted_or_downloaded_as_competitions(tmp_path):
    from kit.kaggle.download import download_competition
    from kit.kaggle.submit import SubmitContext, submit_csv

    with pytest.raises(KitError, match="nothing to submit"):
        submit_csv("chest-xray", tmp_path / "x.csv", context=SubmitContext(ledger=tmp_path / "l.sqlite"))
    with pytest.raises(KitError, match="kaggle datasets download -d felipekitamura/head-ct-hemorrhage"):
        download_competition("head-ct", raw=tmp_path / "raw")


def test_verify_layout_counts_rows_and_names_missing_images(tmp_path):
    from kit.kaggle.download import verify_layout

    raw = synthesize("isic", tmp_path / "raw", n_train=10, n_test=3, seed=0)
    assert verify_layout(get_adapter("isic"), raw) == {"train": 10, "test": 3}
    gone = next((raw / "jpeg/test").glob("*.jpg"))
    gone.unlink()
    with pytest.raises(KitError, match=f"1 of 3 test images are missing.*{gone.stem}"):
        verify_layout(get_adapter("isic"), raw)
