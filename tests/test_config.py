import dataclasses
import subprocess
import sys
import tomllib

import pytest

from kit.config import Config, config_from_dict, describe, identity, resolve_config
from kit.errors import KitError
from kit.run import load_run_config, open_run
from kit.tomlfile import dump_toml


def test_defaults_come_from_the_engine_and_the_adapter():
    cfg = resolve_config("pcam")
    assert isinstance(cfg, Config) and cfg.competition == "pcam" and cfg.name == cfg.model.backbone
    assert [t["name"] for t in cfg.augment.train] == ["D4", "HueSaturationValue", "RandomBrightnessContrast"]


def test_file_then_overrides_win_and_values_are_typed(tmp_path):
    (tmp_path / "c.toml").write_text('name = "exp"\n[train]\nlr = 0.01\nepochs = 3\n')
    cfg = resolve_config(
        "pcam",
        tmp_path / "c.toml",
        ["train.lr=1e-4", "train.schedule=plateau", "data.in_memory=true", "train.warmup_epochs=2"],
    )
    assert cfg.name == "exp" and cfg.train.epochs == 3 and cfg.train.lr == 1e-4
    assert cfg.train.schedule == "plateau" and cfg.data.in_memory is True
    assert cfg.train.warmup_epochs == 2.0 and isinstance(cfg.train.warmup_epochs, float)


def test_resolved_config_round_trips_through_toml():
    cfg = resolve_config("pcam", overrides=['name="a \\"quoted\\" name"', "augment.train=[]"])
    assert tomllib.loads(dump_toml(cfg.to_dict())) == cfg.to_dict()
    assert identity(config_from_dict(tomllib.loads(dump_toml(cfg.to_dict())), "test")) == identity(cfg)


def test_tuples_in_a_config_round_trip_through_toml():
    # adapters declare ranges as tuples: written as TOML arrays, the same identity once read back
    cfg = resolve_config("pcam", overrides=["augment.train=[{name='Affine', scale=[0.9, 1.1], p=0.5}]"])
    cfg = dataclasses.replace(
        cfg, augment=dataclasses.replace(cfg.augment, train=[{"name": "Affine", "scale": (0.9, 1.1), "p": 0.5}])
    )
    text = dump_toml(cfg.to_dict())
    assert tomllib.loads(text)["augment"]["train"][0]["scale"] == [0.9, 1.1]
    assert identity(config_from_dict(tomllib.loads(text), "test")) == identity(cfg)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lrr=1", "unknown config key 'train.lrr'.*known: train.epochs"),
        ("trian.lr=1", "unknown config key 'trian'.*known: competition, name, seed, folds"),
        ("train.epochs='many'", "'train.epochs' expects an integer >= 1; got 'many'"),
        ("train.lr=-1", "'train.lr' expects a number > 0.0; got -1"),
        ("train.ema=1.0", "'train.ema' expects a number >= 0.0 and < 1.0"),
        ("train.schedule=linear", "expects one of 'cosine', 'plateau'; got 'linear'"),
        ("train.precision=float16", "expects one of 'auto', 'float32', 'mixed_float16', 'mixed_bfloat16'"),
        ("train.class_weight=-2", "'train.class_weight' expects 'none', 'balanced' or a positive number"),
        ("data.in_memory=maybe", "'data.in_memory' expects 'auto', true or false"),
        ("model.backbone=resnet9000", r"'model.backbone' expects a registered backbone \(.*compact_cnn.*\)"),
        ("model.pool=max", r"'model.pool' expects a head pooling \(avg, avg_max, avg_centre\)"),
        ("augment.train=[{p=1}]", "'augment.train' expects a list of tables, each with a string 'name'"),
        ("folds.k=1", "'folds.k' expects an integer >= 2"),
        ("predict.tta=d8", "'predict.tta' expects one of 'd4', 'hflip', 'none'"),
        ("train=3", "is a section"),
        ("nonsense", "expected --set section.key=value"),
    ],
)
def test_bad_overrides_say_what_is_wrong(override, message):
    with pytest.raises(KitError, match=message) as error:
        resolve_config("pcam", overrides=[override])
    assert "Fix:" in str(error.value) or "expected" in str(error.value)


