"""Declarative adapters: a TOML file describing a dataset is enough to register a competition, no Python needed.

``load_adapter_toml(path)`` reads one file into an ``Adapter`` (``layout = "csv"``: a label table plus image
folders) or a ``FolderPerClassAdapter`` (``layout = "folder_per_class"``). Every key is checked: unknown keys
(with the closest known one), wrong types and bad values are errors naming the file, the key, what was expected
and the fix. A declarative adapter has no drawing code of its own: ``kit synth`` writes its layout with
``kit.synth.generic`` (a colour and a shape per class). The keys are documented in ``docs/adapters.md``; the
registry loads ``competitions/*.toml``, the files and folders in ``KIT_ADAPTERS`` and ``register_adapter_file``.

Example:
    >>> from kit.adapters.declarative import load_adapter_toml
    >>> load_adapter_toml("competitions/intel_image_classification.toml").classes[:2]  # doctest: +SKIP
    ('buildings', 'forest')
"""

from __future__ import annotations

import difflib
from pathlib import Path

from kit.adapters.base import Adapter
from kit.adapters.folder_per_class import FolderPerClassAdapter
from kit.errors import KitError
from kit.tomlfile import load_toml

__all__ = ["LAYOUTS", "KEYS", "load_adapter_toml", "adapter_from_table"]

LAYOUTS = {"csv": Adapter, "folder_per_class": FolderPerClassAdapter}

_STR, _INT, _BOOL, _STRS, _TABLES = "a string", "an integer", "true or false", "a list of strings", "tables"
# key -> (what it must be, default when absent or None when required, one line for the docs/messages)
KEYS: dict[str, tuple[str, object, str]] = {
    "name": (_STR, None, "short name used on the command line"),
    "slug": (_STR, None, "Kaggle competition slug, or owner/name of a Kaggle dataset"),
    "layout": (_STR, None, '"csv" (label table + image folders) or "folder_per_class"'),
    "kind": (_STR, "competition", '"competition" or "dataset"'),
    "train_dir": (_STR + " or " + _STRS, None, "train image folder(s), relative to the raw folder"),
    "test_dir": (_STR + " or " + _STRS, "test", "test image folder(s)"),
    "labels_csv": (_STR, "", "train table (csv layout)"),
    "sample_submission_csv": (_STR, "", "test ids in submission order (folder_per_class: optional)"),
    "id_column": (_STR, "id", "id column of both tables"),
    "label_column": (_STR, "label", "label column of the train table (and the submission)"),
    "group_column": (_STR, "", "train column whose rows stay in one fold"),
    "csv_sep": (_STR, ",", 'the tables\' separator; "" to sniff it'),
    "file_stem": (_STR, "{id}", "how an id names its file: {id}, or {n:03d} for integer ids"),
    "image_suffix": (_STR, "", "file name = file_stem + image_suffix (csv layout)"),
    "suffixes": (_STRS, [".jpeg", ".jpg", ".png"], "image file endings (folder_per_class)"),
    "id_is_file_name": (_BOOL, False, "ids keep the file's suffix (folder_per_class)"),
    "image_format": (_STR, "", 'magic-checked format ("tiff"), "" for anything OpenCV reads'),
    "image_shape": ("a list [height, width, channels]", None, "stored shape (or size + channels)"),
    "size": (_INT, None, "stored side of a square image (with channels)"),
    "channels": (_INT, 3, "1 (grayscale) or 3 (RGB), with size"),
    "fit": (_STR, "pad", '"exact", "stretch", "crop" or "pad"'),
    "task": (_STR, "multiclass", '"binary", "multiclass" or "multilabel"'),
    "classes": (_STRS, [], "class names in output order (folder_per_class: the folder names)"),
    "positive_class": (_STR, "", "binary folder_per_class: the positive class (the last of classes)"),
    "metric": (_STR, None, "the score, a kit.metrics name"),
    "extra_metrics": (_STRS, [], "more kit.metrics names to report"),
    "tta": (_STR, "none", '"d4", "hflip" or "none"'),
    "submission": (_STR, "", '"probability", "class_name", "class_probs" or "labels" (default by task)'),
    "class_columns": (_STRS, [], "the submission's column per class (class_probs)"),
    "train_augment": (_TABLES, [], "albumentations transforms, [[train_augment]] name = ... p = ..."),
    "exclude": (_STRS, [], "glob patterns of files beside the images that are not images (masks)"),
    "exclude_reason": (_STR, "file beside the images", "what an excluded file is, for the skipped list"),
    "optional_test": (_BOOL, False, "a dataset without a test split: the labelled images stand in"),
}
_CSV_ONLY = ("labels_csv", "image_suffix", "file_stem", "group_column")
_FOLDER_ONLY = ("suffixes", "id_is_file_name", "positive_class")
_DEFAULT_SUBMISSION = {"binary": "probability", "multiclass": "class_name", "multilabel": "labels"}


