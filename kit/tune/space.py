"""The space file of ``kit tune``: which keras_tuner oracle searches, and over which configuration keys.

A space file is TOML: top-level options for the oracle, and a ``[keys]`` table mapping dotted configuration keys
(any key ``kit config show`` lists) to a hyperparameter. Every key and every value the search can reach (a
choice's values, a range's ends) is checked by ``kit.config`` before anything trains, so a typo fails at once
with the list of known keys.

Example:
    oracle = "bayesian"          # or "random", "hyperband"
    seed = 0                     # the oracle's seed (default 0)
    [keys]
    "train.lr" = {type = "float", min = 1e-4, max = 1e-2, sampling = "log"}
    "model.dropout" = {type = "float", min = 0.0, max = 0.5, step = 0.1}
    "model.backbone" = {type = "choice", values = ["tiny_cnn", "compact_cnn"]}
    "data.batch_size" = {type = "int", min = 16, max = 64, step = 16}
    "train.ema" = {type = "bool"}            # false or true (0.0 / 0.99 would be a choice)

    >>> space = parse_space({"oracle": "random", "keys": {"train.lr": {"type": "choice", "values": [1e-3, 3e-3]}}})
    >>> space.overrides({"train.lr": 0.003})
    ['train.lr=0.003']

Hyperband also takes ``max_epochs`` (default: the configuration's ``train.epochs``), ``factor`` (3) and
``hyperband_iterations`` (1); its epoch budget per trial becomes ``train.epochs``, so ``train.epochs`` is not a
key it may search. Bayesian optimisation takes ``num_initial_points`` (default: 3 x the number of keys).
"""

from __future__ import annotations

import dataclasses
import json

from kit.config import config_from_dict
from kit.errors import KitError
from kit.tomlfile import load_toml, toml_value

__all__ = ["Space", "load_space", "parse_space", "known_keys", "plain_value", "ORACLES", "TYPES", "EPOCHS_KEY"]

ORACLES = ("random", "bayesian", "hyperband")
TYPES = ("float", "int", "choice", "bool")
SAMPLINGS = ("linear", "log", "reverse_log")
EPOCHS_KEY = "train.epochs"  # where Hyperband's per-trial epoch budget goes
_OPTIONS = {
    "oracle": None,
    "seed": "all",
    "max_epochs": "hyperband",
    "factor": "hyperband",
    "hyperband_iterations": "hyperband",
    "num_initial_points": "bayesian",
    "keys": None,
}
_FIELDS = {
    "float": {"type", "min", "max", "step", "sampling", "default"},
    "int": {"type", "min", "max", "step", "sampling", "default"},
    "choice": {"type", "values", "default"},
    "bool": {"type", "default"},
}


@dataclasses.dataclass(frozen=True)
class Space:
    """A checked space file: the oracle, its options and ``{config key: hyperparameter table}``."""

    oracle: str
    keys: dict
    options: dict
    source: str = "the space file"

    def hyperparameters(self):
        """The keys as a ``keras_tuner.HyperParameters`` (one hyperparameter per key, named by the key)."""
        import keras_tuner

        hp = keras_tuner.HyperParameters()
        for key, spec in self.keys.items():
            kind = spec["type"]
            extra = {"default": spec["default"]} if "default" in spec else {}
            try:
                if kind in ("float", "int"):
                    make = hp.Float if kind == "float" else hp.Int
                    ranged = dict(step=spec.get("step"), sampling=spec.get("sampling", "linear"))
                    make(key, spec["min"], spec["max"], **ranged, **extra)
                elif kind == "choice":
                    hp.Choice(key, spec["values"], **extra)
                else:
                    hp.Boolean(key, **extra)
            except (ValueError, TypeError) as e:
                raise KitError(
                    f"keras_tuner refuses {key!r} = {spec} (from {self.source}): {e}. Fix: correct that key's table."
                ) from None
        return hp

    def overrides(self, values: dict) -> list[str]:
        """A trial's values as ``--set`` overrides (keras_tuner's own ``tuner/...`` values become ``train.epochs``)."""
        out = [f"{key}={toml_value(plain_value(values[key]))}" for key in self.keys if key in values]
        if "tuner/epochs" in values:
            out.append(f"{EPOCHS_KEY}={int(values['tuner/epochs'])}")
        return out

    def identity(self) -> str:
        """A stable text of the space: a search folder belongs to one space."""
        return json.dumps({"oracle": self.oracle, "options": self.options, "keys": self.keys}, sort_keys=True)


