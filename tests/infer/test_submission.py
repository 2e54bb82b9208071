import hashlib
import json

import h5py
import numpy as np
import pandas as pd
import pytest

from kit.errors import KitError
from kit.infer.submission import Sidecar, expected_ids_from_store, sha256_file, validate_submission, write_submission

IDS = [f"id{i:03d}" for i in range(30)]
PREDS = np.linspace(0.01, 0.99, 30)


def frame(ids=IDS, preds=PREDS, columns=("id", "label")):
    return pd.DataFrame({columns[0]: list(ids), columns[1]: list(preds)})


def write(tmp_path, ids=IDS, preds=PREDS, name="cnn", expected=IDS, sidecar=None, reuse_identical=False):
    return write_submission(
        "pcam",
        ids,
        preds,
        name,
        expected_ids=expected,
        id_column="id",
        label_column="label",
        sidecar=sidecar or {"cv_score": 0.9},
        out_dir=tmp_path / "subs",
        reuse_identical=reuse_identical,
    )


def test_valid_frame_has_no_warnings():
    assert validate_submission(frame(), IDS, "id", "label") == []


def test_hard_labels_warn():
    warnings = validate_submission(frame(preds=(PREDS > 0.5).astype(float)), IDS, "id", "label")
    assert len(warnings) == 1 and "thresholded" in warnings[0]


many = [f"x{i}" for i in range(15)]
nan_preds, inf_preds, big_preds = PREDS.copy(), PREDS.copy(), PREDS.copy()
nan_preds[[3, 7]] = np.nan
inf_preds[4] = np.inf
big_preds[[5, 6]] = [1.5, -0.1]
swapped = IDS[:]
swapped[0], swapped[1] = swapped[1], swapped[0]

