import json
import os

import numpy as np
import pytest

from kit.files import atomic_write, write_json


def test_write_json_takes_numpy_values_and_paths_and_leaves_no_temporary_file(tmp_path):
    write_json(tmp_path / "a.json", {"auc": np.float32(0.5), "folds": np.arange(2), "store": tmp_path / "s.h5"})
    assert json.loads((tmp_path / "a.json").read_text()) == {
        "auc": 0.5,
        "folds": [0, 1],
        "store": str(tmp_path / "s.h5"),
    }
    assert os.listdir(tmp_path) == ["a.json"]


def test_a_write_that_fails_before_the_rename_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    atomic_write(path, b"old")

    def killed(src, dst):
        raise OSError("killed before the rename")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(OSError):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.json"]