def load_space(path) -> Space:
    """The checked space in the TOML file ``path``; see the module docstring for the format."""
    return parse_space(load_toml(path), str(path))


def parse_space(table: dict, source: str = "the space file") -> Space:
    """A checked ``Space`` from a space file's table.

    Raises:
        KitError: an unknown option or oracle, no keys, an unknown configuration key (listing the known ones), a
            bad hyperparameter table, or a value the key does not accept (saying what it accepts).
    """
    unknown = [k for k in table if k not in _OPTIONS]
    if unknown:
        raise KitError(
            f"unknown space option {unknown[0]!r} (from {source}); known: {', '.join(_OPTIONS)}. "
            'Fix: put the keys to search under [keys], e.g. "train.lr" = {type = "float", min = 1e-4, max = 1e-2}.'
        )
    oracle = table.get("oracle", "bayesian")
    if oracle not in ORACLES:
        raise KitError(
            f"expected oracle = one of {', '.join(map(repr, ORACLES))}, got {oracle!r} (from {source}). "
            'Fix: e.g. oracle = "bayesian".'
        )
    options = {k: v for k, v in table.items() if k not in ("oracle", "keys")}
    for name, value in options.items():
        if _OPTIONS[name] not in ("all", oracle):
            raise KitError(
                f"space option {name!r} belongs to the {_OPTIONS[name]} oracle, got it with oracle = {oracle!r} "
                f'(from {source}). Fix: drop {name} or use oracle = "{_OPTIONS[name]}".'
            )
        low = 2 if name == "factor" else 0 if name == "seed" else 1
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
            raise KitError(
                f"space option {name!r} expects an integer >= {low}; got {value!r} (from {source}). "
                f"Fix: give {name} a valid value."
            )
    keys = table.get("keys")
    if not isinstance(keys, dict) or not keys:
        raise KitError(
            f"expected a [keys] table with at least one configuration key to search, got {keys!r} (from {source}). "
            'Fix: add e.g. [keys] "train.lr" = {type = "float", min = 1e-4, max = 1e-2, sampling = "log"}.'
        )
    checked = {key: _check_key(key, spec, source) for key, spec in keys.items()}
    if oracle == "hyperband" and EPOCHS_KEY in checked:
        raise KitError(
            f"hyperband chooses {EPOCHS_KEY} itself (its epoch budget per trial), got it under [keys] (from {source}). "
            f"Fix: drop {EPOCHS_KEY!r} from [keys] and set max_epochs = N instead."
        )
    return Space(oracle, checked, options, source)