def load_adapter_toml(path) -> Adapter:
    """The adapter a TOML file declares; every problem is a KitError naming the file, the key and the fix."""
    path = Path(path)
    return adapter_from_table(load_toml(path), str(path))


def adapter_from_table(table: dict, where: str = "adapter table") -> Adapter:
    """The adapter a parsed TOML table declares (``where`` names it in messages)."""

    def bad(key: str, expected: str, got, fix: str = "") -> KitError:
        return KitError(f"{where}: expected {key} {expected}, got {got!r}. Fix: {fix or f'correct {key} in the file.'}")

    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        close = {k: difflib.get_close_matches(k, KEYS, n=1) for k in unknown}
        hints = "; ".join(f"{k!r} -> {c[0]!r}" for k, c in close.items() if c)
        raise KitError(
            f"{where}: expected only known keys, got unknown {', '.join(map(repr, unknown))}. Fix: "
            + (f"rename {hints}; " if hints else "")
            + f"the keys are {', '.join(KEYS)} (docs/adapters.md)."
        )
    missing = [
        k
        for k, (_, default, _) in KEYS.items()
        if default is None and k not in table and k not in ("image_shape", "size")
    ]
    if missing:
        raise KitError(f"{where}: expected the keys {', '.join(missing)}, got a file without them. Fix: add them.")
    values = {}
    for key, value in table.items():
        values[key] = _checked(key, value, bad)
    layout = values.pop("layout")
    if layout not in LAYOUTS:
        raise bad("layout", " or ".join(map(repr, LAYOUTS)), layout)
    wrong = [k for k in (_FOLDER_ONLY if layout == "csv" else _CSV_ONLY) if k in values]
    if wrong:
        raise bad(wrong[0], f"absent for layout {layout!r}", values[wrong[0]], f"remove {wrong[0]} or change layout.")
    if layout == "csv" and "labels_csv" not in values:
        raise bad("labels_csv", "the train table for layout 'csv'", None, 'add labels_csv = "train.csv".')
    fields = {k: default for k, (_, default, _) in KEYS.items() if default is not None and k not in ("channels",)}
    for key in _FOLDER_ONLY if layout == "csv" else ():  # fields only FolderPerClassAdapter has
        fields.pop(key, None)
    if layout == "csv":
        fields["sample_submission_csv"] = "sample_submission.csv"
    fields.update(values)
    fields["image_shape"] = _image_shape(values, bad)
    fields.pop("size", None)
    fields.pop("channels", None)
    fields["submission"] = fields["submission"] or _DEFAULT_SUBMISSION.get(fields["task"], "")
    fields["csv_sep"] = fields["csv_sep"] or None
    fields["image_format"] = fields["image_format"] or None
    fields["group_column"] = fields.get("group_column") or None
    for key in ("classes", "extra_metrics", "class_columns", "exclude", "suffixes"):
        if key in fields:
            fields[key] = tuple(fields[key])
    fields["train_augment"] = tuple(dict(t) for t in fields["train_augment"])
    try:
        return LAYOUTS[layout](synthesize=None, **fields)
    except KitError as e:
        raise KitError(f"{where}: {e}") from None


def _checked(key: str, value, bad):
    kind = KEYS[key][0]
    if kind == _STR or kind.startswith(_STR + " or"):
        if isinstance(value, str):
            return value
        if kind != _STR and isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
            return tuple(value)
        raise bad(key, kind, value)
    if kind == _BOOL and not isinstance(value, bool):
        raise bad(key, kind, value, f"write {key} = true or {key} = false.")
    if kind == _INT and (isinstance(value, bool) or not isinstance(value, int)):
        raise bad(key, kind, value)
    if kind == _STRS and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise bad(key, kind, value, f'write {key} = ["...", "..."].')
    if kind == _TABLES and not (isinstance(value, list) and all(isinstance(v, dict) and "name" in v for v in value)):
        raise bad(key, "a list of tables with a name each", value, '[[train_augment]] then name = "D4" and p = 1.0.')
    if key == "image_shape" and not (
        isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) and v > 0 for v in value)
    ):
        raise bad(key, kind, value, "write image_shape = [128, 128, 3].")
    return value


def _image_shape(values: dict, bad) -> tuple[int, int, int]:
    if "image_shape" in values and "size" in values:
        raise bad("image_shape or size", "one of the two", values["image_shape"], "remove one of them.")
    if "image_shape" in values:
        shape = tuple(values["image_shape"])
    elif "size" in values:
        shape = (values["size"], values["size"], values.get("channels", 3))
    else:
        raise bad("image_shape", "[height, width, channels] (or size and channels)", None, "add size = 128.")
    if shape[2] not in (1, 3) or min(shape) < 1:
        raise bad("channels", "1 or 3 (and a positive size)", shape[2], "write channels = 1 or channels = 3.")
    return shape
