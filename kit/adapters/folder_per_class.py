"""Datasets laid out as one folder per class (``<train_dir>/<CLASS>/<file>``): ``FolderPerClassAdapter``.

Example:
    >>> from competitions.chest_xray import CHEST_XRAY
    >>> CHEST_XRAY.classes
    ('NORMAL', 'PNEUMONIA')
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pandas as pd

from kit.adapters.base import Adapter
from kit.adapters.raw_files import Listing, excluded_by, labelled_as_test, read_table, skip_reason
from kit.errors import KitError

__all__ = ["FolderPerClassAdapter"]


@dataclasses.dataclass(frozen=True)
class FolderPerClassAdapter(Adapter):
    """A dataset laid out as ``<train_dir>/<CLASS>/<file>`` (and the same, or a flat folder, for the test split).

    Labels come from the folder: the folder's name is the class (binary: ``classes[1]`` is the positive class,
    label 1; multiclass: its index in ``classes``). The id is the file name without its suffix, or with it when
    ``id_is_file_name`` (Plant Seedlings' submission names ``0021e90e4.png``); image files end in one of
    ``suffixes``, and files matching ``exclude`` are skipped. Test images may sit in class folders (their labels are
    ignored) or directly in ``test_dir``, listed sorted by id; when ``sample_submission_csv`` names a table that
    is present, the test split is that table's ``id_column`` in its order (each id naming its file in
    ``test_dir``, as in ``Adapter``). With ``optional_test`` and no test folder, the labelled images stand in.
    """

    positive_class: str = ""  # binary: must be classes[1] when given (kept for declarations that name it)
    suffixes: tuple[str, ...] = (".jpeg", ".jpg", ".png")
    id_is_file_name: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.task == "multilabel":
            raise KitError(
                f"adapter {self.name!r}: expected a binary or multiclass task for a folder-per-class layout (a "
                "file sits in one class folder), got 'multilabel'. Fix: use a label table (layout 'csv') with "
                "space-separated labels."
            )
        if len(self.classes) < 2 or (self.positive_class and self.positive_class != self.classes[-1]):
            raise KitError(
                f"adapter {self.name!r}: expected at least two classes (binary: the positive class last); got "
                f"classes={self.classes}, positive_class={self.positive_class!r}. Fix: list the classes in label "
                "order."
            )

    def _test_table(self, raw: Path) -> Path | None:
        path = Path(raw) / self.sample_submission_csv if self.sample_submission_csv else None
        return path if path is not None and path.is_file() else None

    def _fallback_test(self, raw: Path) -> bool:
        if not self.optional_test or self._test_table(raw) is not None:
            return False
        return not any((Path(raw) / folder).is_dir() for folder in self.split_dirs("test"))

    def list_split(self, raw: Path, split: str) -> Listing:
        if split != "train":
            if self._fallback_test(raw):
                return labelled_as_test(self.list_split(raw, "train"))  # a dataset without a test split
            table = self._test_table(raw)
            if table is not None:
                return self._list_from_table(raw, split, table)
        records, strays, skipped = [], [], []
        for relative in self.split_dirs(split):
            folder = Path(raw) / relative
            if not folder.is_dir():
                raise KitError(f"expected the image folder {folder}, found nothing. Fix: check --raw.")
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                if entry.is_dir():
                    if entry.name not in self.classes:
                        strays.append((entry.path, f"folder is not one of the classes {', '.join(self.classes)}"))
                        continue
                    label = entry.name if split == "train" else None
                    self._add_folder(records, strays, skipped, entry.path, label, f"{entry.name}/")
                elif split == "train":
                    if pattern := excluded_by(entry.name, self.exclude):
                        skipped.append((entry.path, skip_reason(self, entry.name, pattern, {})))
                    else:
                        strays.append((entry.path, f"not inside a class folder ({', '.join(self.classes)})"))
            if split != "train":
                self._add_folder(records, strays, skipped, folder, None, "", files_only=True)
        rows = pd.DataFrame(records, columns=["id", "path", "exists", "where", "label"])
        if split != "train":
            rows = rows.drop(columns="label").sort_values("id", kind="stable").reset_index(drop=True)
        return Listing(rows, strays, skipped)

    def _add_folder(self, records, strays, skipped, folder, label, prefix, files_only=False) -> None:
        """Add the image files of ``folder``; excluded files go to ``skipped``, other files to ``strays``."""
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
        files = [e for e in entries if not e.is_dir()]
        images = {}
        if self.exclude:
            images = {os.path.splitext(e.name)[0]: e.name for e in files if not excluded_by(e.name, self.exclude)}
        for entry in entries:
            if files_only and entry.is_dir():
                continue
            stem, suffix = os.path.splitext(entry.name)
            pattern = None if entry.is_dir() else excluded_by(entry.name, self.exclude)
            if pattern:
                skipped.append((entry.path, skip_reason(self, entry.name, pattern, images)))
            elif entry.is_dir() or suffix.lower() not in self.suffixes:
                strays.append((entry.path, f"not an image file (expected {', '.join(self.suffixes)})"))
            else:
                image_id = entry.name if self.id_is_file_name else stem
                records.append((image_id, entry.path, True, f"{prefix}{entry.name}", label))

    def _list_from_table(self, raw: Path, split: str, path: Path) -> Listing:
        """The test split in the order of its table: each id names its file in the test folder(s)."""
        table = read_table(path, self, split)
        ids = table[self.id_column].str.strip()
        if self.id_is_file_name:
            names, problems = ids, None
        else:
            names, problems = self._file_names(ids)
        rows, strays, skipped = self._rows_for_names(raw, split, ids, names, path.name)
        if problems is not None:
            rows["problem"] = problems
        return Listing(rows, strays, skipped)

    def table_path(self, raw: Path, split: str) -> Path:
        if split != "train" and self.sample_submission_csv:
            return Path(raw) / self.sample_submission_csv
        raise KitError(
            f"expected a label table, but {self.name} has none: its labels are its folders "
            f"({', '.join(self.classes)}). Fix: read it with list_split."
        )
