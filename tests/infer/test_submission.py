import hashlib
import json

import h5py
import numpy as np
import pandas as pd
import pytest

from kit.adapters.base import Adapter
from kit.errors import KitError
from kit.infer.sidecar import Sidecar
from kit.infer.submission import (
    expected_ids_from_store,
    sha256_file,
    validate_submission,
    write_submission,
)
from kit.infer.submission_format import SubmissionFormat

IDS = [f"id{i:03d}" for i in range(30)]
PREDS = np.linspace(0.01, 0.99, 30)
FMT = SubmissionFormat()  # probability: id, label


def frame(ids=IDS, preds=PREDS, columns=("id", "label")):
    return pd.DataFrame({columns[0]: list(ids), columns[1]: list(preds)})


def write(tmp_path, ids=IDS, preds=PREDS, name="cnn", expected=IDS, sidecar=None, reuse_identical=False, fmt=None):
    fmt = fmt or FMT
    return write_submission(
        "pcam",
        ids,
        preds,
        name,
        expected_ids=expected,
        fmt=fmt,
        sidecar=sidecar or {"cv_score": 0.9},
        out_dir=tmp_path / "subs",
        reuse_identical=reuse_identical,
    )


def test_valid_frame_has_no_warnings():
    assert validate_submission(frame(), IDS, FMT) == []


def test_hard_labels_warn():
    warnings = validate_submission(frame(preds=(PREDS > 0.5).astype(float)), IDS, FMT)
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
        validate_submission(frame(**kwargs), IDS, FMT)
    for needle in needles:
        assert needle in str(err.value)


def test_validate_refuses_wrong_columns():
    with pytest.raises(KitError, match="columns"):
        validate_submission(frame(columns=("id", "target")), IDS, FMT)
    with pytest.raises(KitError, match="columns"):
        validate_submission(frame().assign(extra=1), IDS, FMT)
    with pytest.raises(KitError, match="columns"):
        validate_submission(frame()[["label", "id"]], IDS, FMT)


def test_validate_refuses_non_numeric():
    preds = list(PREDS.astype(object))
    preds[2] = "high"
    with pytest.raises(KitError, match="non-numeric.*id002"):
        validate_submission(frame(preds=preds), IDS, FMT)


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
    csv = write_submission("pcam", IDS, PREDS, "x", expected_ids=IDS, fmt=FMT, sidecar={})
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


# --- the four formats -------------------------------------------------------------------------------------------

SEEDLINGS = ("Black-grass", "Charlock", "Loose Silky-bent")  # a name with a space
SKIN = ("MEL", "NV", "BCC")
PLANET = ("clear", "haze", "primary", "water")
N = 12
CIDS = [f"img_{i}.png" for i in range(N)]


def adapter(**changes):
    """A real adapter (a pcam-like declaration) with another task, classes and submission format."""
    declaration = dict(
        name="pcam",
        slug="c/pcam",
        train_dir="train",
        test_dir="test",
        labels_csv="train_labels.csv",
        sample_submission_csv="sample_submission.csv",
        id_column="id",
        label_column="label",
        image_suffix=".tif",
        image_format="tiff",
        image_shape=(96, 96, 3),
        metric="log_loss",
        synthesize=None,
    )
    return Adapter(**{**declaration, **changes})


def softmax_rows(n, k, seed=0):
    logits = np.random.default_rng(seed).normal(size=(n, k)) * 2
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


CLASS_NAME = SubmissionFormat("class_name", "file", "species", SEEDLINGS)
CLASS_PROBS = SubmissionFormat("class_probs", "image", classes=SKIN)
LABELS = SubmissionFormat("labels", "image_name", "tags", PLANET)


