"""``kit report``: one self-contained HTML page about one or more finished runs (``write_report``).

Sections, each a ``<section id=...>``: ``data`` (the store: class balance, samples, mean images, statistics,
quarantine), ``cv`` (folds, learning curves, ROC / precision-recall, calibration, TTA gain), ``operating-point``
(threshold, confusion, per-class scores, test counts), ``errors`` (top losses), ``explanations`` (Grad-CAM) and
``ensemble`` (mean blend of the runs, ledger rows), and ``tuning`` for trials of a ``kit tune`` search. The PNGs are
also written to ``<page stem>_figures/`` next to the page; the page itself embeds them as data URIs and needs
nothing else (``kit.report.page``).

Example:
    >>> write_report(["runs/pcam/20261124-101500_compact_cnn"], "reports/pcam.html")  # doctest: +SKIP
    PosixPath('reports/pcam.html')
"""

from __future__ import annotations

import html
import time
from pathlib import Path

from kit import paths
from kit.errors import KitError
from kit.files import atomic_write
from kit.report.cv_section import cv_section
from kit.report.data_section import data_section
from kit.report.ensemble_section import ensemble_section
from kit.report.errors_section import errors_section
from kit.report.explain_section import explanations_section
from kit.report.operating_point import choose_threshold, operating_section
from kit.report.page import Page
from kit.report.run_view import load_view, positive_proba
from kit.report.tune_section import tune_section

__all__ = ["write_report", "default_out", "SECTIONS"]

SECTIONS = ("data", "cv", "operating-point", "errors", "explanations", "ensemble")


def default_out(run_dirs) -> Path:
    """``reports/<first run's name>[_and_<n>_more].html`` under the working folder."""
    names = [Path(r).name for r in run_dirs]
    more = f"_and_{len(names) - 1}_more" if len(names) > 1 else ""
    return paths.working_dir() / "reports" / f"{names[0]}{more}.html"


def figures_dir(out: Path) -> Path:
    return out.with_name(f"{out.stem}_figures")


def write_report(run_dirs, out=None, sensitivity: float | None = None, ledger=None, gradcam: bool = True) -> Path:
    """Write the report page of ``run_dirs`` to ``out`` (default ``default_out``) and its PNGs next to it.

    Args:
        run_dirs: finished run folders (``kit train``; ``kit predict`` for test counts and the blend), one
            competition.
        out: the HTML file to write.
        sensitivity: binary runs: choose the threshold reaching this OOF sensitivity instead of Youden's J.
        ledger: the submission ledger (default ``submissions/ledger.sqlite``).
        gradcam: draw the Grad-CAM section (False: it says it was skipped).
    """
    run_dirs = [Path(r) for r in run_dirs]
    if not run_dirs:
        raise KitError("expected at least one run folder, got none. Fix: kit report RUN_DIR [RUN_DIR ...].")
    out = Path(out) if out is not None else default_out(run_dirs)
    if out.suffix.lower() not in (".html", ".htm"):
        raise KitError(f"expected an .html file for --out, got {out}. Fix: e.g. --out reports/{out.stem}.html.")
    views = [load_view(r) for r in run_dirs]
    competitions = sorted({v.competition for v in views})
    if len(competitions) > 1:
        raise KitError(
            f"expected runs of one competition, got {competitions}. Fix: report each competition's runs separately."
        )
    thresholds = {
        v.name: choose_threshold(v.target, positive_proba(v.pred), sensitivity)[0]
        for v in views
        if v.task == "binary" and v.target.min() != v.target.max()
    }
    names = ", ".join(v.name for v in views)
    page = Page(f"kit report: {competitions[0]} - {names}", figures_dir(out))
    page.sections.append(
        f'<p class="note">made {html.escape(time.strftime("%Y-%m-%d %H:%M"))} from '
        f"{html.escape(', '.join(str(r) for r in run_dirs))}</p>"
    )
    data_section(page, views[0].store)
    cv_section(page, views)
    operating_section(page, views, sensitivity)
    errors_section(page, views, thresholds)
    if gradcam:
        explanations_section(page, views, thresholds)
    else:
        skipped = page.p("Grad-CAM not available: skipped (--no-gradcam).", "note")
        page.add("explanations", "Explanations (Grad-CAM)", skipped)
    ensemble_section(page, run_dirs, competitions[0], ledger)
    tune_section(page, run_dirs)  # only for trials of a `kit tune` search
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, page.render().encode("utf-8"))
    return out
