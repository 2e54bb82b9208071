"""Folds in parallel on several kernels (push, status, pull + merge) and resuming a kernel across versions, against
the fake Kaggle: the real client pushes, asks for statuses and downloads outputs over loopback."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import TINY_RECIPE
from kaggle_server import USERNAME, kaggle_env, run_cli, zip_folder  # noqa: F401  (kaggle_env is a fixture)

from kit.config import identity_hash, resolve_config
from kit.errors import KitError
from kit.kaggle.fold_kernels import (
    build_fold_kernels,
    merge_runs,
    parse_fold_groups,
    read_manifest,
    restore_run,
    run_fold_group,
)
from kit.run import RunFolder

RECIPE = TINY_RECIPE + ["folds.k=3", "train.epochs=2"]


def _set_flags(recipe):
    return [arg for item in recipe for arg in ("--set", item)]


def _files_text(folder: Path) -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file())


def test_fold_groups_are_checked():
    assert parse_fold_groups(["0,1", "2", " 4 ,3"], 5) == [[0, 1], [2], [3, 4]]
    with pytest.raises(KitError, match="between 0 and 2"):
        parse_fold_groups(["0,3"], 3)
    with pytest.raises(KitError, match=r"fold \[1\] twice"):
        parse_fold_groups(["0,1", "1,2"], 3)
    with pytest.raises(KitError, match="expected --folds like 0,1"):
        parse_fold_groups(["a"], 3)


def test_push_one_kernel_per_fold_group_with_one_config(kaggle_env, tmp_path):
    out = tmp_path / "k"
    argv = ["kernel", "push", "pcam", "--folds", "0", "--folds", "1", "--folds", "2", "--dir", str(out)]
    assert run_cli(argv + ["--user", USERNAME] + _set_flags(RECIPE)) == 0
    server = kaggle_env.server
    digest = identity_hash(resolve_config("pcam", overrides=RECIPE))
    assert len(server.datasets[f"{USERNAME}/kit-bundle"]) == 1  # the bundle uploaded once
    bodies = server.kernels
    assert len(bodies) == 3
    for body, folds in zip(bodies, ([0], [1], [2])):
        slug = f"kit-pcam-{digest}-folds-{folds[0]}"
        assert body["slug"] == f"{USERNAME}/{slug}" and body["newTitle"] == slug
        assert f"folds={folds!r}" in body["text"] and f"CONFIG_HASH = {digest!r}" in body["text"]
        assert f"run_name='{digest}_tiny_cnn'" in body["text"]
        assert body.get("kernelDataSources", []) == []  # a first version has nothing to resume
        compile(body["text"], "driver.py", "exec")
    manifest = read_manifest(out)
    assert manifest["config_hash"] == digest and [k["folds"] for k in manifest["kernels"]] == [[0], [1], [2]]
    assert kaggle_env.key not in _files_text(out)

    # the next version resumes: each kernel lists its own previous output, the driver restores from it
    assert run_cli(["kernel", "push", "--resume", "--dir", str(out)]) == 0
    resumed = server.kernels[3:]
    assert [b["kernelDataSources"] for b in resumed] == [[b["slug"]] for b in resumed]
    assert all("restore_run(" in b["text"] for b in resumed)
    meta = json.loads((out / manifest["kernels"][0]["dir"] / "kernel-metadata.json").read_text())
    assert meta["kernel_sources"] == [meta["id"]]


def test_the_single_kernel_resumes_too(kaggle_env, tmp_path):
    from kit.kaggle.kernels import build_kernel, push_kernel

    bundle = build_kernel("pcam", out=tmp_path / "k", user=USERNAME)
    push_kernel(bundle.root, resume=True)
    body = kaggle_env.server.kernels[-1]
    assert body["kernelDataSources"] == [f"{USERNAME}/kit-pcam"]
    assert "restore_run('kit-pcam', 'pcam', 'kernel')" in body["text"]


def test_the_driver_restores_the_previous_run_folder(tmp_path, monkeypatch):
    kaggle = tmp_path / "kaggle"
    monkeypatch.setenv("KIT_KAGGLE_ROOT", str(kaggle))
    monkeypatch.delenv("KIT_RUNS_DIR", raising=False)
    assert restore_run("kit-pcam-x", "pcam", "abc_tiny_cnn") is None  # nothing attached: nothing to do
    previous = kaggle / "input" / "kit-pcam-x" / "runs" / "pcam" / "abc_tiny_cnn"
    RunFolder(previous).write_config(resolve_config("pcam", overrides=RECIPE))
    (previous / "folds.csv").write_text("id,fold\na,0\n")
    (previous / "fold0").mkdir()
    (previous / "fold0" / "done.json").write_text("{}")
    (previous / "fold1").mkdir()
    (previous / "fold1" / "state.json").write_text('{"epoch": 1}')
    (previous / "fold1" / "last.keras").write_bytes(b"model")
    for path in previous.rglob("*"):
        path.chmod(0o444 if path.is_file() else 0o555)  # /kaggle/input is read-only
    working = kaggle / "working" / "runs" / "pcam" / "abc_tiny_cnn"
    restored = restore_run("kit-pcam-x", "pcam", "abc_tiny_cnn")
    assert restored == working
    assert (working / "fold0" / "done.json").exists() and (working / "fold1" / "last.keras").read_bytes() == b"model"
    assert json.loads((working / "fold1" / "state.json").read_text()) == {"epoch": 1}
    (working / "fold1" / "state.json").write_text('{"epoch": 2}')  # newer work in /kaggle/working is kept
    restore_run("kit-pcam-x", "pcam", "abc_tiny_cnn")
    assert json.loads((working / "fold1" / "state.json").read_text()) == {"epoch": 2}
    for path in previous.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _part(root: Path, overrides, folds_text="id,fold\na,0\nb,1\nc,2\n") -> Path:
    run = RunFolder(root)
    run.write_config(resolve_config("pcam", overrides=overrides))
    run.folds_path.write_text(folds_text)
    return root


def test_merge_refuses_parts_of_another_config_or_split(tmp_path):
    one = _part(tmp_path / "one", RECIPE)
    other = _part(tmp_path / "other", RECIPE + ["train.lr=1e-2"])
    with pytest.raises(KitError, match=r"expected every part trained with config \w+ .*got \w+ .*Fix:"):
        merge_runs([one, other], tmp_path / "merged")
    split = _part(tmp_path / "split", RECIPE, "id,fold\na,1\nb,0\nc,2\n")
    with pytest.raises(KitError, match="expected the same folds.csv in every part.*Fix:"):
        merge_runs([one, split], tmp_path / "merged")


@pytest.mark.slow
def test_pull_merges_the_finished_kernels_and_names_the_failed_one(kaggle_env, tmp_path, train_store, capsys):
    from kit.infer.predict import predict_run
    from kit.train.loop import train

    out = tmp_path / "k"
    manifest = build_fold_kernels("pcam", ["0", "1", "2"], out=out, user=USERNAME, overrides=RECIPE)
    run_name, server = manifest["run_name"], kaggle_env.server
    working = {}
    for fold in (0, 1):  # what the two finished kernels left in /kaggle/working
        working[fold] = tmp_path / f"working{fold}"
        train(
            "pcam",
            store=train_store,
            overrides=RECIPE,
            folds=str(fold),
            run_dir=working[fold] / "runs" / "pcam" / run_name,
            verbose=0,
        )
        (working[fold] / "submission.csv").write_text("not pulled\n")  # other outputs stay on Kaggle
    # the third kernel timed out in fold 2: config and folds written, the fold unfinished
    failed = tmp_path / "working2" / "runs" / "pcam" / run_name
    shutil.copytree(working[0] / "runs" / "pcam" / run_name, failed, ignore=shutil.ignore_patterns("fold[0-9]*"))
    (failed / "fold2").mkdir()
    (failed / "fold2" / "state.json").write_text('{"epoch": 1}')
    log = json.dumps([{"stream_name": "stderr", "time": 1.0, "data": "epoch 1/2\nTraceback: session timed out\n"}])
    ids = [k["id"] for k in manifest["kernels"]]
    server.finish_kernel(ids[0], output=zip_folder(working[0]), log="[]")
    server.finish_kernel(ids[1], output=zip_folder(working[1]))
    server.finish_kernel(ids[2], "ERROR", zip_folder(tmp_path / "working2"), log, failure="Kernel timed out")

    assert run_cli(["kernel", "status", "--dir", str(out)]) == 0
    status = capsys.readouterr().out
    assert f"{ids[2]}  folds 2  error  Kernel timed out" in status and f"{ids[0]}  folds 0  complete" in status

    merged = tmp_path / "merged"
    assert run_cli(["kernel", "pull", str(merged), "--dir", str(out), "--store", str(train_store)]) == 0
    said = capsys.readouterr().out
    assert f"kernel {ids[2]} (folds [2]): error (Kernel timed out)" in said and "session timed out" in said
    assert "missing [2]" in said
    run = RunFolder(merged)
    assert run.fold(0).is_done() and run.fold(1).is_done() and not run.fold(2).dir.exists()
    for fold in (0, 1):
        assert run.fold(fold).stamp() == RunFolder(working[fold] / "runs" / "pcam" / run_name).fold(fold).stamp()
    assert run.read_metrics().missing_folds == [2] and not (merged / "submission.csv").exists()
    assert not list(tmp_path.glob(".merged-parts-*"))  # the downloads are cleaned up
    assert {"GetKernelSessionStatus", "ListKernelSessionOutput", "KernelFile"} <= set(server.calls)

    result = predict_run(merged)  # as on a local run: the finished folds, the missing one named
    assert result.folds == [0, 1] and len(result.test_pred) == 48
    assert (merged / "test_pred.csv").exists()
    assert kaggle_env.key not in _files_text(merged) + _files_text(out)


@pytest.mark.slow
def test_a_fold_group_kernel_trains_only_its_folds_in_a_kaggle_tree(synth_pcam_master, tmp_path, monkeypatch):
    kaggle = tmp_path / "kaggle"
    shutil.copytree(synth_pcam_master, kaggle / "input" / "histopathologic-cancer-detection")
    (kaggle / "working").mkdir()
    monkeypatch.setenv("KIT_KAGGLE_ROOT", str(kaggle))
    overrides = RECIPE
    with pytest.raises(KitError, match="expected config 0000000000 .* got "):
        run_fold_group("pcam", [1], overrides=overrides, expected_hash="0000000000")
    wanted = identity_hash(resolve_config("pcam", overrides=overrides))
    run = RunFolder(run_fold_group("pcam", [1], overrides=overrides, run_name="part", expected_hash=wanted))
    assert run.path == kaggle / "working" / "runs" / "pcam" / "part"
    assert [f for f in range(3) if run.fold(f).is_done()] == [1]  # only its group; the others stay to other kernels
    assert run.read_metrics().missing_folds == [0, 2]
