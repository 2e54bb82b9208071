"""The multi-class adapters read the files exactly as Kaggle ships them: Plant Seedlings (species folders with
spaces, ids with their suffix, test in sample-submission order), BUSI (masks beside the images are skipped, never
ingested) and HAM10000 (two image folders, grouped by lesion); plus the generic listing features they brought."""

import dataclasses

import h5py
import pandas as pd
import pytest

from competitions.plant_seedlings import SPECIES
from kit.adapters.registry import get_adapter
from kit.errors import KitError
from kit.ingest.store import read_quarantine
from kit.ingest.writer import ingest
from kit.synth import synthesize


def _ingest(name, tmp_path, n_train=24, n_test=6):
    raw = synthesize(name, tmp_path / "raw", n_train=n_train, n_test=n_test, seed=0)
    summary = ingest(name, raw, tmp_path / f"{name}.h5", workers=1, progress=False)
    assert (summary.n_train, summary.n_test, summary.quarantine) == (n_train, n_test, [])
    h5 = h5py.File(tmp_path / f"{name}.h5")
    return raw, h5


def test_plant_seedlings_ids_are_file_names_labels_species_indices_and_test_in_submission_order(tmp_path):
    raw, h5 = _ingest("plant-seedlings", tmp_path)
    with h5:
        assert h5.attrs["task"] == "multiclass" and tuple(h5.attrs["classes"]) == SPECIES
        ids, labels = h5["train/ids"].asstr()[:], h5["train/labels"][:]
        test_ids = list(h5["test/ids"].asstr()[:])
        assert h5["train/images"].shape[1:] == (128, 128, 3)
    assert all(i.endswith(".png") for i in ids)
    for image_id, label in zip(ids, labels):  # the label is the species folder's index
        assert (raw / "train" / SPECIES[label] / image_id).is_file()
    assert any(" " in SPECIES[label] for label in labels)  # folders with spaces were read
    sample = pd.read_csv(raw / "sample_submission.csv", dtype=str)
    assert list(sample.columns) == ["file", "species"]
    assert test_ids == list(sample["file"]) and test_ids != sorted(test_ids)


def test_plant_seedlings_without_the_sample_submission_reads_the_test_folder_sorted(tmp_path):
    raw = synthesize("plant-seedlings", tmp_path / "raw", n_train=12, n_test=5, seed=1)
    (raw / "sample_submission.csv").unlink()
    rows = get_adapter("plant-seedlings").list_split(raw, "test").rows
    assert list(rows["id"]) == sorted(p.name for p in (raw / "test").glob("*.png"))


def test_plant_seedlings_test_file_missing_from_the_table_is_a_stray(tmp_path):
    raw = synthesize("plant-seedlings", tmp_path / "raw", n_train=12, n_test=5, seed=1)
    (raw / "test" / "extra0001.png").write_bytes(next((raw / "test").glob("*.png")).read_bytes())
    listing = get_adapter("plant-seedlings").list_split(raw, "test")
    assert len(listing.rows) == 5 and listing.strays == [
        (str(raw / "test" / "extra0001.png"), "file has no row in sample_submission.csv")
    ]


def test_busi_masks_are_skipped_with_their_image_named_and_never_ingested(tmp_path):
    raw, h5 = _ingest("busi", tmp_path)
    with h5:
        ids = list(h5["train/ids"].asstr()[:])
        labels = h5["train/labels"][:]
        assert h5["train/images"].shape[1:] == (128, 128, 1) and h5.attrs["task"] == "multiclass"
        assert tuple(h5.attrs["classes"]) == ("benign", "malignant", "normal")
    assert "benign (1)" in ids and not any("mask" in i for i in ids)
    assert all(i.split(" (")[0] == ("benign", "malignant", "normal")[label] for i, label in zip(ids, labels))
    masks = sorted((raw / "Dataset_BUSI_with_GT").rglob("*_mask*.png"))
    assert any(m.name.endswith("_mask_1.png") for m in masks)
    listing = get_adapter("busi").list_split(raw, "train")
    assert sorted(path for path, _ in listing.skipped) == sorted(str(m) for m in masks)
    reasons = dict(listing.skipped)
    mask = raw / "Dataset_BUSI_with_GT" / "benign" / "benign (1)_mask.png"
    assert reasons[str(mask)].startswith("segmentation mask of 'benign (1).png', not an image to classify")
    assert listing.strays == [] and read_quarantine(tmp_path / "busi.h5").empty


