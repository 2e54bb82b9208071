"""Reading a competition's raw folder for an adapter: the ``Listing`` a split becomes, its label tables (separator
sniffed when asked), its image folders (several searched in order; files an adapter excludes, such as masks,
listed as skipped with the reason) and the labelled images standing in as a test split.

Example:
    >>> sniff_sep(Path("labels.csv"))  # "id, hemorrhage" then "0, 1" ...  # doctest: +SKIP
    ','
"""

from __future__ import annotations

import csv
import dataclasses
import fnmatch
import os
from pathlib import Path

import pandas as pd

from kit.errors import KitError

__all__ = [
    "Listing",
    "sniff_sep",
    "read_table",
    "list_folder",
    "scan_folders",
    "labelled_as_test",
    "excluded_by",
    "skip_reason",
]


@dataclasses.dataclass
class Listing:
    """One split as the adapter sees it, before any check: ``rows`` has the columns id, path, exists (the file
    is there), where (e.g. "train.csv line 7", for messages), label (train; text), group (when the adapter
    groups) and problem (when some ids name no file: the reason, "" elsewhere); ``strays`` lists (path, reason)
    for files present that belong to no row (quarantined); ``skipped`` lists (path, reason) for files the adapter
    declares are not images to classify (``exclude``: e.g. segmentation masks beside the images): neither ingested
    nor counted as failures, but listed so that nothing is left out silently."""

    rows: pd.DataFrame
    strays: list[tuple[str, str]]
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def labelled_as_test(train: Listing) -> Listing:
    """The labelled images as the test split (``optional_test``): the rows that can be read, without labels; the
    train split already reports the rest (bad rows, strays, skipped files)."""
    rows = train.rows
    usable = rows["exists"] & (rows["problem"] == "" if "problem" in rows else True) & (rows["id"] != "")
    rows = rows[usable].drop(columns=[c for c in ("label", "group", "problem") if c in rows])
    rows = rows.drop_duplicates("id").reset_index(drop=True)
    return Listing(rows, [], [])


def excluded_by(name: str, patterns: tuple[str, ...]) -> str | None:
    """The first pattern ``name`` matches, or None."""
    return next((p for p in patterns if fnmatch.fnmatchcase(name, p)), None)


def skip_reason(adapter, name: str, pattern: str, images: dict[str, str]) -> str:
    """Why an excluded file is not ingested, naming the image it lies beside when one's stem starts its stem
    (``benign (1)_mask_1.png`` belongs to ``benign (1).png``); ``images`` maps stems to file names."""
    stem = os.path.splitext(name)[0]
    owner = next((images[stem[:cut]] for cut in range(len(stem) - 1, 0, -1) if stem[:cut] in images), None)
    what = f"{adapter.exclude_reason} of {owner!r}" if owner else adapter.exclude_reason
    return f"{what}, not an image to classify (exclude pattern {pattern!r}); not ingested"


def scan_folders(raw: Path, folders: tuple[str, ...], adapter):
    """Files (not folders) of ``folders``, in order: ({name: folder path + os.sep} for the first copy of each
    name, strays (later copies of a name), skipped (files matching ``adapter.exclude``))."""
    found: dict[str, str] = {}
    strays, skipped = [], []
    for relative in folders:
        folder = Path(raw) / relative
        prefix = f"{folder}{os.sep}"
        names = list_folder(folder)
        excluded = {n: p for n in names if (p := excluded_by(n, adapter.exclude))} if adapter.exclude else {}
        if excluded:
            images = {os.path.splitext(n)[0]: n for n in names if n not in excluded}
            skipped += [(prefix + n, skip_reason(adapter, n, p, images)) for n, p in sorted(excluded.items())]
        for name in sorted(names - set(excluded)) if excluded else names:
            if name in found:
                strays.append((prefix + name, f"a second copy of {found[name]}{name}; that one is read"))
            else:
                found[name] = prefix
    return found, strays, skipped


def sniff_sep(path: Path) -> str:
    """The field separator of a CSV file, sniffed from its first lines (``,`` when it cannot tell, e.g. one column).

    Example:
        >>> sniff_sep(Path("labels.csv"))  # "id, hemorrhage" then "0, 1" ...  # doctest: +SKIP
        ','
    """
    with open(path, newline="", errors="replace") as f:
        sample = f.read(65536)
    if len(sample) == 65536 and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def read_table(path: Path, adapter, split: str) -> pd.DataFrame:
    if not path.is_file():
        raise KitError(
            f"expected the {split} table at {path}, found nothing. Fix: point --raw at the folder holding "
            f"Kaggle's files (`kit download {adapter.name}`), or make a synthetic one with "
            f"`kit synth {adapter.name} DIR`."
        )
    try:
        sep = adapter.csv_sep or sniff_sep(path)
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, sep=sep)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise KitError(f"{path} is not a readable CSV ({e}). Fix: restore it from the Kaggle download.") from None
    table.columns = [str(c).strip() for c in table.columns]
    needed = [adapter.id_column]
    if split == "train":
        needed += [adapter.label_column] + ([adapter.group_column] if adapter.group_column else [])
    missing = [c for c in needed if c not in table.columns]
    if missing:
        how = f" separated by {sep!r}" if adapter.csv_sep not in (",", None) else ""
        how += f" (separator {sep!r} sniffed)" if adapter.csv_sep is None else ""
        raise KitError(
            f"{path} must have columns {needed}{how}; got {list(table.columns)} (missing {missing}). "
            "Fix: restore the file from the Kaggle download."
        )
    return table


def list_folder(folder: Path) -> set[str]:
    try:
        with os.scandir(folder) as entries:
            return {e.name for e in entries if not e.is_dir()}
    except FileNotFoundError:
        raise KitError(f"expected the image folder {folder}, found nothing. Fix: check --raw.") from None
