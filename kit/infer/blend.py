"""The last step of the pipeline: blend runs' predictions and write the submission CSV with its sidecar.

Example:
    >>> from kit.infer.blend import blend_and_submit
    >>> csv = blend_and_submit(["runs/pcam/A", "runs/pcam/B"], method="hill")  # doctest: +SKIP
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from kit import paths
from kit.adapters.registry import get_adapter
from kit.infer.ensemble import ensemble_runs, format_report, write_ensemble
from kit.errors import KitError
from kit.run import load_run_config
from kit.infer.submission import Sidecar, expected_ids_from_store, write_submission

__all__ = ["blend_and_submit"]


def blend_and_submit(run_dirs, method: str = "mean", out_dir=None, name: str | None = None,
                     verbose: bool = True) -> Path:
    """Blend ``run_dirs`` (``kit.infer.ensemble``), save the blend, and write the submission; return the CSV path.

    The CSV goes to ``<out_dir or submissions/>/<competition>/<time>_<name>.csv``. When the same runs blended
    the same way already gave a byte-identical submission, that file is returned and nothing new is written.
    """
    runs = [Path(r) for r in run_dirs]
    configs = [load_run_config(r) for r in runs]
    competitions = {c["competition"] for c in configs}
    if len(competitions) != 1:
        raise KitError(f"expected runs of one competition, got {sorted(competitions)}. Fix: blend each separately.")
    competition = competitions.pop()
    adapter = get_adapter(competition)
    result = ensemble_runs(runs, method=method)
    name = name or "+".join(r.name.split("_", 1)[-1] for r in runs)
    blend_dir = runs[0].parent / "ensembles" / f"{time.strftime('%Y%m%d-%H%M%S')}_{method}_{len(runs)}runs"
    if verbose:
        print(format_report(result))
    store = json.loads((runs[0] / "env.json").read_text())["store"]
    metrics = [json.loads((r / "metrics.json").read_text()) for r in runs]
    sidecar = Sidecar(
        competition=competition,
        runs=tuple(str(r) for r in runs),
        method=method,
        weights=result.weights,
        cv_score=result.oof_auc,
        member_cv={m.name: m.oof_auc for m in result.members},
        tta=sorted({m.get("test_tta", "none") for m in metrics}),
        blend_dir=str(blend_dir),
    )
    out_dir = Path(out_dir or paths.submissions_dir())
    earlier = set((out_dir / competition).glob("*.csv"))
    csv = write_submission(competition, result.test["id"].tolist(), result.test["pred"].to_numpy(), name,
                           expected_ids=expected_ids_from_store(store), id_column=adapter.id_column,
                           label_column=adapter.label_column, sidecar=sidecar,
                           out_dir=out_dir, reuse_identical=True)
    written = csv not in earlier
    if written:
        write_ensemble(result, blend_dir)
    if verbose:
        state = "submission" if written else "identical submission already written, kept"
        print(f"{state}: {csv}  (CV {result.oof_auc:.4f}, {method} of {len(runs)} run(s))")
    return csv