def _check_key(key: str, spec, source: str) -> dict:
    where = f"{source} [keys] {key!r}"
    if key in ("competition", "name"):
        raise KitError(f"config key {key!r} cannot be searched (from {where}). Fix: drop it from [keys].")
    if key not in known_keys():
        config_from_dict(_nest(key, None), where)  # an unknown key or a section: its error lists the known ones
        raise KitError(
            f"unknown config key {key!r} (from {source}); known: {', '.join(known_keys())}. "
            "Fix: use one of the known keys (`kit config show COMPETITION` lists them)."
        )
    if not isinstance(spec, dict):
        raise KitError(
            f'expected a table for {key!r}, e.g. {{type = "choice", values = [...]}}, got {spec!r} (from {source}). '
            "Fix: give the key a table with a type."
        )
    kind = spec.get("type")
    if kind not in TYPES:
        raise KitError(
            f"expected type = one of {', '.join(map(repr, TYPES))} for {key!r}, got {kind!r} (from {source}). "
            'Fix: e.g. {type = "float", min = 1e-4, max = 1e-2}.'
        )
    extra = sorted(set(spec) - _FIELDS[kind])
    if extra:
        raise KitError(
            f"unknown field {extra[0]!r} in {key!r} (type {kind}, from {source}); known: "
            f"{', '.join(sorted(_FIELDS[kind]))}. Fix: drop it."
        )
    if kind in ("float", "int"):
        number = int if kind == "int" else (int, float)
        for field in ("min", "max"):
            if not isinstance(spec.get(field), number) or isinstance(spec.get(field), bool):
                raise KitError(
                    f"expected {field} = {'an integer' if kind == 'int' else 'a number'} for {key!r} (type {kind}), "
                    f"got {spec.get(field)!r} (from {source}). Fix: give both min and max."
                )
        if spec["min"] >= spec["max"]:
            raise KitError(
                f"expected min < max for {key!r}, got min = {spec['min']!r}, max = {spec['max']!r} (from {source}). "
                "Fix: swap or widen them (a fixed value belongs in --set, not in the search)."
            )
        step = spec.get("step")
        if step is not None and (not isinstance(step, number) or isinstance(step, bool) or step <= 0):
            raise KitError(
                f"expected step > 0 for {key!r}, got {step!r} (from {source}). Fix: drop step or make it positive."
            )
        sampling = spec.get("sampling", "linear")
        if sampling not in SAMPLINGS:
            raise KitError(
                f"expected sampling = one of {', '.join(map(repr, SAMPLINGS))} for {key!r}, got {sampling!r} "
                f'(from {source}). Fix: e.g. sampling = "log" for a learning rate.'
            )
        if sampling != "linear" and spec["min"] <= 0:
            raise KitError(
                f"{sampling} sampling needs min > 0 for {key!r}, got min = {spec['min']!r} (from {source}). "
                'Fix: raise min or use sampling = "linear".'
            )
        reachable = [spec["min"], spec["max"]]
        if kind == "float":  # a float in between: an integer key (data.batch_size) refuses it
            reachable.append((spec["min"] + spec["max"]) / 2 + 1e-9)
    elif kind == "choice":
        values = spec.get("values")
        scalars = isinstance(values, list) and all(isinstance(v, (str, int, float, bool)) for v in values)
        if not values or not scalars:
            raise KitError(
                f"expected values = a non-empty list of strings, numbers or booleans for {key!r}, got {values!r} "
                f'(from {source}). Fix: e.g. values = ["tiny_cnn", "compact_cnn"].'
            )
        if len({"number" if _is_number(v) else type(v).__name__ for v in values}) > 1:
            raise KitError(
                f"expected values of one type for {key!r}, got {values!r} (from {source}). Fix: use only strings, only "
                "numbers or only booleans."
            )
        if all(_is_number(v) for v in values) and any(isinstance(v, float) for v in values):
            spec = {**spec, "values": [float(v) for v in values]}  # keras_tuner wants one type: [0, 0.99] -> floats
        reachable = list(values)
    else:
        reachable = [False, True]
    if "default" in spec:
        reachable.append(spec["default"])
    for value in reachable:
        config_from_dict(_nest(key, value), where, registries=True)  # unknown key (the known ones) or a bad value
    return dict(spec)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def plain_value(value):
    """numpy scalars (some oracles return them) as plain Python values; floats to 12 digits (a step of 0.1 gives
    0.30000000000000004)."""
    value = value.item() if hasattr(value, "item") else value
    return float(f"{value:.12g}") if isinstance(value, float) else value


def _nest(dotted: str, value) -> dict:
    out = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def known_keys() -> list[str]:
    """Every dotted configuration key (``train.lr``), from ``kit.config``'s defaults."""
    from kit.config import Config

    out = []
    for name, value in Config().to_dict().items():
        out += [f"{name}.{k}" for k in value] if isinstance(value, dict) else [name]
    return out
