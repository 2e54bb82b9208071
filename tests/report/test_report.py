"""kit report: the threshold math on hand-made rows, the page's self-containment, and whole reports of a binary run
(the session's tiny PCam run) and a tiny multiclass run (synthetic plant seedlings), through the function and the
CLI."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_RECIPE

from kit.errors import KitError
from kit.report.operating_point import operating_point, sensitivity_threshold, youden_threshold
from kit.report.page import Page, png_uri
from kit.report.run_report import SECTIONS, write_report

ROOT = Path(__file__).resolve().parents[2]

# hand-made OOF rows: 5 negatives, 5 positives
TARGET = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
SCORE = np.array([0.05, 0.2, 0.3, 0.45, 0.7, 0.4, 0.6, 0.75, 0.8, 0.95])


def test_youden_picks_the_threshold_maximising_sensitivity_plus_specificity():
    # rows by score: .95+ .8+ .75+ .7- .6+ .45- .4+ .3- .2- .05-; J = TPR - FPR at each threshold:
    # .95 .2, .8 .4, .75 .6, .7 .4, .6 .6, .45 .4, .4 .6, .3 .4, ... -> ties at .75, .6, .4: the highest wins
    assert youden_threshold(TARGET, SCORE) == 0.75
    point = operating_point(TARGET, SCORE)
    assert (point.tp, point.fp, point.fn, point.tn) == (3, 0, 2, 5)
    assert point.sensitivity == pytest.approx(0.6) and point.specificity == 1.0 and point.precision == 1.0
    assert point.f1 == pytest.approx(2 * 3 / (2 * 3 + 0 + 2))
    # a unique maximum: rows .8+ .7- .6+ .5+ .3- .2+ .1- (4 positives, 3 negatives)
    # J: .8 .25, .7 -.083, .6 .167, .5 .417, .3 .083, .2 .333, .1 0 -> 0.5
    target = np.array([0, 1, 0, 1, 1, 0, 1])
    score = np.array([0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8])
    assert youden_threshold(target, score) == 0.5
    assert operating_point(target, score).tp == 3


def test_the_sensitivity_threshold_is_the_highest_reaching_the_target():
    # positives sorted: 0.95 0.8 0.75 0.6 0.4 -> sensitivity 0.2, 0.4, 0.6, 0.8, 1.0 at those thresholds
    assert sensitivity_threshold(TARGET, SCORE, 0.8) == 0.6
    assert sensitivity_threshold(TARGET, SCORE, 0.75) == 0.6
    assert sensitivity_threshold(TARGET, SCORE, 0.95) == 0.4
    assert sensitivity_threshold(TARGET, SCORE, 1.0) == 0.4
    point = operating_point(TARGET, SCORE, sensitivity=0.95)
    assert point.threshold == 0.4 and point.sensitivity == 1.0
    assert (point.tp, point.fp, point.fn, point.tn) == (5, 2, 0, 3)  # 0.45 and 0.7 are called positive
    assert point.specificity == pytest.approx(0.6)
    assert "sensitivity >= 0.95" in point.rule
    with pytest.raises(KitError, match="expected a sensitivity in"):
        sensitivity_threshold(TARGET, SCORE, 1.5)
    with pytest.raises(KitError, match="both classes"):
        youden_threshold(np.zeros(4), SCORE[:4])


def test_the_page_escapes_text_and_embeds_figures_as_data_uris(tmp_path):
    from kit.report.page import pyplot

    page = Page("a <b> & c", tmp_path / "figs")
    fig, ax = pyplot().subplots()
    ax.plot([0, 1], [1, 0])
    page.add("x", "<Title>", [page.p("<script>alert(1)</script>"), page.figure(fig, "a/b c")])
    text = page.render()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>alert" not in text
    assert "&lt;Title&gt;" in text and "a &lt;b&gt; &amp; c" in text
    assert (tmp_path / "figs" / "a_b_c.png").exists()
    assert png_uri((tmp_path / "figs" / "a_b_c.png").read_bytes()) in text
    assert 'id="x"' in text and "data-broken-images" in text


def check_page(path: Path) -> str:
    """The page has every section with an <h2>, only data-URI images, no http(s) reference; returns its text."""
    text = path.read_text()
    for section in SECTIONS:
        assert re.search(rf'<section id="{section}">\s*<h2>', text), section
    sources = re.findall(r'<img src="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"https?://", text)
    assert not re.search(r"<(link|script)[^>]+(src|href)=", text)  # nothing loaded from outside
    figures = path.with_name(f"{path.stem}_figures")
    assert len(list(figures.glob("*.png"))) == len(sources)
    return text


@pytest.fixture(scope="module")
def binary_run(trained_run, tmp_path_factory):
    """A predicted (test + TTA OOF) copy of the session's tiny binary run."""
    from kit.infer.predict import predict_run

    run = shutil.copytree(trained_run, tmp_path_factory.mktemp("report") / "runs" / "pcam" / "20260101-000000_tiny")
    predict_run(run, tta="none", oof=True)
    return Path(run)


