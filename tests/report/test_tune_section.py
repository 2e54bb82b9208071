"""A trial of a `kit tune` search gets a tuning section listing every trial of its search, best first."""

import shutil

import pandas as pd

from kit.report.run_report import write_report


def test_a_trials_report_lists_its_search_best_first_by_the_metrics_direction(trained_run, tmp_path):
    search = tmp_path / "runs" / "pcam" / "tune" / "lr-search"
    trial = shutil.copytree(trained_run, search / "trial_1")
    pd.DataFrame(
        {
            "trial": ["0", "1", "2"],
            "status": ["COMPLETED"] * 3,
            "train.lr": [1e-2, 3e-3, 1e-4],
            "roc_auc": [0.61, 0.74, 0.55],
            "run_dir": [str(search / f"trial_{k}") for k in range(3)],
        }
    ).to_csv(search / "trials.csv", index=False)
    text = write_report([trial], tmp_path / "t.html", gradcam=False).read_text()
    section = text[text.index('<section id="tuning">') :]
    assert "search lr-search: 3 trials, roc_auc (higher is better)" in section
    rows = [section.index(f"<td>{score}</td>") for score in ("0.7400", "0.6100", "0.5500")]
    assert rows == sorted(rows)  # best first


def test_an_ordinary_run_has_no_tuning_section(trained_run, tmp_path):
    text = write_report([trained_run], tmp_path / "o.html", gradcam=False).read_text()
    assert '<section id="tuning">' not in text
