"""kit report in a real browser: headless Chromium opens the page from disk (no network) and dumps the DOM after
the page's self-check ran (``data-images-ok`` / ``data-broken-images`` on <body>, ``kit.report.page``); every
image must have decoded, the console must stay silent (no error, no uncaught exception) and every section must be
there. Skipped when /usr/bin/chromium is absent (`apt-get install -y chromium`); CI installs it."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kit.report.page import SELF_CHECK
from kit.report.run_report import SECTIONS

CHROMIUM = Path("/usr/bin/chromium")

# CI sets KIT_REQUIRE_BROWSER=1 (.ci/run): there a missing browser fails the tests instead of skipping them.
if os.environ.get("KIT_REQUIRE_BROWSER") == "1" and not CHROMIUM.exists():
    raise RuntimeError(f"KIT_REQUIRE_BROWSER=1 but {CHROMIUM} is missing: install Debian's chromium package")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium: install it (apt-get install -y chromium) to render the page"
)


def render(page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """(the DOM after load, console lines) of ``page`` in headless Chromium."""
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return done.stdout, console


def body_attribute(dom: str, name: str) -> int:
    match = re.search(rf'<body[^>]*\s{name}="(\d+)"', dom)
    assert match, f"the page's self-check did not run: no {name} on <body>"
    return int(match.group(1))


def test_the_self_check_sees_a_broken_image_and_the_console_sees_errors(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        f"<!DOCTYPE html><html><head><script>{SELF_CHECK}</script></head><body>"
        '<img src="data:image/png;base64,AAAA"><script>notAFunction();</script></body></html>'
    )
    dom, console = render(page, tmp_path)
    assert body_attribute(dom, "data-broken-images") == 1 and body_attribute(dom, "data-images-ok") == 0
    assert any("Uncaught" in line for line in console)


@pytest.fixture(scope="module")
def report(trained_run, tmp_path_factory):
    from kit.infer.predict import predict_run
    from kit.report.run_report import write_report

    root = tmp_path_factory.mktemp("browser")
    run = shutil.copytree(trained_run, root / "runs" / "pcam" / "20260101-000000_tiny")
    predict_run(run, tta="none", oof=True)
    return write_report([run], root / "report" / "pcam.html", ledger=root / "ledger.sqlite")


def test_every_image_loads_and_the_console_stays_silent(report, tmp_path):
    dom, console = render(report, tmp_path)
    images = len(re.findall(r"<img\s", report.read_text()))
    assert images >= 5
    assert body_attribute(dom, "data-broken-images") == 0
    assert body_attribute(dom, "data-images-ok") == images
    assert not console, console
    for section in SECTIONS:
        assert re.search(rf'<section id="{section}">\s*<h2>', dom), section
