import json
import subprocess
import sys

import pytest

from kit.adapters.registry import get_adapter, list_adapters
from kit.cli.main import main
from kit.errors import KitError

VERBS = ["synth", "ingest", "train", "predict", "ensemble", "bench", "kernel", "download", "submit", "leaderboard"]


def test_python_m_kit_help_lists_the_verbs():
    out = subprocess.run([sys.executable, "-m", "kit", "--help"], capture_output=True, text=True, check=True).stdout
    for verb in VERBS:
        assert verb in out


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help_with_an_example(verb, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([verb, "--help"])
    assert exit_.value.code == 0
    assert "example" in capsys.readouterr().out


def test_synth_then_ingest(tmp_path, capsys):
    raw, store = tmp_path / "raw", tmp_path / "s.h5"
    assert main(["synth", "pcam", str(raw), "--train", "20", "--test", "6", "--seed", "1"]) == 0
    assert main(["ingest", "pcam", "--raw", str(raw), "--store", str(store), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert "train 20 images, test 6 images" in captured.out
    assert "\r" not in captured.err  # no progress bar redrawn into a log file
    assert main(["ingest", "pcam", "--raw", str(raw), "--store", str(store)]) == 0
    assert "already complete" in capsys.readouterr().out


def test_bad_input_exits_non_zero_with_the_fix(tmp_path, capsys):
    assert main(["ingest", "pcam", "--raw", str(tmp_path / "none"), "--store", str(tmp_path / "s.h5")]) == 2
    err = capsys.readouterr().err
    assert "error" in err and "Fix" in err and "kit download pcam" in err


def test_unknown_competition_lists_known_ones():
    with pytest.raises(KitError, match="known: .*pcam"):
        get_adapter("nope")


def test_bench_ingest_prints_one_json_line(synth_pcam_master, capsys):
    assert main(["bench", "ingest", "--raw", str(synth_pcam_master), "--workers", "1", "--repeat", "1"]) == 0
    figures = json.loads(capsys.readouterr().out.strip())
    assert figures["images"] == 120 and figures["kit_images_per_s"] > 0 and figures["ratio"] > 0


@pytest.mark.parametrize("name", list_adapters())
def test_every_adapter_synthesizes_and_ingests(name, tmp_path):
    from kit.ingest.writer import ingest
    from kit.synth import synthesize

    raw = synthesize(name, tmp_path / "raw", n_train=12, n_test=4, seed=0)
    summary = ingest(name, raw, tmp_path / "s.h5", workers=1, progress=False)
    assert (summary.n_train, summary.n_test, summary.quarantine) == (12, 4, [])


def test_bench_loader_and_tta_report_their_figures(synth_store):
    from kit.bench import bench_loader, bench_tta

    loader = bench_loader(synth_store, batch_size=16, threads=2, naive_images=50, seconds=0.05)
    assert loader["images"] == 96 and all(
        loader[k] > 0
        for k in (
            "plain_images_per_s",
            "augmented_images_per_s",
            "naive_images_per_s",
            "augment_only_batched_images_per_s",
        )
    )
    tta = bench_tta(synth_store, backbone="tiny_cnn", images=16, batch_size=8)
    assert tta["images"] == 16 and tta["views"] == 8 and tta["tta_s"] > 0 and "overhead_pct" in tta
