"""Declarative adapters: a TOML file is a competition. Loading, the checks and their messages, discovery through
competitions/*.toml, KIT_ADAPTERS and register_adapter_file, and the generic synthetic writer end to end."""

import os
import textwrap

import h5py
import numpy as np
import pandas as pd
import pytest

from kit.adapters import registry
from kit.adapters.declarative import load_adapter_toml
from kit.adapters.folder_per_class import FolderPerClassAdapter
from kit.adapters.registry import get_adapter, list_adapters, register_adapter_file
from kit.errors import KitError
from kit.ingest.writer import ingest
from kit.synth import SYNTH_TEST_LABELS, synthesize
from kit.synth.generic import draw_class_signal

CSV_TOML = """
name = "toml-lesions"
slug = "someone/lesions"
kind = "dataset"
layout = "csv"
train_dir = ["images_a", "images_b"]
test_dir = "test"
labels_csv = "meta.csv"
sample_submission_csv = "test.csv"
id_column = "image"
label_column = "dx"
group_column = "patient"
csv_sep = ";"
image_suffix = ".png"
classes = ["a", "b", "c"]
metric = "balanced_accuracy"
extra_metrics = ["auc_macro_ovr"]
submission = "class_probs"
class_columns = ["A", "B", "C"]
size = 32
channels = 3
fit = "crop"
tta = "d4"
exclude = ["*_seg.png"]

[[train_augment]]
name = "D4"
p = 1.0
"""


@pytest.fixture
def fresh_registry(monkeypatch):
    """An empty, not yet loaded registry for one test; the real one comes back afterwards."""
    monkeypatch.setattr(registry, "_ADAPTERS", {})
    monkeypatch.setattr(registry, "_SOURCES", {})
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.delenv(registry.ENV_VAR, raising=False)
    return monkeypatch


def _write(tmp_path, text, name="adapter.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_csv_toml_becomes_an_adapter(tmp_path):
    adapter = load_adapter_toml(_write(tmp_path, CSV_TOML))
    assert adapter.name == "toml-lesions" and adapter.train_dir == ("images_a", "images_b")
    assert adapter.image_shape == (32, 32, 3) and adapter.csv_sep == ";" and adapter.group_column == "patient"
    assert adapter.classes == ("a", "b", "c") and adapter.n_outputs == 3 and adapter.synthesize is None
    assert adapter.train_augment == ({"name": "D4", "p": 1.0},) and adapter.exclude == ("*_seg.png",)


def test_the_example_toml_in_competitions_is_registered():
    adapter = get_adapter("intel-image-classification")
    assert isinstance(adapter, FolderPerClassAdapter) and len(adapter.classes) == 6
    assert adapter.submission == "class_name" and adapter.tta == "hflip"
    assert registry._SOURCES[adapter.name].endswith("intel_image_classification.toml")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"colour": '"red"'}, r"expected only known keys, got unknown 'colour'.*Fix:"),
        ({"metirc": '"accuracy"'}, r"unknown 'metirc'. Fix: rename 'metirc' -> 'metric'"),
        ({"layout": '"folders"'}, r"expected layout 'csv' or 'folder_per_class', got 'folders'"),
        ({"size": '"big"'}, r"expected size an integer, got 'big'. Fix:"),
        ({"channels": "4"}, r"expected channels 1 or 3.*got 4. Fix: write channels = 1"),
        ({"classes": '"a b c"'}, r"expected classes a list of strings, got 'a b c'. Fix: write classes = \["),
        ({"optional_test": '"yes"'}, r"expected optional_test true or false, got 'yes'"),
        ({"fit": '"squash"'}, r"expected fit one of exact, stretch, crop, pad, got 'squash'"),
        ({"metric": '"roc_auc"'}, r"expected a metric for multiclass tasks for 'roc_auc'"),
        ({"class_columns": '["A"]'}, r"expected 3 class_columns"),
        ({"suffixes": '[".png"]'}, r"expected suffixes absent for layout 'csv'.*Fix: remove suffixes"),
        ({"train_augment": '["D4"]'}, r"expected train_augment a list of tables with a name each"),
    ],
)
def test_bad_tomls_say_which_file_key_and_fix(tmp_path, change, message):
    lines = [line for line in CSV_TOML.splitlines() if line.split(" = ")[0] not in change]
    lines = lines[: lines.index("[[train_augment]]")] if "train_augment" in change else lines
    text = "\n".join(f"{k} = {v}" for k, v in change.items()) + "\n" + "\n".join(lines)
    path = _write(tmp_path, text)
    with pytest.raises(KitError, match=message) as caught:
        load_adapter_toml(path)
    assert str(path) in str(caught.value) and "Fix:" in str(caught.value)