def test_binary_bytes_are_unchanged(tmp_path):
    # Written by the id_column/label_column version before the formats came: these bytes must not change.
    csv = write(tmp_path, ids=["a", "b", "c"], preds=[0.1, 1 / 3, np.float32(0.7)], expected=["a", "b", "c"])
    assert csv.read_bytes() == b"id,label\na,0.1\nb,0.3333333333\nc,0.6999999881\n"
    preds = PREDS.copy()
    preds[0], preds[1] = 0.123456789012, 0.123456789013 - 1e-10
    digest = "b658fd3d63b7f55ccb7fbbb9fc49b02a6485fe13cb07896a42b8082f0116d648"
    assert sha256_file(write(tmp_path, preds=preds)) == digest
    assert sha256_file(write(tmp_path, preds=preds.reshape(-1, 1))) == digest  # (N, 1): the engine's matrix
    assert SubmissionFormat.from_adapter(adapter(metric="roc_auc")) == FMT


def test_probability_refuses_other_shapes(tmp_path):
    with pytest.raises(KitError, match=r"expected predictions of shape \(N, 1\).*got shape \(30, 2\).*Fix"):
        write(tmp_path, preds=np.column_stack([1 - PREDS, PREDS]))
    assert not (tmp_path / "subs").exists()


def test_class_name_round_trip_with_spaces(tmp_path):
    proba = softmax_rows(N, 3)
    proba[0] = [0.1, 0.1, 0.8]  # "Loose Silky-bent"
    csv = write(tmp_path, ids=CIDS, preds=proba, expected=CIDS, fmt=CLASS_NAME)
    text = csv.read_text()
    assert text.startswith("file,species\nimg_0.png,Loose Silky-bent\n")
    table = CLASS_NAME.read(csv)
    assert table["species"].tolist() == [SEEDLINGS[k] for k in proba.argmax(axis=1)]
    assert validate_submission(table, CIDS, CLASS_NAME) == []
    assert json.loads(csv.with_suffix(".json").read_text())["columns"] == ["file", "species"]


def test_class_name_binary_thresholds_at_half(tmp_path):
    fmt = SubmissionFormat.from_adapter(adapter(classes=("NORMAL", "PNEUMONIA"), submission="class_name"))
    assert fmt.task == "binary" and fmt.n_outputs == 1 and fmt.columns == ("id", "label")
    csv = write(tmp_path, ids=["a", "b", "c"], preds=[0.2, 0.5, 0.9], expected=["a", "b", "c"], fmt=fmt)
    assert csv.read_text() == "id,label\na,NORMAL\nb,PNEUMONIA\nc,PNEUMONIA\n"
    unnamed = SubmissionFormat.from_adapter(adapter(submission="class_name"))  # no names: "0", "1"
    assert unnamed.frame(["a", "b"], [0.1, 0.6])["label"].tolist() == ["0", "1"]
    csv = write(tmp_path, ids=["a", "b"], preds=[0.1, 0.6], expected=["a", "b"], fmt=unnamed)
    assert unnamed.read(csv)["label"].tolist() == ["0", "1"]  # read as names, not numbers


def test_class_name_refusals():
    good = CLASS_NAME.frame(CIDS, softmax_rows(N, 3))
    bad = good.copy()
    bad.loc[[2, 5], "species"] = ["Loose silky-bent", "Maize"]
    with pytest.raises(KitError, match=r"not class names for ids 'img_2.png', 'img_5.png'.*'Loose silky-bent'.*Fix"):
        validate_submission(bad, CIDS, CLASS_NAME)
    with pytest.raises(KitError, match=r"columns \['file', 'species'\]"):
        validate_submission(good.rename(columns={"species": "label"}), CIDS, CLASS_NAME)
    with pytest.raises(KitError, match="misses 1 test ids"):
        validate_submission(good.iloc[1:], CIDS, CLASS_NAME)
    with pytest.raises(KitError, match="order"):
        validate_submission(good.iloc[::-1], CIDS, CLASS_NAME)
    nan = softmax_rows(N, 3)
    nan[4, 1] = np.nan
    with pytest.raises(KitError, match="the predictions have NaN/inf values for ids 'img_4.png'"):
        CLASS_NAME.frame(CIDS, nan)
    with pytest.raises(KitError, match="outside \\[0, 1\\].*img_3.png"):
        CLASS_NAME.frame(CIDS, np.where(np.arange(N)[:, None] == 3, 2.0, softmax_rows(N, 3)))
    with pytest.raises(KitError, match=r"shape \(N, 3\).*got shape \(12, 2\)"):
        CLASS_NAME.frame(CIDS, softmax_rows(N, 2))
    with pytest.raises(KitError, match="one prediction per id"):
        CLASS_NAME.frame(CIDS, softmax_rows(N - 1, 3))


