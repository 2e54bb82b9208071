import numpy as np
import pandas as pd
from conftest import REAL_PCAM
from sklearn.metrics import roc_auc_score

from competitions.synthetic.pcam import draw_patches
from kit.ingest import tiff
from kit.synth import synthesize


def test_layout_and_format_match_kaggle(synth_pcam_master):
    labels = pd.read_csv(synth_pcam_master / "train_labels.csv")
    sample = pd.read_csv(synth_pcam_master / "sample_submission.csv")
    assert list(labels.columns) == ["id", "label"] and list(sample.columns) == ["id", "label"]
    assert len(labels) == 96 and len(sample) == 24 and set(labels.label) == {0, 1}
    assert (sample.label == 0).all()
    real = next((REAL_PCAM / "train").glob("*.tif")).read_bytes()
    for image_id in labels.id[:5]:
        data = (synth_pcam_master / "train" / f"{image_id}.tif").read_bytes()
        assert len(data) == len(real) == 27935
        assert data[:267] == real[:267]  # same tags, offsets and description as Kaggle's files


def test_deterministic_for_a_seed(tmp_path):
    a = synthesize("pcam", tmp_path / "a", 8, 4, seed=3)
    b = synthesize("pcam", tmp_path / "b", 8, 4, seed=3)
    c = synthesize("pcam", tmp_path / "c", 8, 4, seed=4)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert (a / "train_labels.csv").read_text() != (c / "train_labels.csv").read_text()


def test_labels_live_in_the_centre_not_in_global_statistics():
    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.4).astype(int)
    images = draw_patches(rng, labels)
    dark = images.mean(-1) < 120
    centre = roc_auc_score(labels, dark[:, 32:64, 32:64].mean((1, 2)))
    overall_brightness = roc_auc_score(labels, -images.mean((1, 2, 3)))
    assert centre > 0.9  # learnable
    assert 0.35 < overall_brightness < 0.7  # but no global shortcut


def test_files_decode_with_the_fast_path(synth_pcam_master):
    path = next((synth_pcam_master / "test").glob("*.tif"))
    assert tiff.decode_simple(path.read_bytes()).shape == (96, 96, 3)
