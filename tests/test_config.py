import tomllib

import pytest

from kit.config import dump_toml, identity, resolve_config
from kit.errors import KitError


def test_defaults_come_from_the_engine_and_the_adapter():
    cfg = resolve_config("pcam")
    assert cfg["competition"] == "pcam" and cfg["name"] == cfg["model"]["backbone"]
    assert [t["name"] for t in cfg["augment"]["train"]] == ["D4", "HueSaturationValue", "RandomBrightnessContrast"]


def test_file_then_overrides_win_and_values_are_typed(tmp_path):
    (tmp_path / "c.toml").write_text('name = "exp"\n[train]\nlr = 0.01\nepochs = 3\n')
    cfg = resolve_config("pcam", tmp_path / "c.toml", ["train.lr=1e-4", "train.schedule=plateau",
                                                        "data.in_memory=true", "train.warmup_epochs=2"])
    assert cfg["name"] == "exp" and cfg["train"]["epochs"] == 3 and cfg["train"]["lr"] == 1e-4
    assert cfg["train"]["schedule"] == "plateau" and cfg["data"]["in_memory"] is True
    assert cfg["train"]["warmup_epochs"] == 2.0 and isinstance(cfg["train"]["warmup_epochs"], float)


def test_resolved_config_round_trips_through_toml():
    cfg = resolve_config("pcam", overrides=['name="a \\"quoted\\" name"', "augment.train=[]"])
    assert tomllib.loads(dump_toml(cfg)) == cfg
    assert identity(tomllib.loads(dump_toml(cfg))) == identity(cfg)
    # adapters declare ranges as tuples: written as TOML arrays, the same identity once read back
    cfg["augment"]["train"] = [{"name": "Affine", "scale": (0.9, 1.1), "p": 0.5}]
    assert tomllib.loads(dump_toml(cfg))["augment"]["train"][0]["scale"] == [0.9, 1.1]
    assert identity(tomllib.loads(dump_toml(cfg))) == identity(cfg)


@pytest.mark.parametrize("override, message", [
    ("train.lrr=1", "unknown config key 'train.lrr'.*known: train.epochs"),
    ("train.epochs='many'", "expects a int"),
    ("train=3", "is a section"),
    ("nonsense", "expected --set section.key=value"),
])
def test_bad_overrides_say_what_is_wrong(override, message):
    with pytest.raises(KitError, match=message):
        resolve_config("pcam", overrides=[override])


def test_invalid_toml_file_is_a_clear_error(tmp_path):
    (tmp_path / "bad.toml").write_text("[train\n")
    with pytest.raises(KitError, match="not valid TOML"):
        resolve_config("pcam", tmp_path / "bad.toml")
