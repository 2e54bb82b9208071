"""Kaggle-notebook support: location detection, the kernel bundle, pushing it over loopback, and the whole
pipeline run offline from the bundle in a clean environment holding only the runtime dependencies."""

import configparser
import importlib.metadata as metadata
import json
import os
import shutil
import subprocess
import sysconfig
import venv
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY_RECIPE
from kaggle_server import SLUG, kaggle_env  # noqa: F401  (kaggle_env is a fixture)
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import kit.notebook
from kit import paths
from kit.errors import KitError
from kit.ingest.writer import ingest
from kit.kaggle.kernels import PLACEHOLDER, build_kernel, push_kernel
from kit.train.loop import train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_kaggle_env(monkeypatch):
    for name in (
        "KIT_KAGGLE",
        "KIT_KAGGLE_ROOT",
        "KAGGLE_KERNEL_RUN_TYPE",
        "KIT_DATA_DIR",
        "KIT_RUNS_DIR",
        "KIT_SUBMISSIONS_DIR",
        "KIT_RAW_DIR",
        "KAGGLE_USERNAME",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_locations_locally_and_inside_a_kaggle_notebook(no_kaggle_env, tmp_path):
    if Path("/kaggle/input").is_dir():
        pytest.skip("this machine is a Kaggle notebook")
    assert paths.kaggle_root() is None and paths.default_raw("pcam") == Path("data/pcam/raw")
    no_kaggle_env.setenv("KIT_KAGGLE_ROOT", str(tmp_path / "kaggle"))
    assert paths.runs_dir() == tmp_path / "kaggle/working/runs"
    assert paths.default_store("pcam") == tmp_path / "kaggle/working/data/pcam/pcam.h5"
    assert paths.submissions_dir() == tmp_path / "kaggle/working/submissions"
    assert paths.default_raw("pcam") == tmp_path / "kaggle/input/histopathologic-cancer-detection"
    assert paths.default_raw("chest-xray") == tmp_path / "kaggle/input/chest-xray-pneumonia"
    no_kaggle_env.setenv("KIT_RUNS_DIR", str(tmp_path / "elsewhere"))  # an explicit location still wins
    assert paths.runs_dir() == tmp_path / "elsewhere"
    no_kaggle_env.delenv("KIT_KAGGLE_ROOT")
    no_kaggle_env.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")  # what Kaggle's kernels set
    assert paths.kaggle_root() == Path("/kaggle") and paths.working_dir() == Path("/kaggle/working")
    no_kaggle_env.setenv("KIT_KAGGLE", "0")
    assert paths.kaggle_root() is None


def test_build_checks_the_overrides_before_writing_anything(no_kaggle_env, tmp_path):
    with pytest.raises(KitError, match="unknown config key 'train.lrr'"):
        build_kernel("pcam", out=tmp_path / "k", user="someone", overrides=["train.lrr=1e-3"])
    assert not (tmp_path / "k").exists()


def test_build_writes_the_bundle_and_the_kernel(no_kaggle_env, tmp_path):
    bundle = build_kernel("pcam", out=tmp_path / "k", user="someone", max_minutes=300, overrides=["train.lr=1e-3"])
    with zipfile.ZipFile(bundle.dataset_dir / "kit_src.zip") as zf:
        names = zf.namelist()
    assert "kit/__init__.py" in names and "competitions/pcam.py" in names and "kit/models/registry.py" in names
    assert all(n.endswith(".py") for n in names) and not any(n.startswith("tests/") for n in names)
    meta = json.loads((bundle.notebook_dir / "kernel-metadata.json").read_text())
    assert meta["id"] == "someone/kit-pcam" and meta["enable_internet"] is False and meta["enable_gpu"] is True
    assert meta["dataset_sources"] == ["someone/kit-bundle"] and meta["competition_sources"] == [SLUG]
    driver = (bundle.notebook_dir / meta["code_file"]).read_text()
    compile(driver, meta["code_file"], "exec")
    assert "max_minutes=300" in driver and "'train.lr=1e-3'" in driver
    assert json.loads((bundle.dataset_dir / "dataset-metadata.json").read_text())["id"] == "someone/kit-bundle"
    with pytest.raises(KitError, match="not a competition"):
        build_kernel("chest-xray", out=tmp_path / "x", user="someone")


def test_push_uploads_the_bundle_then_versions_it_and_pushes_the_kernel(kaggle_env, tmp_path):
    bundle = build_kernel("pcam", out=tmp_path / "k", user="kit-tester")
    first = push_kernel(bundle.root)
    server = kaggle_env.server
    assert first["dataset"] == "kit-tester/kit-bundle" and first["kernel"].endswith("/kit-pcam")
    stored = server.datasets["kit-tester/kit-bundle"]
    assert len(stored) == 1 and stored[0]["files"]["kit_src.zip"] == (bundle.dataset_dir / "kit_src.zip").read_bytes()
    pushed = server.kernels[-1]
    assert pushed["text"] == (bundle.notebook_dir / "kit_pcam.py").read_text()
    assert pushed["enableInternet"] is False and pushed["competitionDataSources"] == [SLUG]
    server.fail("SaveKernel", 503)  # a transient failure is retried
    push_kernel(bundle.root)  # the second push makes a new version of the same dataset
    assert len(server.datasets["kit-tester/kit-bundle"]) == 2 and len(server.kernels) == 2
    assert "CreateDatasetVersion" in server.calls and server.calls.count("SaveKernel") == 3


def test_push_refuses_a_bundle_without_a_username(no_kaggle_env, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "nowhere"))
    bundle = build_kernel("pcam", out=tmp_path / "k")
    assert bundle.kernel_id == f"{PLACEHOLDER}/kit-pcam"
    with pytest.raises(KitError, match="--user"):
        push_kernel(bundle.root)


