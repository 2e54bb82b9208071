import os
import shutil
import signal
import subprocess
import sys
import textwrap

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest

from kit.errors import KitError
from kit.ingest import tiff
from kit.ingest.store import is_complete, open_store, read_quarantine, read_table
from kit.ingest.writer import ingest


def _decoded(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _assert_store_matches_sources(store, raw):
    labels = pd.read_csv(raw / "train_labels.csv", dtype={"id": str})
    sample = pd.read_csv(raw / "sample_submission.csv", dtype={"id": str})
    with open_store(store) as h5:
        train, test = read_table(h5, "train"), read_table(h5, "test")
        assert train.id.tolist() == labels.id.tolist()  # labels-CSV order
        assert train.label.tolist() == labels.label.tolist()
        assert test.id.tolist() == sample.id.tolist()  # sample_submission order
        for split, table in (("train", train), ("test", test)):
            images = h5[f"{split}/images"][:]
            for k, image_id in enumerate(table.id):
                np.testing.assert_array_equal(images[k], _decoded(raw / split / f"{image_id}.tif"))


@pytest.mark.parametrize("workers", [1, 2])
def test_synthetic_ingest_is_byte_identical_and_ordered(synth_pcam, tmp_path, workers):
    summary = ingest("pcam", synth_pcam, tmp_path / "s.h5", workers=workers, block=32, progress=False)
    assert (summary.n_train, summary.n_test, summary.quarantine) == (96, 24, [])
    _assert_store_matches_sources(tmp_path / "s.h5", synth_pcam)
    with h5py.File(tmp_path / "s.h5") as h5:
        assert h5.attrs["complete"] and h5.attrs["adapter"] == "pcam"
        assert h5["train/images"].chunks[0] == 256 and h5["train/images"].dtype == np.uint8
    assert not (tmp_path / "s.h5.partial").exists()


def test_real_kaggle_files_ingest_byte_identical(real_pcam, tmp_path):
    summary = ingest("pcam", real_pcam, tmp_path / "r.h5", workers=1, progress=False)
    assert (summary.n_train, summary.n_test) == (24, 8)
    _assert_store_matches_sources(tmp_path / "r.h5", real_pcam)


def test_finished_store_is_left_alone_unless_forced(synth_pcam, tmp_path):
    store = tmp_path / "s.h5"
    ingest("pcam", synth_pcam, store, workers=1, progress=False)
    stamp = store.stat().st_mtime_ns
    assert ingest("pcam", synth_pcam, store, workers=1, progress=False).skipped
    assert store.stat().st_mtime_ns == stamp
    assert not ingest("pcam", synth_pcam, store, workers=1, force=True, progress=False).skipped


def _damage_train(raw):
    """Apply every kind of bad input to the train split; return {id: expected reason fragment}."""
    labels = pd.read_csv(raw / "train_labels.csv", dtype=str)
    ids = labels.id.tolist()
    path = lambda i: raw / "train" / f"{i}.tif"  # noqa: E731
    path(ids[0]).write_bytes(b"")
    path(ids[1]).write_bytes(path(ids[1]).read_bytes()[:9000])
    path(ids[2]).write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    path(ids[3]).write_bytes(tiff.encode_rgb(np.zeros((50, 60, 3), np.uint8)))
    path(ids[4]).unlink()
    path("feedfacefeedfacefeedfacefeedfacefeedface").write_bytes(path(ids[5]).read_bytes())
    labels.loc[6, "label"] = "maybe"
    extra = pd.DataFrame({"id": [ids[7], ids[8], ""], "label": [labels.label[7], str(1 - int(labels.label[8])), "1"]})
    pd.concat([labels, extra]).to_csv(raw / "train_labels.csv", index=False)
    return {
        ids[0]: "empty file",
        ids[1]: "truncated",
        ids[2]: "not a TIFF",
        ids[3]: "wrong shape",
        ids[4]: "image file is missing",
        "feedfacefeedfacefeedfacefeedfacefeedface": "has no row",
        ids[6]: "not one of the classes",
        ids[7]: "duplicate id (first at train_labels.csv line",
        ids[8]: "conflicting labels",
        "": "empty id",
    }


def test_bad_train_input_is_quarantined_not_dropped(synth_pcam, tmp_path):
    expected = _damage_train(synth_pcam)
    summary = ingest("pcam", synth_pcam, tmp_path / "s.h5", workers=2, block=16, progress=False)
    quarantine = read_quarantine(tmp_path / "s.h5")
    assert set(quarantine.split) == {"train"}
    for image_id, fragment in expected.items():
        reasons = quarantine.reason[quarantine.id == image_id].tolist()
        assert any(fragment in r for r in reasons), (image_id, fragment, reasons)
    # ids[8] had two conflicting rows: both are out; every other good row is in, in CSV order
    assert len(quarantine) == 11 and len(summary.quarantine) == 11
    bad = {i for i, fragment in expected.items() if not fragment.startswith("duplicate id (first")}
    kept = [
        i for i in pd.read_csv(synth_pcam / "train_labels.csv", dtype=str, keep_default_na=False).id if i not in bad
    ]
    with open_store(tmp_path / "s.h5") as h5:
        assert read_table(h5, "train").id.tolist() == list(dict.fromkeys(kept))
    assert "quarantined 11" in summary.report()


def test_grayscale_tiff_is_quarantined_while_the_rgb_ones_ingest(synth_pcam, tmp_path):
    labels = pd.read_csv(synth_pcam / "train_labels.csv", dtype=str)
    victim = synth_pcam / "train" / f"{labels.id[5]}.tif"
    victim.write_bytes(tiff.encode_gray(_decoded(victim)[:, :, 1]))  # 96x96, one channel: Kaggle's header layout
    summary = ingest("pcam", synth_pcam, tmp_path / "s.h5", workers=1, progress=False)
    assert summary.n_train == len(labels) - 1 and summary.n_test == 24
    quarantine = read_quarantine(tmp_path / "s.h5")
    assert quarantine.id.tolist() == [labels.id[5]]
    assert quarantine.reason[0].startswith("wrong channels: expected 3 (RGB), got 1 (grayscale)")
    with open_store(tmp_path / "s.h5") as h5:
        assert labels.id[5] not in read_table(h5, "train").id.tolist()


def test_test_split_problems_are_an_error_then_resume_after_the_fix(synth_pcam, tmp_path):
    sample = pd.read_csv(synth_pcam / "sample_submission.csv", dtype=str)
    victim = synth_pcam / "test" / f"{sample.id[3]}.tif"
    good = victim.read_bytes()
    victim.write_bytes(good[:500])
    with pytest.raises(KitError, match=rf"(?s)1 test file.*{sample.id[3]}.*truncated.*rerun"):
        ingest("pcam", synth_pcam, tmp_path / "s.h5", workers=1, progress=False)
    assert not (tmp_path / "s.h5").exists() and (tmp_path / "s.h5.partial").exists()
    victim.write_bytes(good)
    summary = ingest("pcam", synth_pcam, tmp_path / "s.h5", workers=1, progress=False)
    assert summary.n_test == 24 and summary.quarantine == []
    _assert_store_matches_sources(tmp_path / "s.h5", synth_pcam)


@pytest.mark.parametrize(
    "content, match",
    [
        ("id,target\nabc,1\n", r"must have columns \['id', 'label'\]"),
        ("", "not a readable CSV"),
    ],
)
def test_malformed_labels_csv_is_a_clear_error(synth_pcam, tmp_path, content, match):
    (synth_pcam / "train_labels.csv").write_text(content)
    with pytest.raises(KitError, match=match):
        ingest("pcam", synth_pcam, tmp_path / "s.h5", workers=1, progress=False)


def test_missing_raw_folder_says_how_to_get_data(tmp_path):
    with pytest.raises(KitError, match="kit download pcam"):
        ingest("pcam", tmp_path / "nowhere", tmp_path / "s.h5", progress=False)


_KILLER = textwrap.dedent("""
    import os, signal, sys
    import kit.ingest.decode_pool as pool
    from kit.ingest.writer import ingest
    original, count = pool.BlockDecoder.map, [0]
    def map_then_die(self, blocks):  # counts blocks across both splits
        for item in original(self, blocks):
            if count[0] == int(sys.argv[3]):
                os.kill(os.getpid(), getattr(signal, sys.argv[4]))
            count[0] += 1
            yield item
    pool.BlockDecoder.map = map_then_die
    ingest("pcam", sys.argv[1], sys.argv[2], workers=1, block=8, progress=False)
""")


@pytest.mark.parametrize("sig, blocks_before", [("SIGKILL", 5), ("SIGINT", 14)])
def test_interrupted_ingest_resumes_to_the_same_store(synth_pcam, tmp_path, sig, blocks_before):
    store = tmp_path / "s.h5"
    run = subprocess.run(
        [sys.executable, "-c", _KILLER, str(synth_pcam), str(store), str(blocks_before), sig],
        capture_output=True,
        text=True,
        cwd=os.getcwd(),
    )
    assert run.returncode != 0
    if sig == "SIGINT":
        assert "rerun the same command to resume" in run.stderr
    partial = tmp_path / "s.h5.partial"
    assert partial.exists() and not store.exists() and not is_complete(partial)
    with h5py.File(partial) as h5:
        consumed = h5["train"].attrs["consumed"] + (h5["test"].attrs["consumed"] if "test" in h5 else 0)
    assert 0 < consumed < 120
    summary = ingest("pcam", synth_pcam, store, workers=1, block=8, progress=False)
    assert summary.n_train == 96 and summary.n_test == 24
    _assert_store_matches_sources(store, synth_pcam)


def test_unreadable_partial_store_starts_over(synth_pcam, tmp_path):
    (tmp_path / "s.h5.partial").write_bytes(b"garbage, as after a crash in the middle of a flush")
    with pytest.warns(UserWarning, match="starting over"):
        summary = ingest("pcam", synth_pcam, tmp_path / "s.h5", workers=1, progress=False)
    assert summary.n_train == 96


def test_changed_labels_restart_the_split_on_resume(synth_pcam, tmp_path):
    store = tmp_path / "s.h5"
    victim = synth_pcam / "test" / f"{pd.read_csv(synth_pcam / 'sample_submission.csv', dtype=str).id[0]}.tif"
    good = victim.read_bytes()
    victim.write_bytes(b"")
    with pytest.raises(KitError):
        ingest("pcam", synth_pcam, store, workers=1, progress=False)
    labels = pd.read_csv(synth_pcam / "train_labels.csv", dtype=str)
    labels.iloc[::-1].to_csv(synth_pcam / "train_labels.csv", index=False)  # a different plan
    victim.write_bytes(good)
    ingest("pcam", synth_pcam, store, workers=1, progress=False)
    _assert_store_matches_sources(store, synth_pcam)
