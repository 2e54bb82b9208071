"""Ship a trained run to a Kaggle code competition: the run and kit's source as one Kaggle dataset, plus an
inference-only driver kernel (no internet, no training) that writes ``/kaggle/working/submission.csv``.

``build_inference_kernel`` writes (default ``build/kernel``)::

    dataset/kit_src.zip             kit/ and competitions/ sources (as ``kit.kaggle.kernels.build_kernel``)
    dataset/kit_run.zip             the run: config.toml, env.json, metrics.json, folds.csv, OOF files and each
                                    finished fold's best weights (``kit.infer.code_submission.run_files``)
    dataset/kit_run.json            competition, run, folds, tta, CV: what the bundle holds
    dataset/dataset-metadata.json   id <user>/kit-<competition>-run (private)
    notebook/kit_<competition>_inference.py
                                    the driver: bundle on sys.path, then kit.notebook.predict(...)
    notebook/kernel-metadata.json   id <user>/kit-<competition>-inference: internet off, sources = bundle +
                                    competition
    inference.json                  what `kit submit NAME --kernel` records in the ledger (kernel, run, CV)

``kit kernel push`` (``kit.kaggle.kernels.push_kernel``) uploads it unchanged. Kaggle runs the notebook on the
competition's hidden test files when it is submitted (``kit submit NAME --kernel USER/SLUG --version N``).

Example:
    >>> bundle = build_inference_kernel("pcam", "runs/pcam/20261124-101500_cnn", user="me")  # doctest: +SKIP
    >>> bundle.kernel_id  # doctest: +SKIP
    'me/kit-pcam-inference'
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from kit.errors import KitError
from kit.files import write_json
from kit.infer.code_submission import MANIFEST, RUN_ZIP, run_files
from kit.kaggle.kernels import KernelBundle, build_kernel

__all__ = ["build_inference_kernel", "read_inference_record", "INFERENCE_TEMPLATE", "RECORD"]

RECORD = "inference.json"

INFERENCE_TEMPLATE = '''\
"""kit on Kaggle, inference only: {competition}, run {run} -> /kaggle/working/submission.csv (written by
`kit kernel build --inference`; no training, no internet)."""
import glob, os, sys

ROOT = os.environ.get("KIT_KAGGLE_ROOT", "/kaggle")
BUNDLE = f"{{ROOT}}/input/{bundle}"
sys.path[:0] = sorted(glob.glob(f"{{BUNDLE}}/kit_src*"))  # the zip, or the folder Kaggle unpacked it to
import kit.notebook

if __name__ == "__main__":  # ingest workers re-import this file when processes are spawned
    kit.notebook.predict(BUNDLE)
'''


def _slug(text: str) -> str:
    """A Kaggle dataset/kernel slug: lowercase letters, digits and hyphens."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")


def build_inference_kernel(
    competition: str,
    run_dir,
    out="build/kernel",
    user: str | None = None,
    bundle: str | None = None,
    gpu: bool = True,
) -> KernelBundle:
    """Pack ``run_dir`` (a run of ``competition`` with at least one finished fold) and write the inference kernel
    (see the module docstring); returns where it is. ``bundle``: the dataset slug (default
    ``kit-<competition>-run``)."""
    from kit.run import RunFolder

    run = RunFolder(run_dir)
    if not run.config_path.is_file():
        raise KitError(
            f"expected a run folder with config.toml at {run.path}, found none. Fix: pass a folder `kit train` made "
            f"(runs/{competition}/<time>_<name>)."
        )
    cfg = run.read_config()
    if cfg.competition != competition:
        raise KitError(
            f"expected a run of {competition}, got a run of {cfg.competition} ({run.path}). Fix: "
            f"`kit kernel build {cfg.competition} --inference {run.path}`, or pass a {competition} run."
        )
    files = run_files(run)
    folds = sorted(int(p.parts[0][4:]) for p in files if p.name == "best.weights.h5")
    if not folds:
        raise KitError(f"{run.path} has no finished fold to predict with. Fix: run `kit train` until a fold finishes.")
    if run.store() is None or run.image_shape() is None:
        raise KitError(
            f"expected env.json with the store and image shape in {run.path}, found none (the notebook ingests "
            "at the run's stored size). Fix: rerun `kit train` for that run (finished folds are skipped)."
        )
    bundle = _slug(bundle or f"kit-{competition}-run")
    made = build_kernel(competition, out=out, user=user, max_minutes=None, bundle=bundle, gpu=gpu)
    for old in made.notebook_dir.glob("*.py"):  # the training driver build_kernel wrote
        old.unlink()
    with zipfile.ZipFile(made.dataset_dir / RUN_ZIP, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in files:
            zf.write(run.path / rel, rel.as_posix())
    metrics = run.read_metrics()
    record = run.read_predict_record()
    manifest = {
        "competition": competition,
        "run": run.name,
        "folds": folds,
        "k": cfg.folds.k,
        "tta": cfg.predict.tta,
        "metric": metrics.metric if metrics else None,
        "cv_score": _cv(metrics, record),
    }
    write_json(made.dataset_dir / MANIFEST, manifest)
    meta_path = made.dataset_dir / "dataset-metadata.json"
    meta = json.loads(meta_path.read_text())
    meta |= {
        "title": f"kit {competition} run {run.name}"[:50],
        "description": f"kit sources and the trained run {run.name} ({len(folds)} fold(s)) for inference.",
    }
    write_json(meta_path, meta)
    user_name = made.dataset_id.split("/", 1)[0]
    kernel_id = f"{user_name}/{_slug(f'kit-{competition}-inference')}"
    code_file = f"kit_{competition.replace('-', '_')}_inference.py"
    (made.notebook_dir / code_file).write_text(
        INFERENCE_TEMPLATE.format(competition=competition, run=run.name, bundle=bundle)
    )
    kernel_meta_path = made.notebook_dir / "kernel-metadata.json"
    kernel_meta = json.loads(kernel_meta_path.read_text())
    kernel_meta |= {
        "id": kernel_id,
        "title": f"kit {competition} inference",
        "code_file": code_file,
        "enable_gpu": gpu,
        "enable_internet": False,
    }
    write_json(kernel_meta_path, kernel_meta)
    write_json(made.root / RECORD, {**manifest, "kernel": kernel_id, "dataset": made.dataset_id})
    return KernelBundle(made.root, made.dataset_dir, made.notebook_dir, made.dataset_id, kernel_id)


def _cv(metrics, record) -> float | None:
    """The run's CV: with TTA when `kit predict --oof` scored it, else the plain OOF score (None if partial)."""
    if record is not None and record.oof_score_tta is not None:
        return float(record.oof_score_tta)
    return float(metrics.oof_score) if metrics is not None and metrics.oof_score is not None else None


def read_inference_record(folder="build/kernel") -> dict | None:
    """What `build_inference_kernel` recorded in ``folder`` (kernel, run, CV), or None when it holds none."""
    try:
        record = json.loads((Path(folder) / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
