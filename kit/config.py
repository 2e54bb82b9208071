"""Experiment configuration: built-in defaults, an optional TOML file, ``--set key=value`` overrides.

The resolved configuration is written into the run folder as ``config.toml`` and identifies the run: rerunning
with the same resolved configuration resumes the same run. Keys that only change *how* a run executes (the time
budget, which folds, loader workers) are command-line options, not configuration.

Example:
    >>> from kit.config import resolve_config
    >>> cfg = resolve_config("pcam", overrides=["train.epochs=3", "model.backbone='tiny_cnn'"])
    >>> cfg["train"]["epochs"], cfg["model"]["backbone"]
    (3, 'tiny_cnn')
"""
from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

from kit.adapters.base import get_adapter
from kit.errors import KitError

__all__ = ["DEFAULTS", "resolve_config", "dump_toml", "load_toml", "identity"]

# The default recipe is the CPU one (measured in the README); the GPU recipe changes a few keys with --set.
DEFAULTS: dict = {
    "competition": "",
    "name": "",  # run-folder suffix; empty -> the backbone name
    "seed": 0,
    # 3 folds: under a time budget each fold model gets a third of it rather than a fifth (5: --set folds.k=5)
    "folds": {"k": 3, "seed": 0},
    # batch 64: on 3,200 real images it beat 128 under the same 20-minute budget (OOF 0.9577 vs 0.9552 with TTA)
    "data": {"batch_size": 64, "in_memory": "auto", "window_chunks": 8},
    "model": {"backbone": "compact_cnn", "weights": "", "dropout": 0.3, "crop": 0, "resize": 0, "pool": "avg"},
    "train": {
        "epochs": 80,  # an upper bound: under --max-minutes the time share usually ends a fold first
        "lr": 2e-3,
        "weight_decay": 1e-4,
        # exponential moving average of the weights (Keras' optimizer EMA), validated and kept as the fold's
        # best weights; 0 = off, e.g. 0.99 (a horizon of ~100 steps)
        "ema": 0.0,
        "warmup_epochs": 1.0,
        "schedule": "cosine",  # cosine (with warm-up, stretched to the fold's share of the time budget) | plateau
        # early stopping after N epochs without a better validation AUC; 0 = off. Off by default: the cosine
        # ends each fold on time, and on a few thousand images the validation AUC is too noisy at a high LR to
        # stop on (measured: folds stopped half-way, before the annealed end where the best weights come).
        "patience": 0,
        # imbalanced data: "none", "balanced" (each class weighs as much in the loss; sklearn's
        # compute_class_weight) or a number = the positives' weight (negatives weigh 1)
        "class_weight": "none",
        "val_every": 2,  # validate every N epochs (and at the last); on a CPU one validation costs ~1/4 epoch
        "precision": "auto",  # auto | float32 | mixed_float16 | mixed_bfloat16
        "freeze_epochs": 0,  # pretrained backbones: epochs with the backbone frozen before fine-tuning
        "finetune_lr_factor": 0.1,
    },
    "augment": {"train": []},  # albumentations transforms as [{name=..., **kwargs}]; default from the adapter
    "predict": {"tta": "d4", "fold_average": "mean"},
}


def load_toml(path) -> dict:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise KitError(f"expected a TOML config at {path}, found nothing. Fix: check the --config path.") from None
    except tomllib.TOMLDecodeError as e:
        raise KitError(f"{path} is not valid TOML ({e}). Fix: correct the file.") from None


def resolve_config(competition: str, config_file=None, overrides: list[str] = ()) -> dict:
    """Defaults, then the adapter's augmentation, then ``config_file``, then ``overrides`` (``section.key=value``)."""
    adapter = get_adapter(competition)
    cfg = copy.deepcopy(DEFAULTS)
    cfg["competition"] = adapter.name
    cfg["augment"]["train"] = [dict(t) for t in adapter.train_augment]
    if config_file:
        _merge(cfg, load_toml(config_file), source=str(config_file))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise KitError(f"expected --set section.key=value, got {item!r}. Fix: e.g. --set train.lr=1e-3.")
        _merge(cfg, _nest(key.strip(), _parse_value(raw.strip())), source=f"--set {item}")
    if not cfg["name"]:
        cfg["name"] = cfg["model"]["backbone"]
    return cfg


def identity(cfg: dict) -> str:
    """A stable text of the resolved configuration: equal texts mean the same experiment."""
    return json.dumps(cfg, sort_keys=True)


def _parse_value(raw: str):
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # a bare word: a string (train.schedule=plateau)


def _nest(dotted: str, value) -> dict:
    out: dict = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def _merge(base: dict, update: dict, source: str, prefix: str = "") -> None:
    for key, value in update.items():
        where = f"{prefix}{key}"
        if key not in base:
            known = ", ".join(f"{prefix}{k}" for k in base)
            raise KitError(f"unknown config key {where!r} (from {source}); known: {known}.")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise KitError(f"config key {where!r} is a section; got the value {value!r} (from {source}).")
            _merge(base[key], value, source, prefix=f"{where}.")
        else:
            base[key] = _coerce(base[key], value, where, source)


def _coerce(default, value, where: str, source: str):
    if isinstance(default, bool) or isinstance(default, list) or default is None:
        ok = type(value) is type(default) or default is None
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, (int, str)):
        # "auto"-style switches also take booleans (data.in_memory = true) or numbers (train.class_weight = 5)
        ok = isinstance(value, type(default)) or (isinstance(default, str) and isinstance(value, (bool, int, float)))
    else:
        ok = True
    if not ok:
        raise KitError(f"config key {where!r} expects a {type(default).__name__}; got {value!r} (from {source}).")
    return value


def dump_toml(cfg: dict) -> str:
    """TOML text for a configuration of scalars, lists of scalars/inline tables, and nested sections.

    Python has a TOML reader but no writer, and this shape is all a config needs, so kit writes its own.
    """
    lines, sections = [], []
    for key, value in cfg.items():
        if isinstance(value, dict):
            sections.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in sections:
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, (list, tuple)):  # adapters declare ranges as tuples, e.g. scale=(0.9, 1.1)
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise KitError(f"cannot write {value!r} to TOML: expected a bool, number, string, list or table.")