def test_a_binary_report_has_every_section_self_contained(binary_run, tmp_path):
    out = write_report([binary_run], tmp_path / "pcam.html", gradcam=False, ledger=tmp_path / "ledger.sqlite")
    text = check_page(out)
    assert "Youden" in text and "specificity" in text and "test images" in text
    assert "Class balance" in text and "Ingest quarantine" in text and "TTA gain" in text
    assert "Grad-CAM not available" in text and "no submissions of pcam" in text


def test_sensitivity_changes_the_binary_operating_point(binary_run, tmp_path):
    out = write_report([binary_run], tmp_path / "s.html", sensitivity=0.99, gradcam=False)
    assert "highest threshold reaching OOF sensitivity &gt;= 0.99" in out.read_text()


def test_the_explanations_section_is_there_with_or_without_grad_cam(binary_run, tmp_path):
    text = write_report([binary_run], tmp_path / "g.html").read_text()
    block = text.split('<section id="explanations">')[1].split("</section>")[0]
    assert "<img" in block or "Grad-CAM not available" in block


def test_two_runs_sharing_folds_are_blended(binary_run, tmp_path):
    other = shutil.copytree(binary_run, binary_run.parent / "20260101-000001_tiny")
    try:
        text = write_report([binary_run, other], tmp_path / "two.html", gradcam=False).read_text()
    finally:
        shutil.rmtree(other)
    block = text.split('<section id="ensemble">')[1].split("</section>")[0]
    assert "blend (mean)" in block and "20260101-000001_tiny" in block


def test_a_missing_store_is_said_not_fatal(binary_run, tmp_path):
    from kit.run import RunFolder

    run = Path(shutil.copytree(binary_run, tmp_path / "runs" / "pcam" / "20260101-000002_moved"))
    env = RunFolder(run).env_path
    env.write_text(env.read_text().replace(str(RunFolder(run).store()), str(tmp_path / "gone.h5")))
    text = write_report([run], tmp_path / "m.html").read_text()
    assert "expected the run&#x27;s store" in text and "Grad-CAM not available" in text


def test_unfinished_runs_and_wrong_outputs_are_refused(binary_run, tmp_path):
    with pytest.raises(KitError, match="expected an .html file"):
        write_report([binary_run], tmp_path / "x.pdf")
    with pytest.raises(KitError, match="expected a run folder"):
        write_report([tmp_path / "nothing"], tmp_path / "x.html")


@pytest.fixture(scope="module")
def multiclass_run(tmp_path_factory):
    """A tiny two-fold run of synthetic plant seedlings (12 classes), predicted with TTA OOF rows."""
    from kit.infer.predict import predict_run
    from kit.ingest.writer import ingest
    from kit.synth import synthesize
    from kit.train.loop import train

    root = tmp_path_factory.mktemp("plants")
    raw = synthesize("plant-seedlings", root / "raw", n_train=48, n_test=8, seed=0)
    ingest("plant-seedlings", raw, root / "ps.h5", workers=1, progress=False, size=32)
    recipe = [o for o in TINY_RECIPE if not o.startswith(("model.crop", "train.epochs"))] + ["train.epochs=2"]
    run = train(
        "plant-seedlings", store=root / "ps.h5", overrides=recipe, run_dir=root / "runs" / "run", verbose=0
    ).run_dir
    predict_run(run, tta="none", oof=True)
    return Path(run)


def test_a_multiclass_report_has_per_class_tables(multiclass_run, tmp_path):
    out = write_report([multiclass_run], tmp_path / "plants.html", gradcam=False, ledger=tmp_path / "l.sqlite")
    text = check_page(out)
    block = text.split('<section id="operating-point">')[1].split("</section>")[0]
    assert "argmax" in block and "test images predicted" in block and "Black-grass" in block
    assert "one-vs-rest" in text and "top-class confidence" in text


def test_the_cli_writes_the_report(multiclass_run, tmp_path):
    out = tmp_path / "cli" / "plants.html"
    done = subprocess.run(
        [sys.executable, "-m", "kit", "report", str(multiclass_run), "--out", str(out), "--no-gradcam"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"report: {out}" in done.stdout
    check_page(out)
    bad = subprocess.run(
        [sys.executable, "-m", "kit", "report", str(multiclass_run), "--sensitivity", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "expected a sensitivity in (0, 1]" in bad.stderr