def test_missing_keys_and_broken_toml_are_named(tmp_path):
    with pytest.raises(KitError, match=r"expected the keys slug, metric, got a file without them"):
        load_adapter_toml(_write(tmp_path, 'name = "x"\nlayout = "csv"\ntrain_dir = "t"\nsize = 8\n'))
    with pytest.raises(KitError, match="not valid TOML"):
        load_adapter_toml(_write(tmp_path, "name = \n"))


def test_a_toml_adapter_in_kit_adapters_is_registered_synthesized_and_ingested(fresh_registry, tmp_path):
    folder = tmp_path / "adapters"
    folder.mkdir()
    _write(folder, CSV_TOML, "lesions.toml")
    single = _write(tmp_path, CSV_TOML.replace('"toml-lesions"', '"toml-single"'), "single.toml")
    fresh_registry.setenv(registry.ENV_VAR, os.pathsep.join([str(folder), str(single)]))
    assert {"toml-lesions", "toml-single", "pcam"} <= set(list_adapters())
    assert registry._SOURCES["toml-lesions"] == f"file {folder / 'lesions.toml'}"
    raw = synthesize("toml-lesions", tmp_path / "raw", n_train=18, n_test=5, seed=0)
    table = pd.read_csv(raw / "meta.csv", sep=";", dtype=str)
    assert list(table.columns) == ["image", "dx", "patient"]
    assert {p.parent.name for p in raw.glob("images_*/*.png")} == {"images_a", "images_b"}
    (raw / "images_a" / "x_seg.png").write_bytes(next(raw.glob("images_a/*.png")).read_bytes())  # excluded
    summary = ingest("toml-lesions", raw, tmp_path / "s.h5", workers=1, progress=False)
    assert (summary.n_train, summary.n_test, summary.quarantine) == (18, 5, [])
    with h5py.File(tmp_path / "s.h5") as h5:
        assert h5.attrs["task"] == "multiclass" and list(h5.attrs["classes"]) == ["a", "b", "c"]
        ids, labels = h5["train/ids"].asstr()[:], h5["train/labels"][:]
        assert "train/groups" in h5 and h5["train/images"].shape[1:] == (32, 32, 3)
        assert list(h5["test/ids"].asstr()[:]) == list(pd.read_csv(raw / "test.csv", sep=";", dtype=str)["image"])
    written = table.set_index("image").loc[ids, "dx"].tolist()
    assert [("a", "b", "c")[k] for k in labels] == written and set(labels) == {0, 1, 2}
    hidden = pd.read_csv(raw / SYNTH_TEST_LABELS, dtype=str)
    assert set(hidden["label"]) <= {"a", "b", "c"}


def test_register_adapter_file_and_a_missing_kit_adapters_path(fresh_registry, tmp_path):
    path = _write(tmp_path, CSV_TOML.replace('"toml-lesions"', '"by-hand"'))
    assert register_adapter_file(path) is get_adapter("by-hand")
    with pytest.raises(KitError, match="two named 'by-hand'"):
        register_adapter_file(path)
    fresh_registry.setattr(registry, "_loaded", False)
    fresh_registry.setenv(registry.ENV_VAR, str(tmp_path / "nowhere.toml"))
    with pytest.raises(KitError, match=r"KIT_ADAPTERS: expected TOML files or folders.*nowhere.toml.*Fix:"):
        list_adapters()


def test_a_binary_folder_per_class_toml_with_the_defaults(tmp_path, fresh_registry):
    path = _write(
        tmp_path,
        """
        name = "flowers"
        slug = "someone/flowers"
        layout = "folder_per_class"
        train_dir = "flowers"
        classes = ["daisy", "rose"]
        task = "binary"
        metric = "roc_auc"
        image_shape = [24, 24, 1]
        optional_test = true
        """,
    )
    adapter = register_adapter_file(path)
    assert adapter.submission == "probability" and adapter.image_shape == (24, 24, 1)
    raw = synthesize("flowers", tmp_path / "raw", n_train=10, n_test=3, seed=1)
    assert {p.name for p in (raw / "flowers").iterdir()} == {"daisy", "rose"}
    summary = ingest("flowers", raw, tmp_path / "f.h5", workers=1, progress=False)
    assert (summary.n_train, summary.n_test, summary.quarantine) == (10, 3, [])


def test_the_generic_drawing_carries_the_class():
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 6
    images = draw_class_signal(rng, labels, (32, 32, 3), 6, vary=False)
    colourful = [image.reshape(-1, 3).std(1).max() for image in images]
    assert min(colourful) > 60  # a saturated class colour is drawn in every image
    means = np.array([image.reshape(-1, 3)[image.reshape(-1, 3).std(1) > 40].mean(0) for image in images])
    per_class = np.array([means[labels == k].mean(0) for k in range(6)])
    assert np.abs(means - per_class[labels]).max() < 25  # the colour is the class's, whatever the image
    assert len({tuple(np.round(c)) for c in per_class}) == 6