def test_class_name_warns_on_one_class_for_every_row():
    proba = np.tile([0.1, 0.8, 0.1], (N, 1))
    (warning,) = validate_submission(CLASS_NAME.frame(CIDS, proba), CIDS, CLASS_NAME)
    assert "'Charlock'" in warning and "constant" in warning


def test_class_probs_round_trip(tmp_path):
    proba = softmax_rows(N, 3)
    order = np.random.default_rng(1).permutation(N)
    csv = write(tmp_path, ids=[CIDS[i] for i in order], preds=proba[order], expected=CIDS, fmt=CLASS_PROBS)
    table = CLASS_PROBS.read(csv)
    assert table.columns.tolist() == ["image", "MEL", "NV", "BCC"] and table["image"].tolist() == CIDS
    np.testing.assert_allclose(table[list(SKIN)].to_numpy(), proba, rtol=1e-9)
    assert validate_submission(table, CIDS, CLASS_PROBS) == []
    assert json.loads(csv.with_suffix(".json").read_text())["columns"] == ["image", "MEL", "NV", "BCC"]


def test_class_probs_columns_from_the_adapter():
    fmt = SubmissionFormat.from_adapter(
        adapter(
            task="multiclass",
            classes=("melanoma", "nevus", "bcc"),
            submission="class_probs",
            class_columns=SKIN,
            id_column="image",
        )
    )
    assert fmt.columns == ("image", "MEL", "NV", "BCC") and fmt.classes == ("melanoma", "nevus", "bcc")
    named = SubmissionFormat("class_probs", classes=("Loose Silky-bent", "Maize"))  # spaces in a header are fine
    assert named.columns == ("id", "Loose Silky-bent", "Maize")
    binary = SubmissionFormat.from_adapter(adapter(classes=("benign", "malignant"), submission="class_probs"))
    assert binary.frame(["a"], [0.25]).to_dict("records") == [{"id": "a", "benign": 0.75, "malignant": 0.25}]
    one = SubmissionFormat.from_adapter(adapter(submission="class_probs", class_columns=("target",)))
    assert one.columns == ("id", "target") and one.frame(["a"], [0.25])["target"].tolist() == [0.25]


def test_class_probs_refusals_and_warnings():
    good = CLASS_PROBS.frame(CIDS, softmax_rows(N, 3))
    bad = good.copy()
    bad.loc[3, "NV"] = 1.5
    with pytest.raises(KitError, match=r"'NV' values outside \[0, 1\] for ids 'img_3.png'.*Fix"):
        validate_submission(bad, CIDS, CLASS_PROBS)
    bad = good.astype({"BCC": object})
    bad.loc[7, "BCC"] = "high"
    with pytest.raises(KitError, match="non-numeric 'BCC' values for ids 'img_7.png'"):
        validate_submission(bad, CIDS, CLASS_PROBS)
    bad = good.copy()
    bad.loc[1, "MEL"] = np.nan
    with pytest.raises(KitError, match="NaN/inf 'MEL' values for ids 'img_1.png'"):
        validate_submission(bad, CIDS, CLASS_PROBS)
    with pytest.raises(KitError, match="columns"):
        validate_submission(good[["image", "NV", "MEL", "BCC"]], CIDS, CLASS_PROBS)
    unnormalised = good.copy()
    unnormalised.loc[[0, 9], "MEL"] += 0.01
    (warning,) = validate_submission(unnormalised, CIDS, CLASS_PROBS)
    assert "2 rows' class probabilities do not sum to 1" in warning and "'img_0.png', 'img_9.png'" in warning
    nudged = good.copy()
    nudged.loc[0, "MEL"] += 5e-4  # within SUM_TOLERANCE
    assert validate_submission(nudged, CIDS, CLASS_PROBS) == []
    multilabel = SubmissionFormat("class_probs", "image", classes=SKIN, task="multilabel")
    assert validate_submission(unnormalised, CIDS, multilabel) == []  # independent columns need not sum to 1
    hard = CLASS_PROBS.frame(CIDS, np.eye(3)[np.arange(N) % 3])
    assert "0 or 1" in validate_submission(hard, CIDS, CLASS_PROBS)[0]
    constant = CLASS_PROBS.frame(CIDS, np.tile([0.2, 0.3, 0.5], (N, 1)))
    assert "same class probabilities" in validate_submission(constant, CIDS, CLASS_PROBS)[0]