REFUSALS = {
    "missing": (dict(ids=IDS[:-2], preds=PREDS[:-2]), ["misses 2", "id028", "id029"]),
    "extra": (dict(ids=IDS + many, preds=list(PREDS) + [0.5] * 15), ["15 ids", "x0", "x9", "(15 in all)"]),
    "duplicated": (dict(ids=IDS + ["id004"], preds=list(PREDS) + [0.5]), ["more than once", "id004"]),
    "nan": (dict(preds=nan_preds), ["NaN", "id003", "id007"]),
    "inf": (dict(preds=inf_preds), ["inf", "id004"]),
    "out_of_range": (dict(preds=big_preds), ["outside [0, 1]", "id005", "id006"]),
    "wrong_order": (dict(ids=swapped), ["order", "id000", "id001"]),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_validate_refuses_and_names_ids(case):
    kwargs, needles = REFUSALS[case]
    with pytest.raises(KitError) as err:
        validate_submission(frame(**kwargs), IDS, "id", "label")
    for needle in needles:
        assert needle in str(err.value)


def test_validate_refuses_wrong_columns():
    with pytest.raises(KitError, match="columns"):
        validate_submission(frame(columns=("id", "target")), IDS, "id", "label")
    with pytest.raises(KitError, match="columns"):
        validate_submission(frame().assign(extra=1), IDS, "id", "label")
    with pytest.raises(KitError, match="columns"):
        validate_submission(frame()[["label", "id"]], IDS, "id", "label")


def test_validate_refuses_non_numeric():
    preds = list(PREDS.astype(object))
    preds[2] = "high"
    with pytest.raises(KitError, match="non-numeric.*id002"):
        validate_submission(frame(preds=preds), IDS, "id", "label")


@pytest.mark.parametrize("case", sorted(set(REFUSALS) - {"wrong_order"}))
def test_write_refuses_and_writes_nothing(tmp_path, case):
    kwargs, needles = REFUSALS[case]
    with pytest.raises(KitError) as err:
        write(tmp_path, **kwargs)
    assert needles[-1] in str(err.value)
    assert not (tmp_path / "subs").exists() or not any((tmp_path / "subs").rglob("*"))


def test_write_refuses_length_mismatch(tmp_path):
    with pytest.raises(KitError, match="one prediction per id"):
        write(tmp_path, preds=PREDS[:-1])
    assert not (tmp_path / "subs").exists()


def test_write_puts_rows_in_expected_order(tmp_path):
    order = np.random.default_rng(0).permutation(len(IDS))
    csv = write(tmp_path, ids=[IDS[i] for i in order], preds=PREDS[order])
    table = pd.read_csv(csv, dtype={"id": str})
    assert table["id"].tolist() == IDS
    np.testing.assert_allclose(table["label"], PREDS, rtol=1e-9)


def test_write_layout_precision_and_sidecar(tmp_path):
    preds = PREDS.copy()
    preds[0], preds[1] = 0.123456789012, 0.123456789013 - 1e-10  # distinct values must stay distinct
    sidecar = {
        "runs": ["runs/pcam/A"],
        "weights": {"A": np.float64(1.0)},
        "cv_score": 0.97,
        "method": "mean",
        "tta": "d4",
    }
    csv = write(tmp_path, preds=preds, name="my blend/1", sidecar=sidecar)
    assert csv.parent == tmp_path / "subs" / "pcam"
    assert csv.name.endswith("_my_blend_1.csv") and len(csv.name.split("_")[0]) == 15  # YYYYmmdd-HHMMSS
    table = pd.read_csv(csv, dtype={"id": str})
    assert table.columns.tolist() == ["id", "label"] and table["id"].tolist() == IDS
    assert table["label"].nunique() == len(IDS)
    np.testing.assert_allclose(table["label"], preds, rtol=1e-9)
    meta = json.loads(csv.with_suffix(".json").read_text())
    assert meta["sha256"] == sha256_file(csv) == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert meta["rows"] == len(IDS) and meta["created"] and meta["weights"] == {"A": 1.0}
    assert meta["cv_score"] == 0.97 and meta["method"] == "mean" and meta["tta"] == "d4"
    assert not list(csv.parent.glob(".*tmp"))


def test_write_never_overwrites(tmp_path, monkeypatch):
    monkeypatch.setattr("kit.infer.submission.time.strftime", lambda fmt: "20260101-000000")
    first = write(tmp_path)
    before = first.read_bytes()
    second = write(tmp_path, preds=PREDS[::-1])
    assert first != second and first.read_bytes() == before
    assert second.name == "20260101-000000_cnn_2.csv" and second.with_suffix(".json").exists()
    meta1 = json.loads(first.with_suffix(".json").read_text())
    assert meta1["sha256"] == sha256_file(first)


def test_write_hard_labels_records_warning(tmp_path):
    csv = write(tmp_path, preds=(PREDS > 0.5).astype(float))
    assert "thresholded" in json.loads(csv.with_suffix(".json").read_text())["warnings"][0]


def test_default_out_dir_is_submissions_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_SUBMISSIONS_DIR", str(tmp_path / "default"))
    csv = write_submission("pcam", IDS, PREDS, "x", expected_ids=IDS, id_column="id", label_column="label", sidecar={})
    assert csv.parent == tmp_path / "default" / "pcam"


def test_expected_ids_from_store(tmp_path):
    path = tmp_path / "store.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("test/ids", data=np.array(["b", "a", "c"], dtype=h5py.string_dtype()))
        h5.attrs["complete"] = True
    assert expected_ids_from_store(path) == ["b", "a", "c"]
    with pytest.raises(KitError, match="kit ingest"):
        expected_ids_from_store(tmp_path / "none.h5")


def test_sidecar_object_is_written_and_read_back(tmp_path):
    sidecar = Sidecar(
        competition="pcam",
        runs=("runs/pcam/A", "runs/pcam/B"),
        method="hill",
        weights={"A": np.float64(0.75), "B": 0.25},
        cv_score=np.float64(0.97),
        member_cv={"A": 0.96},
        tta=["d4"],
        blend_dir="runs/pcam/ensembles/x",
    )
    csv = write(tmp_path, sidecar=sidecar)
    meta = json.loads(csv.with_suffix(".json").read_text())
    assert meta["runs"] == ["runs/pcam/A", "runs/pcam/B"] and meta["weights"] == {"A": 0.75, "B": 0.25}
    assert meta["sha256"] == sha256_file(csv) and meta["csv"] == csv.name and meta["columns"] == ["id", "label"]
    back = Sidecar.read(csv)
    assert back.runs == sidecar.runs and back.cv_score == 0.97 and back.method == "hill" and back.tta == ["d4"]
    assert back.run_names == ("A", "B") and back.sha256 == meta["sha256"] and back.rows == len(IDS)


def test_sidecar_reads_plain_dicts_already_on_disk(tmp_path):
    csv = tmp_path / "old.csv"
    old = {
        "competition": "pcam",
        "runs": ["runs/pcam/x_a"],
        "method": "mean",
        "weights": [1.0],
        "cv_score": 0.9,
        "member_cv": {"x_a": 0.9},
        "tta": ["none"],
        "blend_dir": "b",
        "sha256": "00",
        "partial": True,
        "something_new": {"k": 1},
    }
    csv.with_suffix(".json").write_text(json.dumps(old))
    sidecar = Sidecar.read(csv)
    assert sidecar.cv_score == 0.9 and sidecar.run_names == ("x_a",) and sidecar.weights == [1.0]
    assert sidecar.extra == {"partial": True, "something_new": {"k": 1}}
    assert sidecar.to_dict() == old  # nothing lost when written back
    assert Sidecar.read(tmp_path / "none.csv") == Sidecar()  # a CSV made elsewhere has no sidecar
    csv.with_suffix(".json").write_text(json.dumps({"cv_score": "n/a", "runs": "runs/pcam/one"}))
    assert Sidecar.read(csv).cv_score is None and Sidecar.read(csv).runs == ("runs/pcam/one",)
    csv.with_suffix(".json").write_text("[1, 2]")
    assert Sidecar.read(csv) == Sidecar()
    csv.with_suffix(".json").write_text("{broken")
    with pytest.raises(KitError, match="expected JSON in the sidecar.*Fix"):
        Sidecar.read(csv)


def test_identical_submission_of_the_same_runs_is_reused(tmp_path):
    sidecar = {"runs": ["runs/pcam/A"], "method": "mean", "cv_score": 0.9}
    first = write(tmp_path, name="a", sidecar=sidecar, reuse_identical=True)
    again = write(tmp_path, name="a", sidecar=Sidecar(runs=("runs/pcam/A",), method="mean"), reuse_identical=True)
    other = write(tmp_path, name="a", sidecar={**sidecar, "method": "rank"}, reuse_identical=True)
    assert again == first and other != first
