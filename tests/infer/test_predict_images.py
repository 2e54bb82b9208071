import shutil
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from kit.adapters.image_spec import ImageSpec
from kit.cli.main import main
from kit.errors import KitError
from kit.infer.predict import predict_run
from kit.infer.predict_images import list_images, predict_images
from kit.ingest.decode import read_image


@pytest.fixture
def run(trained_run, tmp_path):
    return shutil.copytree(trained_run, tmp_path / "runs" / "pcam" / "20260101-000000_tiny")


@pytest.fixture
def new_images(train_store, tmp_path):
    """Ten of the store's test images as new files: five TIFFs as Kaggle ships them, five re-encoded as PNG
    (lossless) in a subfolder."""
    tiffs = sorted((train_store.parent / "raw" / "test").glob("*.tif"))[:10]
    folder = tmp_path / "new"
    (folder / "png").mkdir(parents=True)
    for k, path in enumerate(tiffs):
        if k % 2:
            rgb = read_image(path, ImageSpec((96, 96, 3), "tiff"))
            cv2.imwrite(str(folder / "png" / f"{path.stem}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        else:
            shutil.copy(path, folder / path.name)
    return folder


def _ids(folder):
    return sorted(p.stem for p in folder.rglob("*.*"))


def test_a_folder_of_tiff_and_png_predicts_as_the_store_does(run, new_images, tmp_path):
    from_store = predict_run(run, tta="d4").test_pred.set_index("id")["pred"]
    result = predict_images(run, new_images, tmp_path / "pred.csv", tta="d4")
    written = pd.read_csv(tmp_path / "pred.csv", dtype={"id": str})
    assert written.columns.tolist() == ["id", "label"] and result.folds == [0, 1] and result.tta == "d4"
    assert sorted(written["id"]) == _ids(new_images)
    np.testing.assert_allclose(written["label"], from_store.loc[written["id"]], atol=1e-5)
    assert result.ignored == []


def test_a_csv_of_paths_works_with_a_path_column_or_the_first_column(run, new_images, tmp_path):
    folder = predict_images(run, new_images, tmp_path / "folder.csv", tta="none").table
    files = sorted(p for p in new_images.rglob("*.*"))
    listed = tmp_path / "lists" / "images.csv"
    listed.parent.mkdir()
    pd.DataFrame({"n": range(len(files)), "path": [str(p) for p in files]}).to_csv(listed, index=False)
    by_path = predict_images(run, listed, tmp_path / "by_path.csv", tta="none").table
    relative = new_images / "images.csv"  # the first column, paths relative to the CSV's folder
    pd.DataFrame({"file": [str(p.relative_to(new_images)) for p in files]}).to_csv(relative, index=False)
    by_first = predict_images(run, relative, tmp_path / "by_first.csv", tta="none").table
    expected = folder.set_index("id")["label"]
    for table in (by_path, by_first):
        assert table["id"].tolist() == [p.stem for p in files]
        np.testing.assert_allclose(table["label"], expected.loc[table["id"]], rtol=1e-6)


def test_unreadable_files_are_listed_with_the_fix_and_nothing_is_written(run, new_images, tmp_path):
    (new_images / "broken.png").write_bytes(b"\x89PNG not really")
    (new_images / "empty.tif").write_bytes(b"")
    out = tmp_path / "pred.csv"
    with pytest.raises(KitError, match=r"2 of 12 file\(s\)") as e:
        predict_images(run, new_images, out, tta="none")
    message = str(e.value)
    assert "broken.png: corrupt or truncated" in message and "empty.tif: empty file" in message
    assert "Fix:" in message and not out.exists()
    listed = tmp_path / "list.csv"
    pd.DataFrame({"path": [str(tmp_path / "gone.png")]}).to_csv(listed, index=False)
    with pytest.raises(KitError, match=r"gone.png: unreadable file"):
        predict_images(run, listed, out, tta="none")


def test_the_same_id_in_two_folders_is_refused_naming_both(new_images):
    first = next(new_images.glob("*.tif"))
    shutil.copy(first, new_images / "png" / first.name)
    with pytest.raises(KitError, match=rf"1 id\(s\).*\n  {first.stem}: .*{first.name}, .*png/{first.name}"):
        list_images(new_images)


def test_other_files_are_reported_and_out_is_not_overwritten_without_force(run, new_images, tmp_path):
    (new_images / "notes.txt").write_text("not an image")
    out = tmp_path / "pred.csv"
    result = predict_images(run, new_images, out, tta="none")
    assert result.ignored == [str(new_images / "notes.txt")] and len(result.table) == 10
    with pytest.raises(KitError, match="exists. Fix: pass --force"):
        predict_images(run, new_images, out, tta="none")
    out.write_text("old")
    predict_images(run, new_images, out, tta="none", force=True)
    assert out.read_text().startswith("id,label\n")


def test_cli_predicts_images_and_checks_its_options(run, new_images, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), "--images", str(new_images), "--out", str(out), "--tta", "none"]) == 0
    assert "predicted 10 images with folds [0, 1] (TTA none)" in capsys.readouterr().out
    assert len(pd.read_csv(out)) == 10 and not (run / "test_pred.csv").exists()  # the test split is left alone
    assert main(["predict", str(run), "--images", str(new_images)]) == 2
    assert "expected --out CSV with --images" in capsys.readouterr().err
    assert main(["predict", str(run), "--out", str(out)]) == 2
    assert "expected --out only with --images" in capsys.readouterr().err
    assert main(["predict", str(run), "--images", str(new_images), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", str(run), "--images", str(new_images), "--out", str(out), "--oof"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_python_m_kit_predict_images(run, new_images, tmp_path):
    out = tmp_path / "pred.csv"
    done = subprocess.run(
        [sys.executable, "-m", "kit", "predict", str(run), "--images", str(new_images), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "(TTA d4)" in done.stdout
    table = pd.read_csv(out, dtype={"id": str})
    assert sorted(table["id"]) == _ids(new_images) and table["label"].between(0, 1).all()