def test_labels_round_trip_and_at_least_one_label(tmp_path):
    proba = np.array([[0.9, 0.1, 0.7, 0.6], [0.2, 0.3, 0.4, 0.1], [0.5, 0.5, 0.5, 0.5]])
    ids = ["t0", "t1", "t2"]
    csv = write(tmp_path, ids=ids, preds=proba, expected=ids, fmt=LABELS)
    assert csv.read_text() == "image_name,tags\nt0,clear primary water\nt1,primary\nt2,clear haze primary water\n"
    table = LABELS.read(csv)
    assert validate_submission(table, ids, LABELS) == []
    fmt = SubmissionFormat.from_adapter(adapter(task="multilabel", classes=PLANET, submission="labels"))
    assert fmt.columns == ("id", "label") and fmt.n_outputs == 4


def test_labels_refusals_and_empty_rows():
    good = LABELS.frame(["t0", "t1"], [[0.9, 0.1, 0.7, 0.6], [0.2, 0.3, 0.9, 0.1]])
    for value in ("clear cloudy", "primary primary", "Clear"):
        bad = good.copy()
        bad.loc[1, "tags"] = value
        with pytest.raises(KitError, match=f"not labels for ids 't1'.*{value!r}.*Fix"):
            validate_submission(bad, ["t0", "t1"], LABELS)
    empty = good.copy()
    empty.loc[1, "tags"] = ""
    (warning,) = validate_submission(empty, ["t0", "t1"], LABELS)
    assert "1 rows have no label (ids 't1'" in warning
    with pytest.raises(KitError, match="the predictions have NaN/inf values for ids 't1'"):
        LABELS.frame(["t0", "t1"], [[0.9, 0.1, 0.7, 0.6], [0.2, np.nan, 0.9, 0.1]])
    with pytest.raises(KitError, match=r"shape \(N, 4\)"):
        LABELS.frame(["t0", "t1"], [0.2, 0.3])


def test_labels_refuse_class_names_with_spaces():
    with pytest.raises(KitError, match="adapter 'pcam': expected class names without spaces.*'Loose Silky-bent'.*Fix"):
        SubmissionFormat.from_adapter(adapter(task="multilabel", classes=SEEDLINGS, submission="labels"))
    with pytest.raises(KitError, match="without spaces"):
        SubmissionFormat("labels", classes=("a", "b c"))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (dict(kind="csv"), "submission format one of"),
        (dict(kind="class_name", classes=("a",)), "at least two distinct"),
        (dict(kind="class_name", classes=("a", "a")), "at least two distinct"),
        (dict(kind="probability", task="multiclass"), "a task the 'probability' format can write"),
        (dict(kind="labels", classes=("a", "b"), task="multiclass"), "a task the 'labels' format can write"),
        (dict(kind="class_probs", classes=("a", "b", "c"), columns=("id", "A", "B")), "one probability column per"),
        (dict(kind="class_probs", classes=("a", "b"), columns=("image", "a", "b")), "the id column 'id' first"),
        (dict(kind="class_probs", classes=("id", "b")), "distinct, non-empty submission columns"),
        (dict(kind="class_name", classes=("a", "b"), columns=("id", "x")), "columns ['id', 'label']"),
    ],
)
def test_format_refuses_bad_declarations(kwargs, needle):
    with pytest.raises(KitError, match="expected") as err:
        SubmissionFormat(**kwargs)
    assert needle in str(err.value) and "Fix:" in str(err.value)