def _runtime_distributions() -> list:
    """The installed distributions the project's install_requires need, followed transitively."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    todo = [Requirement(line) for line in cfg["options"]["install_requires"].split("\n") if line.strip()]
    found = {}
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency that is not installed
        found[name] = dist
        for line in dist.requires or []:
            nested = Requirement(line)
            if nested.marker is None or nested.marker.evaluate({"extra": ""}):
                todo.append(nested)
    return list(found.values())


def _clean_python(root: Path) -> Path:
    """A new virtual environment whose site-packages links only the runtime dependencies (not kit, not pytest)."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    python = root / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    ours = Path(sysconfig.get_path("purelib"))
    for dist in _runtime_distributions():
        for top in {Path(f).parts[0] for f in dist.files or [] if Path(f).parts and Path(f).parts[0] != ".."}:
            source = Path(dist.locate_file(top))
            if (
                top not in ("__pycache__", "bin")
                and source.exists()
                and source.parent == ours
                and not (site / top).exists()
            ):
                (site / top).symlink_to(source)
    return python


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")} if folder.exists() else {}


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["zip", "folder"])  # as uploaded, and as Kaggle unpacks an uploaded zip
def test_pipeline_runs_offline_from_the_bundle_in_a_clean_environment(
    layout, synth_pcam_master, tmp_path, no_kaggle_env
):
    python = _clean_python(tmp_path / "venv")
    for module in ("kit", "pytest"):  # the project is not installed, and nothing beyond the runtime is there
        probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True, cwd=tmp_path)
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, (module, probe.stderr)

    kaggle = tmp_path / "kaggle"
    shutil.copytree(synth_pcam_master, kaggle / "input" / SLUG)
    bundle = build_kernel(
        "pcam", out=tmp_path / "build", user="me", max_minutes=None, overrides=TINY_RECIPE + ["train.epochs=3"]
    )
    (kaggle / "input" / "kit-bundle").mkdir()
    if layout == "zip":
        shutil.copy(bundle.dataset_dir / "kit_src.zip", kaggle / "input" / "kit-bundle")
    else:
        shutil.unpack_archive(bundle.dataset_dir / "kit_src.zip", kaggle / "input" / "kit-bundle" / "kit_src")
    (kaggle / "src").mkdir()
    driver = shutil.copy(bundle.notebook_dir / "kit_pcam.py", kaggle / "src")
    (kaggle / "working").mkdir()
    home, scratch = tmp_path / "home", tmp_path / "tmp"
    home.mkdir(), scratch.mkdir()
    before = {name: _snapshot(kaggle / name) for name in ("input", "src")}

    # /kaggle/input is read-only on Kaggle, so Python writes no bytecode there; root ignores file modes, so say it
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "TMPDIR": str(scratch),
        "KIT_KAGGLE_ROOT": str(kaggle),
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [python, driver], cwd=kaggle / "working", env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    submission = pd.read_csv(kaggle / "working" / "submission.csv", dtype={"id": str})
    expected = pd.read_csv(kaggle / "input" / SLUG / "sample_submission.csv", dtype={"id": str})
    assert submission["id"].tolist() == expected["id"].tolist() and submission["label"].between(0, 1).all()
    assert (kaggle / "working" / "runs" / "pcam" / "kernel" / "metrics.json").exists()
    assert {name: _snapshot(kaggle / name) for name in ("input", "src")} == before
    assert sorted(p.name for p in kaggle.iterdir()) == ["input", "src", "working"]
    assert list(home.iterdir()) == [] and list(scratch.iterdir()) == []


@pytest.mark.slow
def test_notebook_run_after_a_timeout_submits_the_finished_folds(synth_pcam_master, tmp_path, no_kaggle_env):
    kaggle = tmp_path / "kaggle"
    shutil.copytree(synth_pcam_master, kaggle / "input" / SLUG)
    no_kaggle_env.setenv("KIT_KAGGLE_ROOT", str(kaggle))
    no_kaggle_env.chdir(tmp_path)
    recipe = TINY_RECIPE + ["train.epochs=2"]
    ingest("pcam", kaggle / "input" / SLUG, paths.default_store("pcam"), workers=1, progress=False)
    train(
        "pcam",
        store=paths.default_store("pcam"),
        overrides=recipe,
        folds="0",
        verbose=0,
        run_dir=paths.runs_dir() / "pcam" / "kernel",
    )  # the session that timed out finished fold 0 only
    csv = kit.notebook.run("pcam", max_minutes=1e-6, overrides=recipe)  # no time left for fold 1
    assert csv == kaggle / "working" / "submission.csv"
    submission = pd.read_csv(csv, dtype={"id": str})
    expected = pd.read_csv(kaggle / "input" / SLUG / "sample_submission.csv", dtype={"id": str})
    assert submission["id"].tolist() == expected["id"].tolist() and submission["label"].between(0, 1).all()
    sidecars = list((kaggle / "working" / "submissions" / "pcam").glob("*partial.json"))
    assert len(sidecars) == 1 and json.loads(sidecars[0].read_text())["partial"] is True