def test_busi_without_a_test_folder_predicts_the_labelled_images(tmp_path):
    raw = synthesize("busi", tmp_path / "raw", n_train=12, n_test=3, seed=2)
    for image in (raw / "test").iterdir():
        image.unlink()
    (raw / "test").rmdir()
    summary = ingest("busi", raw, tmp_path / "b.h5", workers=1, progress=False)
    assert (summary.n_train, summary.n_test, summary.quarantine) == (12, 12, [])


def test_ham10000_reads_both_part_folders_and_groups_by_lesion(tmp_path):
    raw, h5 = _ingest("ham10000", tmp_path, n_train=30)
    with h5:
        ids, labels = h5["train/ids"].asstr()[:], h5["train/labels"][:]
        groups = h5["train/groups"].asstr()[:]
        assert tuple(h5.attrs["classes"]) == ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
    table = pd.read_csv(raw / "HAM10000_metadata.csv", dtype=str).set_index("image_id")
    assert list(pd.read_csv(raw / "HAM10000_metadata.csv").columns)[:3] == ["lesion_id", "image_id", "dx"]
    assert (table.loc[ids, "lesion_id"].to_numpy() == groups).all()
    classes = get_adapter("ham10000").classes
    assert [classes[k] for k in labels] == table.loc[ids, "dx"].tolist()
    assert len(set(groups)) < len(groups)  # several photos per lesion
    parts = {p.parent.name for p in raw.glob("HAM10000_images_part_*/*.jpg")}
    assert parts == {"HAM10000_images_part_1", "HAM10000_images_part_2"}


def test_ham10000_file_in_both_folders_is_read_once_and_the_copy_reported(tmp_path):
    raw = synthesize("ham10000", tmp_path / "raw", n_train=8, n_test=2, seed=0)
    first = next((raw / "HAM10000_images_part_1").glob("*.jpg"))
    (raw / "HAM10000_images_part_2" / first.name).write_bytes(first.read_bytes())
    listing = get_adapter("ham10000").list_split(raw, "train")
    row = listing.rows.set_index("id").loc[first.stem]
    assert row["path"] == str(first) and row["exists"]
    assert listing.strays == [
        (str(raw / "HAM10000_images_part_2" / first.name), f"a second copy of {first}; that one is read")
    ]


def test_ham10000_missing_image_is_quarantined_and_the_fallback_test_split_leaves_it_out(tmp_path):
    raw = synthesize("ham10000", tmp_path / "raw", n_train=10, n_test=2, seed=0)
    (raw / "test.csv").unlink()
    gone = next(raw.glob("HAM10000_images_part_2/*.jpg"))
    gone.unlink()
    summary = ingest("ham10000", raw, tmp_path / "h.h5", workers=1, progress=False)
    assert (summary.n_train, summary.n_test) == (9, 9)
    assert [(q.split, q.id) for q in summary.quarantine] == [("train", gone.stem)]
    assert "image file is missing" in summary.quarantine[0].reason


def test_adapter_declarations_are_checked():
    busi = get_adapter("busi")
    with pytest.raises(KitError, match="expected exclude a tuple of glob patterns"):
        dataclasses.replace(busi, exclude="*_mask.png")
    with pytest.raises(KitError, match="expected train_dir a folder or a non-empty tuple"):
        dataclasses.replace(busi, train_dir=())
    assert dataclasses.replace(busi, train_dir=["a", "b"]).split_dirs("train") == ("a", "b")
    with pytest.raises(KitError, match="7 class_columns"):
        dataclasses.replace(get_adapter("ham10000"), class_columns=("A", "B"))


def test_class_names_that_are_numbers_never_take_labels_as_indices():
    grades = dataclasses.replace(get_adapter("plant-seedlings"), classes=("1", "2", "3"), class_columns=())
    assert grades.encode_label("1") == 0 and grades.encode_label("3") == 2
    with pytest.raises(ValueError, match=r"label '0' is not one of the classes \(1, 2, 3\)$"):
        grades.encode_label("0")  # a 0-based grade must not silently become grade "1"
    assert get_adapter("plant-seedlings").encode_label("7") == 7  # names are words: an index stands in


def test_class_names_with_surrounding_spaces_are_refused_at_declaration():
    with pytest.raises(KitError, match="without surrounding spaces"):
        dataclasses.replace(get_adapter("plant-seedlings"), classes=(" Maize", "Charlock"), class_columns=())