def test_a_bad_key_in_a_file_names_the_file(tmp_path):
    (tmp_path / "c.toml").write_text("[train]\nlr = 'fast'\n")
    with pytest.raises(KitError, match=r"'train.lr' expects a number.*from .*c\.toml"):
        resolve_config("pcam", tmp_path / "c.toml")


def test_invalid_toml_file_is_a_clear_error(tmp_path):
    (tmp_path / "bad.toml").write_text("[train\n")
    with pytest.raises(KitError, match="not valid TOML"):
        resolve_config("pcam", tmp_path / "bad.toml")


def test_every_key_is_described_and_the_description_is_valid_toml():
    cfg = resolve_config("pcam")
    text = describe(cfg)
    assert tomllib.loads(text) == cfg.to_dict()  # the printed configuration is itself a usable --config file
    described, section, previous = set(), "", ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]") + "."
        elif " = " in line and ("  # " in line or previous.startswith("# ")):  # a comment after it, or above it
            described.add(section + line.split(" = ")[0])
        previous = line
    table = cfg.to_dict()
    keys = {s for s, v in table.items() if not isinstance(v, dict)}
    keys |= {f"{s}.{k}" for s, v in table.items() if isinstance(v, dict) for k in v}
    assert described == keys


def test_a_run_made_before_a_key_existed_loads_with_its_default(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_RUNS_DIR", str(tmp_path))
    cfg = resolve_config("pcam", overrides=["model.backbone='tiny_cnn'"])
    run = open_run(cfg)
    old = tomllib.loads((run / "config.toml").read_text())
    del old["model"]["pool"]  # model.pool was added after the first runs were made
    (run / "config.toml").write_text(dump_toml(old))
    assert load_run_config(run).model.pool == "avg"
    assert open_run(cfg) == run  # the same experiment: resumed, not duplicated


def test_a_bad_override_writes_no_run_folder(tmp_path, monkeypatch, synth_store):
    from kit.train.loop import train

    monkeypatch.setenv("KIT_RUNS_DIR", str(tmp_path / "runs"))
    with pytest.raises(KitError, match="train.schedule"):
        train("pcam", store=synth_store, overrides=["train.schedule=linear"])
    with pytest.raises(KitError, match="Affinee"):
        train("pcam", store=synth_store, overrides=["augment.train=[{name='Affinee'}]"])
    assert not (tmp_path / "runs").exists()


def test_config_show_through_the_real_entry_point():
    cmd = [sys.executable, "-m", "kit", "config", "show", "pcam", "--set", "train.lr=1e-3"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "lr = 0.001" in out.stdout and "# peak learning rate" in out.stdout
    bad = subprocess.run(cmd[:-1] + ["train.lr=fast"], capture_output=True, text=True)
    assert bad.returncode == 2 and "'train.lr' expects a number" in bad.stderr and "Traceback" not in bad.stderr


def test_reading_a_run_config_checks_no_registry_and_takes_legacy_spellings(tmp_path, monkeypatch):
    # a run folder's config was checked when it was made: reading it back must not need Keras (the backbone
    # registry), and `class_weight = false` (accepted before the typed config) still means "none"
    monkeypatch.setenv("KIT_RUNS_DIR", str(tmp_path))
    run = open_run(resolve_config("pcam", overrides=["model.backbone='tiny_cnn'"]))
    table = tomllib.loads((run / "config.toml").read_text())
    table["train"]["class_weight"] = False
    (run / "config.toml").write_text(dump_toml(table))
    code = (
        "import sys; from kit.run import load_run_config; "
        f"cfg = load_run_config({str(run)!r}); "
        "print(cfg.train.class_weight, cfg.model.backbone, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["none", "tiny_cnn", "False"]
    with pytest.raises(KitError, match="'train.class_weight' expects"):
        resolve_config("pcam", overrides=["train.class_weight=true"])
