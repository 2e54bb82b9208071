import json
import subprocess
import sys

import numpy as np
import pytest

from kit.adapters.registry import get_adapter
from kit.bench import augmentation_throughput, bench_ingest
from kit.train.augment import build_augmentation


def test_augmentation_throughput_reports_both_rates():
    images = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
    report = augmentation_throughput(
        images, build_augmentation(get_adapter("pcam").train_augment), seconds=0.05, batch_size=16
    )
    assert report["batch_images_per_s"] > 0 and report["per_image_images_per_s"] > 0
    assert report["threads"] == 2 and report["shape"] == [16, 16, 3] and report["speedup"] > 0


def _damage(raw, split: str, how: str) -> str:
    """Damage the first image of ``split`` in place (``junk``: not a TIFF at all; ``truncated``: the header and
    a few bytes of a real TIFF); returns its path relative to ``raw``."""
    path = sorted((raw / split).glob("*.tif"))[0]
    data = path.read_bytes()
    path.write_bytes(b"this is not an image\n" * 8 if how == "junk" else data[: len(data) // 5])
    return path.relative_to(raw).as_posix()


def _bench_cli(raw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "kit", "bench", "ingest", "--raw", str(raw), "--workers", "1", "--repeat", "1"]
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.mark.parametrize("how", ["junk", "truncated"])
def test_bench_ingest_skips_a_bad_train_file(synth_pcam, how):
    bad = _damage(synth_pcam, "train", how)
    figures = bench_ingest(synth_pcam, workers=1, repeat=1)
    assert figures["bad_files"] == 1 and figures["bad_file_examples"] == [bad], figures
    assert figures["images"] == 96 + 24 - 1  # both rates are over the same good files
    assert figures["kit_images_per_s"] > 0 and figures["pillow_images_per_s"] > 0 and figures["ratio"] > 0


def test_bench_ingest_cli_survives_a_junk_file(synth_pcam):
    bad = _damage(synth_pcam, "train", "junk")
    out = _bench_cli(synth_pcam)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout
    figures = json.loads(lines[0])
    assert figures["bench"] == "ingest" and figures["bad_files"] == 1 and figures["bad_file_examples"] == [bad]
    assert figures["images"] == 96 + 24 - 1


def test_bench_ingest_cli_names_a_bad_test_file(synth_pcam):
    # kit's ingest refuses a folder with an unusable test file (a submission needs every test id), so the
    # bench cannot time it either: a one-line error naming the file, before any timed run, and no traceback
    bad = _damage(synth_pcam, "test", "truncated")
    out = _bench_cli(synth_pcam)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stdout == "" and bad in out.stderr and "expected" in out.stderr and "Fix:" in out.stderr


def test_bench_train_cli_reports_model_and_loader_rates():
    cmd = [sys.executable, "-m", "kit", "bench", "train", "--backbone", "tiny_cnn", "--batch", "4", "--seconds", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout
    figures = json.loads(lines[0])
    assert figures["bench"] == "train" and figures["backbone"] == "tiny_cnn" and figures["batch"] == 4
    assert figures["image_shape"] == [96, 96, 3] and figures["precision"] == "float32"
    assert figures["device"] in ("cpu", "gpu", "tpu") and figures["backend"] in ("tensorflow", "jax", "torch")
    assert figures["model_images_per_s"] > 0 and figures["loader_images_per_s"] > 0 and figures["model_steps"] >= 3
    slower = "model" if figures["model_images_per_s"] <= figures["loader_images_per_s"] else "loader"
    assert figures["bound"] == slower and figures["loader_store"] == "synthetic"


def test_bench_train_cli_refuses_an_unknown_backbone():
    cmd = [sys.executable, "-m", "kit", "bench", "train", "--backbone", "no_such_net", "--seconds", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr and "Fix:" in out.stderr, out.stderr


@pytest.mark.slow
def test_gpu_check_quick_writes_one_summary_with_a_submission():
    out = subprocess.run([sys.executable, "-m", "kit.gpu_check", "--quick"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout
    summary = json.loads(lines[0])
    assert summary["check"] == "gpu" and summary["quick"] is True
    assert [t["backbone"] for t in summary["train"]] == ["tiny_cnn"] * len(summary["train"])
    assert all(t["model_images_per_s"] > 0 and t["bound"] in ("model", "loader") for t in summary["train"])
    if summary["device"] == "cpu":  # float32 only on a CPU, and the summary says so
        assert [t["precision"] for t in summary["train"]] == ["float32"] and "float32 only" in summary["note"]
    assert summary["tta"]["bench"] == "tta" and summary["tta"]["tta_images_per_s"] > 0
    assert summary["pipeline"]["submission_written"] and summary["pipeline"]["folds"] == 2
    assert all(step["rc"] == 0 for step in summary["steps"])


def test_gpu_check_imports_no_tensorflow():
    # it must run where only JAX is installed (KERAS_BACKEND=jax on a GPU machine)
    import ast
    from pathlib import Path

    import kit.gpu_check

    tree = ast.parse(Path(kit.gpu_check.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(name.split(".")[0] in ("tensorflow", "keras") for name in names), names
