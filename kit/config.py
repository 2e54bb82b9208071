"""Experiment configuration, typed: defaults, an optional TOML file, ``--set key=value`` overrides.

Every section is a frozen dataclass whose fields carry a one-line description and a rule for their values.
``resolve_config`` checks everything (unknown keys, types, ranges, choices, the backbone name) before any
file is written, and errors list the valid keys or values. The resolved configuration is written into the run
folder as ``config.toml`` and identifies the run: rerunning with the same resolved configuration resumes the same
run. Keys that only change *how* a run executes (the time budget, which folds, loader workers) are command-line
options, not configuration. ``kit config show COMPETITION`` prints it with each key's description.

Example:
    >>> from kit.config import resolve_config
    >>> cfg = resolve_config("pcam", overrides=["train.epochs=3", "model.backbone='tiny_cnn'"])
    >>> cfg.train.epochs, cfg.model.backbone
    (3, 'tiny_cnn')
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import tomllib
from collections.abc import Callable

from kit.adapters.registry import get_adapter
from kit.errors import KitError
from kit.tomlfile import dump_toml, load_toml

__all__ = [
    "Config",
    "FoldsConfig",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "AugmentConfig",
    "PredictConfig",
    "resolve_config",
    "config_from_dict",
    "describe",
    "identity",
    "PRECISIONS",
    "SCHEDULES",
    "TTA_MODES",
    "check_tta",
    "identity_hash",
    "FOLD_AVERAGES",
]

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
SCHEDULES = ("cosine", "plateau")
TTA_MODES = ("d4", "hflip", "none")  # views, most to fewest (kit.adapters.base.TTA_VIEWS)
FOLD_AVERAGES = ("mean", "rank")


@dataclasses.dataclass(frozen=True)
class Rule:
    """What values a key accepts: ``expected`` in words, ``accepts(value)``, ``convert`` (e.g. int -> float), and
    ``known`` for keys whose valid values come from a registry (listed in the error)."""

    expected: str
    accepts: Callable[[object], bool]
    convert: Callable[[object], object] = lambda value: value
    known: Callable[[], list[str]] | None = None


def _integer(low: int) -> Rule:
    return Rule(f"an integer >= {low}", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number(low: float, high: float | None = None, low_open: bool = False) -> Rule:
    words = f"a number {'>' if low_open else '>='} {low}" + (f" and < {high}" if high is not None else "")

    def accepts(v) -> bool:
        return _is_number(v) and (v > low if low_open else v >= low) and (high is None or v < high)

    return Rule(words, accepts, float)


def _one_of(*values) -> Rule:
    return Rule("one of " + ", ".join(repr(v) for v in values), lambda v: isinstance(v, str) and v in values)


def _backbones() -> list[str]:
    from kit.models import list_backbones  # imports Keras: only once a backbone name is checked

    return list_backbones()


def _pools() -> list[str]:
    from kit.models.registry import POOLS

    return list(POOLS)


_TEXT = Rule("a string", lambda v: isinstance(v, str))
_POOL = Rule("a head pooling", lambda v: isinstance(v, str) and v in _pools(), known=_pools)
_BACKBONE = Rule("a registered backbone", lambda v: isinstance(v, str) and v in _backbones(), known=_backbones)
_IN_MEMORY = Rule("'auto', true or false", lambda v: v == "auto" or isinstance(v, bool))
_CLASS_WEIGHT = Rule(
    "'none', 'balanced' or a positive number (the positives' weight)",
    lambda v: v is False or (isinstance(v, str) and v in ("none", "balanced")) or (_is_number(v) and v > 0),
    lambda v: "none" if v is False else v,  # false: how configs written before the typed config could say "none"
)
_TRANSFORMS = Rule(
    "a list of tables, each with a string 'name' (an albumentations transform) and its arguments",
    lambda v: isinstance(v, (list, tuple)) and all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in v),
    lambda v: [dict(t) for t in v],
)


def _key(default, doc: str, rule: Rule):
    """A configuration field: its default, a one-line description (``kit config show``) and its rule."""
    meta = {"doc": doc, "rule": rule}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class FoldsConfig:
    # 3 folds: under a time budget each fold model gets a third of it rather than a fifth
    k: int = _key(3, "number of cross-validation folds", _integer(2))
    seed: int = _key(0, "seed of the fold split", _integer(0))


@dataclasses.dataclass(frozen=True)
class DataConfig:
    # batch 64: on 3,200 real images it beat 128 under the same 20-minute budget (docs/experiments.md)
    batch_size: int = _key(64, "training batch size (validation uses twice this)", _integer(1))
    in_memory: str | bool = _key(
        "auto", "load the training images into RAM: auto (when they fit), true, false", _IN_MEMORY
    )
    window_chunks: int = _key(
        8, "store chunks one shuffled batch may draw from (bigger: better mixing, more reads)", _integer(1)
    )


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    backbone: str = _key("compact_cnn", "network from the backbone registry (kit.models)", _BACKBONE)
    weights: str = _key("", "local file of pretrained backbone weights; empty = random init (never downloaded)", _TEXT)
    dropout: float = _key(0.3, "dropout before the classifier", _number(0.0, 1.0))
    crop: int = _key(0, "centre crop side in pixels inside the model; 0 = none", _integer(0))
    resize: int = _key(0, "resize side in pixels inside the model; 0 = none", _integer(0))
    pool: str = _key("avg", "head pooling: avg, avg_max (average and max) or avg_centre (plus the centre third)", _POOL)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = _key(
        80, "upper bound on epochs; under --max-minutes the fold's time share usually ends it first", _integer(1)
    )
    lr: float = _key(2e-3, "peak learning rate (AdamW)", _number(0.0, low_open=True))
    weight_decay: float = _key(1e-4, "AdamW weight decay", _number(0.0))
    ema: float = _key(0.0, "moving average of the weights, validated and kept; 0 = off, e.g. 0.99", _number(0.0, 1.0))
    warmup_epochs: float = _key(
        1.0, "linear warm-up of the learning rate, in epochs (at most a tenth of the schedule)", _number(0.0)
    )
    schedule: str = _key(
        "cosine", "cosine (with warm-up, stretched to the fold's time share) or plateau", _one_of(*SCHEDULES)
    )
    # off by default: on a few thousand images validation AUC at a high LR is too noisy to stop on
    patience: int = _key(0, "early stopping after N validations without a better score; 0 = off", _integer(0))
    class_weight: str | float = _key(
        "none", "'none', 'balanced' (sklearn, any task) or the positives' weight (a number, binary)", _CLASS_WEIGHT
    )
    label_smoothing: float = _key(
        0.0, "cross-entropy label smoothing: share of each target spread over the other classes", _number(0.0, 0.5)
    )
    val_every: int = _key(2, "validate every N epochs (and at the last)", _integer(1))
    precision: str = _key(
        "auto", "auto (mixed on GPU/TPU, float32 on CPU), " + ", ".join(PRECISIONS), _one_of("auto", *PRECISIONS)
    )
    freeze_epochs: int = _key(
        0, "pretrained backbones: epochs with the backbone frozen before fine-tuning", _integer(0)
    )
    finetune_lr_factor: float = _key(
        0.1, "learning rate factor once a frozen backbone is unfrozen", _number(0.0, low_open=True)
    )


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    train: list = _key(
        [],
        "training augmentation, albumentations transforms as [{name=..., ...}]; default from the adapter",
        _TRANSFORMS,
    )
    on: str = _key(
        "cpu",
        "where training augmentation runs: cpu (albumentations in the loader) or model (Keras layers in the training "
        "step, on the accelerator; D4, flips, RandomRotate90, Transpose, HueSaturationValue, RandomBrightnessContrast)",
        _one_of("cpu", "model"),
    )


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    tta: str = _key(
        "d4",
        "test-time augmentation: d4 (8 dihedral views), hflip (mirror) or none; default: the adapter's label-"
        "preserving views",
        _one_of(*TTA_MODES),
    )
    fold_average: str = _key("mean", "how fold predictions are combined: mean or rank", _one_of(*FOLD_AVERAGES))


@dataclasses.dataclass(frozen=True)
class Config:
    """One experiment, fully resolved. ``to_dict()`` is what ``config.toml`` holds."""

    competition: str = _key("", "the adapter (kit.adapters)", _TEXT)
    name: str = _key("", "run-folder suffix; empty = the backbone name", _TEXT)
    seed: int = _key(0, "seed of weights, shuffling and augmentation (fold k uses seed*1000+k)", _integer(0))
    folds: FoldsConfig = dataclasses.field(default_factory=FoldsConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    predict: PredictConfig = dataclasses.field(default_factory=PredictConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _sections(cls) -> dict[str, type]:
    return {f.name: f.default_factory for f in dataclasses.fields(cls) if dataclasses.is_dataclass(f.default_factory)}


def config_from_dict(table: dict, source: str, registries: bool = False) -> Config:
    """A checked ``Config`` from a (possibly partial) table; missing keys take their defaults.

    ``registries=True`` also checks names that come from a registry (the backbone, the head pooling), which imports
    Keras: ``resolve_config`` does, while reading a run folder's config does not (it was checked when it was made).

    Raises:
        KitError: an unknown key (listing the known ones), a section given a value, or a bad value (saying what
            the key accepts), naming ``source``.
    """
    return _build(Config, table, source, "", registries)


def _build(cls, table: dict, source: str, prefix: str, registries: bool):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    sections = _sections(cls)
    unknown = [k for k in table if k not in fields]
    if unknown:
        known = ", ".join(f"{prefix}{k}" for k in fields)
        raise KitError(
            f"unknown config key {prefix + unknown[0]!r} (from {source}); known: {known}. "
            f"Fix: use one of the known keys (`kit config show COMPETITION` lists them)."
        )
    values = {}
    for key, value in table.items():
        where = f"{prefix}{key}"
        if key in sections:
            if not isinstance(value, dict):
                raise KitError(
                    f"config key {where!r} is a section; got the value {value!r} (from {source}). "
                    f"Fix: set one of its keys, e.g. {where}.{next(iter(_field_names(sections[key])))}=..."
                )
            values[key] = _build(sections[key], value, source, f"{where}.", registries)
        else:
            rule = fields[key].metadata["rule"]
            values[key] = _check(rule if registries or rule.known is None else _TEXT, value, where, source)
    return cls(**values)


def _field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _check(rule: Rule, value, where: str, source: str):
    if not rule.accepts(value):
        known = f" ({', '.join(rule.known())})" if rule.known else ""
        raise KitError(
            f"config key {where!r} expects {rule.expected}{known}; got {value!r} (from {source}). "
            f"Fix: give {where} a valid value."
        )
    return rule.convert(value)


def check_tta(adapter, tta: str) -> str:
    """``tta`` if its views preserve the labels of ``adapter`` (its ``tta`` or fewer views), else a KitError.

    Example:
        >>> check_tta(get_adapter("head-ct"), "none")
        'none'
    """
    if tta in TTA_MODES and TTA_MODES.index(tta) < TTA_MODES.index(adapter.tta):
        raise KitError(
            f"expected TTA views that keep {adapter.name}'s labels ({adapter.tta} or fewer), got {tta!r}. "
            f"Fix: use --tta {adapter.tta} (or predict.tta={adapter.tta}), or none."
        )
    return tta


def resolve_config(competition: str, config_file=None, overrides: list[str] = ()) -> Config:
    """Defaults, then the adapter's augmentation, then ``config_file``, then ``overrides`` (``section.key=value``).

    Raises:
        KitError: an unknown competition, an unreadable file or a malformed, unknown or invalid key.
    """
    adapter = get_adapter(competition)
    table = Config().to_dict()
    table["competition"] = adapter.name
    table["augment"]["train"] = [dict(t) for t in adapter.train_augment]
    table["predict"]["tta"] = adapter.tta
    layers = [(load_toml(config_file), str(config_file))] if config_file else []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise KitError(f"expected --set section.key=value, got {item!r}. Fix: e.g. --set train.lr=1e-3.")
        layers.append((_nest(key.strip(), _parse_value(raw.strip())), f"--set {item}"))
    for layer, source in layers:
        config_from_dict(layer, source, registries=True)  # names the layer that holds a bad key or value
        _merge(table, layer)
    check_tta(adapter, table["predict"]["tta"])
    if table["predict"]["fold_average"] == "rank":
        adapter.check_rank_average("predict.fold_average=rank")
    if not table["name"]:
        table["name"] = table["model"]["backbone"]
    if table["competition"] != adapter.name:
        raise KitError(
            f"expected competition = {adapter.name!r} (the command's), got {table['competition']!r}. "
            "Fix: drop `competition` from the config file."
        )
    return config_from_dict(table, "the resolved configuration", registries=True)


def describe(cfg: Config) -> str:
    """The configuration as TOML, each key followed by its one-line description (``kit config show``)."""
    sections = _sections(Config)
    comments = {}
    for field in dataclasses.fields(Config):
        if field.name not in sections:
            comments[field.name] = field.metadata["doc"]
        else:
            comments.update(
                {f"{field.name}.{f.name}": f.metadata["doc"] for f in dataclasses.fields(sections[field.name])}
            )
    return dump_toml(cfg.to_dict(), comments)


def identity(cfg: Config) -> str:
    """A stable text of the resolved configuration: equal texts mean the same experiment."""
    return json.dumps(cfg.to_dict(), sort_keys=True)


def identity_hash(cfg: Config) -> str:
    """A short hash of ``identity(cfg)``: names one experiment where the whole text is too long (kernel ids).

    Example:
        >>> len(identity_hash(Config()))
        10
    """
    return hashlib.sha256(identity(cfg).encode()).hexdigest()[:10]


def _parse_value(raw: str):
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # a bare word: a string (train.schedule=plateau)


def _nest(dotted: str, value) -> dict:
    out = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def _merge(base: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(base.get(key), dict) and isinstance(value, dict):
            _merge(base[key], value)
        else:
            base[key] = value
