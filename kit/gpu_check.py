"""`make gpu-check`: one prepared run of the figures that need an accelerator, as one JSON summary on stdout.

Each step is a separate ``python -m kit`` process (a fresh model graph and the whole device for each), so this
module imports neither Keras nor TensorFlow and runs under whatever ``KERAS_BACKEND`` is set (``jax`` on a GPU
machine without TensorFlow). Steps: ``kit bench train`` for compact_cnn, efficientnet_b0 and densenet169 at
float32 and at mixed precision (``--precision auto``: mixed_float16 on a GPU; skipped on a CPU, which says so),
the first of them again with ``--augment-on model``, ``kit bench tta``, and a 2-fold synthetic pipeline (synth ->
ingest -> train -> predict -> ensemble) with its submission written. ``--quick`` (tests): tiny_cnn only and a
20-second pipeline.

Example:
    $ python -m kit.gpu_check --quick
    {"check": "gpu", "quick": true, "device": "cpu", "backend": "tensorflow", "train": [...], ...}
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["run_check", "main"]

FULL = {"backbones": ("compact_cnn", "efficientnet_b0", "densenet169"), "seconds": 10, "minutes": 2.0, "n": 2000}
QUICK = {"backbones": ("tiny_cnn",), "seconds": 1, "minutes": 20 / 60, "n": 200}


def _kit(*args: str, log: list) -> str:
    """Run ``python -m kit ARGS``; its stdout. A failure stops the check with the step's stderr tail."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "kit", *args], capture_output=True, text=True)
    step = args[0] if os.sep in args[1] else " ".join(args[:2])  # "predict", not the temporary run's path
    log.append({"step": step, "s": round(time.perf_counter() - started, 1), "rc": out.returncode})
    if out.returncode:
        raise RuntimeError(f"`kit {' '.join(args)}` failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return out.stdout


def _json_line(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def run_check(quick: bool, workdir: Path) -> dict:
    plan, log = (QUICK if quick else FULL), []
    raw, store, run_dir, out_dir = workdir / "raw", workdir / "pcam.h5", workdir / "run", workdir / "submissions"
    n_train, n_test = plan["n"], plan["n"] // 4
    _kit("synth", "pcam", str(raw), "--train", str(n_train), "--test", str(n_test), "--seed", "0", log=log)
    _kit("ingest", "pcam", "--raw", str(raw), "--store", str(store), log=log)
    summary = {"check": "gpu", "quick": quick, "backend": os.environ.get("KERAS_BACKEND", "tensorflow")}
    train, precisions = [], ["float32"]
    for backbone in plan["backbones"]:
        for precision in list(precisions):
            args = ["--backbone", backbone, "--batch", "64", "--seconds", str(plan["seconds"]), "--store", str(store)]
            figures = _json_line(_kit("bench", "train", *args, "--precision", precision, log=log))
            train.append(figures)
            summary.update(device=figures["device"], backend=figures["backend"])
            if figures["device"] != "cpu" and precisions == ["float32"]:
                precisions.append("auto")  # the device's mixed policy (mixed_float16 on a GPU)
                train.append(_json_line(_kit("bench", "train", *args, "--precision", "auto", log=log)))
    summary["train"] = train
    # the augmentation on the accelerator: the loader serves plain batches, the step applies the layers
    args = ["--backbone", plan["backbones"][0], "--batch", "64", "--seconds", str(plan["seconds"])]
    args += ["--store", str(store), "--augment-on", "model"]
    summary["train_augment_on_model"] = _json_line(_kit("bench", "train", *args, log=log))
    if summary["device"] == "cpu":
        summary["note"] = "CPU: float32 only (kit trains in float32 on CPUs; mixed precision is for accelerators)"
    tta_backbone = plan["backbones"][0]
    summary["tta"] = _json_line(_kit("bench", "tta", "--store", str(store), "--backbone", tta_backbone, log=log))
    started = time.perf_counter()
    budget = f"{plan['minutes']:.3f}"
    sets = ["--set", "folds.k=2"] + (["--set", "model.backbone=tiny_cnn"] if quick else [])
    _kit("train", "pcam", "--store", str(store), "--run-dir", str(run_dir), "--max-minutes", budget, *sets, log=log)
    _kit("predict", str(run_dir), "--oof", log=log)
    _kit("ensemble", str(run_dir), "--out-dir", str(out_dir), log=log)
    csvs = sorted(out_dir.rglob("*.csv"))
    rows = sum(1 for _ in csvs[0].open()) - 1 if csvs else 0
    summary["pipeline"] = {
        "train_images": n_train,
        "test_images": n_test,
        "folds": 2,
        "max_minutes": round(plan["minutes"], 2),
        "seconds": round(time.perf_counter() - started, 1),
        "submission_written": bool(csvs) and rows == n_test,
        "submission_rows": rows,
    }
    summary["steps"] = log
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny_cnn only and a 20-second pipeline (tests)")
    parser.add_argument("--workdir", help="keep the synthetic data and the run here (default: a temporary folder)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        if args.workdir:
            summary = run_check(args.quick, Path(args.workdir))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                summary = run_check(args.quick, Path(tmp))
    except RuntimeError as e:
        print(f"gpu-check: {e}", file=sys.stderr)
        return 1
    summary["total_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
