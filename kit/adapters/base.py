"""Competition adapters: data describing one competition or dataset.

The engine owns every loop; an adapter only says where files are, what the columns are called, what an image
looks like and how to score. Two layouts are built in: a label table plus image folders (``Adapter``: PCam, ISIC,
head CT, any ``id,label`` table whatever its separator) and one folder per class (``FolderPerClassAdapter``).
Declarations live in the top-level ``competitions`` package or in any installed package;
``kit.adapters.registry`` finds them.

Example:
    >>> from kit.adapters.registry import get_adapter
    >>> get_adapter("pcam").image_shape
    (96, 96, 3)
"""

from __future__ import annotations

import csv
import dataclasses
import fnmatch
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from kit.adapters.image_spec import FITS, ImageSpec
from kit.errors import KitError
from kit.metrics import TASKS, get_metric

__all__ = ["Adapter", "FolderPerClassAdapter", "Listing", "sniff_sep", "TTA_VIEWS", "SUBMISSION_FORMATS"]

TTA_VIEWS = ("d4", "hflip", "none")  # label-preserving views an adapter may declare, most to fewest
SUBMISSION_FORMATS = {
    "probability": "id, then the positive class's probability (binary)",
    "class_name": "id, then the predicted class's name (one label per image, e.g. file,species)",
    "class_probs": "id, then one probability column per class (e.g. image,MEL,NV,...)",
    "labels": "id, then the predicted labels, space-separated (multilabel)",
}


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


@dataclasses.dataclass(frozen=True)
class Adapter:
    """A competition laid out as a label table plus image folders (``<dir>/<file_stem><suffix>``).

    Attributes:
        name: short name used on the command line (``pcam``).
        slug: Kaggle competition slug (``owner/name`` for a Kaggle dataset, see ``kind``).
        train_dir / test_dir: folder (relative to the raw folder) holding the images, or a tuple of folders searched
            in order for each id's file (HAM10000 ships ``HAM10000_images_part_1`` and ``_part_2``).
        labels_csv: train table (id and label columns, plus ``group_column``), relative to the raw folder.
        sample_submission_csv: test ids in submission order, relative to the raw folder.
        id_column / label_column: column names in both tables, and the submission's columns.
        image_suffix: file name = ``file_stem`` + suffix.
        file_stem: how a row's id names its file, a format string: ``{id}`` the id as written (the default),
            ``{n}`` the id as an integer (``"{n:03d}"``: id 7 is ``007.png``, as the Head CT dataset ships).
        image_format: magic-checked file format ("tiff"), or None to accept anything OpenCV decodes.
        image_shape: (H, W, C) every stored image has; C=1 stores grayscale, C=3 RGB (grayscale sources are
            replicated to RGB, colour sources converted to gray as needed).
        metric: the competition's score, a name from ``kit.metrics`` (its direction and inputs come from there); it
            picks each fold's best epoch and scores the OOF predictions, blends and submissions.
        task: "binary" (one sigmoid output, label 0/1), "multiclass" (one of ``classes``, softmax) or "multilabel"
            (any of ``classes``, one sigmoid per class; labels written space-separated).
        classes: class names in output order; multiclass/multilabel labels are these names (or their indices).
            Binary: optional names of label 0 and 1.
        extra_metrics: more ``kit.metrics`` names reported next to ``metric``.
        tta: the label-preserving views for test-time augmentation: "d4" (8 dihedral views: pictures with no up or
            down, such as pathology patches or seedlings from above), "hflip" (left-right mirror: CT, ultrasound),
            "none" (radiographs: the heart is on one side).
        submission: the submission's format, one of ``SUBMISSION_FORMATS``.
        class_columns: the submission's column per class (``class_probs``), when they differ from ``classes``.
        synthesize: ``f(adapter, raw_dir, n_train, n_test, seed)`` writing a synthetic dataset in this layout
            (by convention a function of ``competitions.synthetic.<module>``); ``kit synth NAME DIR`` calls it.
            None (declarative adapters): ``kit.synth.generic`` writes the layout with a colour and shape per class.
        train_augment: default training augmentation, albumentations transforms as ``{"name": ..., **kwargs}``.
        group_column: train column whose rows must stay in one fold (a patient), or None.
        csv_sep: the tables' field separator, or None to sniff it from each table (``,``, ``;``, tab or ``|``).
        optional_test: a Kaggle dataset that ships only labelled images: when the test table is absent, the test
            split is the labelled images themselves (the pipeline runs; the OOF score is the result).
        fit: how a decoded image becomes ``image_shape``: "exact" (must already match), "stretch", "crop"
            (centre square, then resize) or "pad" (letterbox); resizing uses area interpolation.
        kind: "competition" (download and submit through Kaggle) or "dataset" (a Kaggle dataset: no submissions).
        code_competition: a Kaggle code competition (only for kind "competition"): submissions are a notebook's
            output, not an uploaded CSV (``kit kernel build --inference``, then ``kit submit NAME --kernel``).
        exclude: glob patterns (``fnmatch``, case-sensitive, on the file name) of files that lie beside the images
            but are not images to classify, e.g. ``("*_mask.png", "*_mask_*.png")`` for segmentation masks; they are
            listed in ``Listing.skipped`` with ``exclude_reason``, never ingested nor quarantined.
        exclude_reason: what an excluded file is ("segmentation mask"), for the skipped list's reasons.
    """

    name: str
    slug: str
    train_dir: str
    test_dir: str
    labels_csv: str
    sample_submission_csv: str
    id_column: str
    label_column: str
    image_suffix: str
    image_format: str | None
    image_shape: tuple[int, int, int]
    metric: str
    synthesize: Callable[[Adapter, Path, int, int, int], None]
    train_augment: tuple[dict, ...] = ()
    group_column: str | None = None
    csv_sep: str | None = ","
    fit: str = "exact"
    kind: str = "competition"
    file_stem: str = "{id}"
    optional_test: bool = False
    task: str = "binary"
    classes: tuple[str, ...] = ()
    extra_metrics: tuple[str, ...] = ()
    tta: str = "d4"
    submission: str = "probability"
    class_columns: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    exclude_reason: str = "file beside the images"
    code_competition: bool = False

    def __post_init__(self):
        for field in ("train_dir", "test_dir"):
            value = getattr(self, field)
            if not isinstance(value, str):  # a list from a TOML file or a tuple: one frozen tuple of folders
                folders = tuple(value) if isinstance(value, (list, tuple)) else ()
                if not folders or not all(isinstance(f, str) and f for f in folders):
                    raise KitError(
                        f"adapter {self.name!r}: expected {field} a folder or a non-empty tuple of folders, got "
                        f"{value!r}. Fix: correct the adapter's declaration."
                    )
                object.__setattr__(self, field, folders)
        if isinstance(self.exclude, str) or not all(isinstance(p, str) and p for p in self.exclude):
            raise KitError(
                f"adapter {self.name!r}: expected exclude a tuple of glob patterns, got {self.exclude!r}. "
                "Fix: write e.g. exclude=('*_mask.png',)."
            )
        object.__setattr__(self, "exclude", tuple(self.exclude))
        self._check_task()
        if self.fit not in FITS:
            raise KitError(
                f"adapter {self.name!r}: expected fit one of {', '.join(FITS)}, got {self.fit!r}. "
                "Fix: correct the adapter's declaration."
            )
        if self.kind not in ("competition", "dataset"):
            raise KitError(
                f"adapter {self.name!r}: expected kind 'competition' or 'dataset', got {self.kind!r}. "
                "Fix: correct the adapter's declaration."
            )
        if self.code_competition and self.kind != "competition":
            raise KitError(
                f"adapter {self.name!r}: expected code_competition only for kind 'competition', got kind "
                f"{self.kind!r} (a Kaggle dataset takes no submissions). Fix: drop code_competition=True."
            )
        try:
            self.file_stem.format(id="7", n=7)
        except (KeyError, IndexError, ValueError) as e:
            raise KitError(
                f"adapter {self.name!r}: expected file_stem a format string of {{id}} (text) or {{n}} (integer), "
                f"got {self.file_stem!r} ({e}). Fix: write e.g. '{{id}}' or '{{n:03d}}'."
            ) from None

    def _check_task(self) -> None:
        def bad(expected: str, got) -> KitError:
            return KitError(
                f"adapter {self.name!r}: expected {expected}, got {got!r}. Fix: correct the adapter's declaration."
            )

        if self.task not in TASKS:
            raise bad(f"task one of {', '.join(TASKS)}", self.task)
        if self.task != "binary" and len(self.classes) < 2:
            raise bad(f"at least two class names for a {self.task} task", self.classes)
        if self.task == "binary" and self.classes and len(self.classes) != 2:
            raise bad("two class names (label 0, label 1) or none for a binary task", self.classes)
        if len(set(self.classes)) != len(self.classes) or any(not c or c != c.strip() for c in self.classes):
            raise bad("distinct, non-empty class names without surrounding spaces (labels are stripped)", self.classes)
        for name in (self.metric, *self.extra_metrics):
            if self.task not in get_metric(name).tasks:  # get_metric names the known ones
                raise bad(f"a metric for {self.task} tasks for {name!r}", get_metric(name).tasks)
        if self.tta not in TTA_VIEWS:
            raise bad(f"tta one of {', '.join(TTA_VIEWS)}", self.tta)
        if self.submission not in SUBMISSION_FORMATS:
            raise bad(f"submission one of {', '.join(SUBMISSION_FORMATS)}", self.submission)
        fits = {"probability": ("binary",), "class_name": ("binary", "multiclass"), "labels": ("multilabel",)}
        if self.task not in fits.get(self.submission, TASKS):
            raise bad(f"a submission format for {self.task} tasks (not {self.submission!r})", self.submission)
        if self.class_columns and len(self.class_columns) != self.n_outputs:
            raise bad(f"{self.n_outputs} class_columns (one per output)", self.class_columns)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of the labels: ``classes``, or ("0", "1") for a binary adapter without names."""
        return tuple(self.classes) or ("0", "1")

    def check_rank_average(self, where: str) -> None:
        """Raise KitError unless per-column rank averaging keeps this adapter's score and submission meaningful: a
        metric of column orders only (AUCs) and a submission of probabilities (ranks thresholded at 0.5 would label
        about half of every column positive).

        Example:
            >>> get_adapter("plant-seedlings").check_rank_average("--method rank")  # doctest: +SKIP
            Traceback (most recent call last):
            kit.errors.KitError: expected a rank-based metric ... got micro_f1 ...
        """
        metric = get_metric(self.metric)
        if not metric.column_ranks_suffice or self.submission not in ("probability", "class_probs"):
            raise KitError(
                f"expected a metric of probability orders (roc_auc, auc_macro_ovr, mean_column_auc) and a "
                f"probability submission for {where}, got {metric.name} and {self.submission!r} for {self.name}: "
                "ranks are not probabilities, so thresholds, argmax and log loss would read them wrong. "
                "Fix: average probabilities (--method mean, predict.fold_average=mean)."
            )

    @property
    def n_outputs(self) -> int:
        """Model outputs: 1 for binary (the positive class's probability), else one per class."""
        return 1 if self.task == "binary" else len(self.classes)

    def encode_label(self, text: str):
        """A label as written in the raw files -> the stored value, or raise ValueError saying why.

        Binary: 0/1 (or a class name); multiclass: the class index (from a name or an index); multilabel: a
        multi-hot uint8 vector from space-separated names (or indices).

        Example:
            >>> Adapter.encode_label(get_adapter("plant-seedlings"), "Maize")  # doctest: +SKIP
            7
        """
        text = str(text).strip()
        names = self.class_names
        if self.task == "multilabel":
            hot = np.zeros(len(names), np.uint8)
            for part in text.split():
                hot[self._class_index(part, names)] = 1
            return hot
        index = self._class_index(text, names)
        return index

    @staticmethod
    def _class_index(text: str, names) -> int:
        if text in names:
            return names.index(text)
        # Indices stand in for names only when no name is itself a number: with grades named "1".."3" a label
        # "0" must not silently become the first grade.
        numeric_names = any(n.isdigit() for n in names) and tuple(names) != ("0", "1")
        if text.isdigit() and int(text) < len(names) and not numeric_names:
            return int(text)
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        also = "" if numeric_names else f" nor an index 0..{len(names) - 1}"
        raise ValueError(f"label {text!r} is not one of the classes ({shown}){also}")

    def split_dirs(self, split: str) -> tuple[str, ...]:
        """The split's image folders, searched in order (one for most adapters)."""
        folders = self.train_dir if split == "train" else self.test_dir
        return (folders,) if isinstance(folders, str) else tuple(folders)

    def split_dir(self, split: str) -> str:
        """The split's (first) image folder."""
        return self.split_dirs(split)[0]

    def _fallback_test(self, raw: Path) -> bool:
        """True when the test split is the labelled images: ``optional_test`` and no test table or folder."""
        return self.optional_test and not self.table_path(raw, "test").is_file()

    def table_path(self, raw: Path, split: str) -> Path:
        return Path(raw) / (self.labels_csv if split == "train" else self.sample_submission_csv)

    def image_spec(self, size: int | None = None) -> ImageSpec:
        """How to decode this adapter's files; ``size`` overrides the stored side for resizing adapters."""
        shape = tuple(self.image_shape)
        if size:
            if self.fit == "exact":
                raise KitError(
                    f"{self.name} images are stored as they are ({shape[0]}x{shape[1]}); got --size "
                    f"{size}. Fix: drop --size (crop or resize in the model: model.crop / model.resize)."
                )
            shape = (int(size), int(size), shape[2])
        return ImageSpec(shape, self.image_format, self.fit)

    def list_split(self, raw: Path, split: str) -> Listing:
        """The split's rows from its table, and the files in its folder that no row names."""
        if split == "test" and self._fallback_test(raw):
            return _labelled_as_test(self.list_split(raw, "train"))  # a dataset without a test split
        path = self.table_path(raw, split)
        table = _read_table(path, self, split)
        ids = table[self.id_column].str.strip()
        names, problems = self._file_names(ids)
        rows, strays, skipped = self._rows_for_names(raw, split, ids, names, path.name)
        if problems is not None:
            rows["problem"] = problems
        if split == "train":
            rows["label"] = table[self.label_column]
            if self.group_column:
                rows["group"] = table[self.group_column].str.strip()
        return Listing(rows, strays, skipped)

    def _rows_for_names(self, raw: Path, split: str, ids: pd.Series, names: pd.Series, table_name: str):
        """Rows (id, path, exists, where) for the files ``names`` (in table order, searched in every folder of the
        split), the strays (files no row names) and the skipped (excluded) files."""
        found, strays, skipped = _scan_folders(raw, self.split_dirs(split), self)
        first = f"{Path(raw) / self.split_dir(split)}{os.sep}"
        # plain strings: pathlib per row costs seconds on 220k rows
        prefixes = names.map(found).fillna(first) if len(self.split_dirs(split)) > 1 else first
        rows = pd.DataFrame(
            {
                "id": ids,
                "path": prefixes + names,
                "exists": names.isin(found),
                "where": [f"{table_name} line {n}" for n in range(2, len(ids) + 2)],
            }
        )
        named = set(names)
        strays += [
            (f"{folder}{name}", f"file has no row in {table_name}")
            for name, folder in sorted(found.items())
            if name not in named
        ]
        return rows, strays, skipped

    def _file_names(self, ids: pd.Series) -> tuple[pd.Series, list[str] | None]:
        """Each id's file name, and (for ``{n}`` stems) why an id names no file ("" when it does)."""
        if self.file_stem == "{id}":
            return ids + self.image_suffix, None
        names, problems = [], []
        for image_id in ids.tolist():
            try:
                number = int(image_id) if "{n" in self.file_stem else None
            except ValueError:
                names.append("")
                problems.append(f"expected an integer id (files are named {self.file_stem!r}), got {image_id!r}")
                continue
            names.append(self.file_stem.format(id=image_id, n=number) + self.image_suffix)
            problems.append("")
        return pd.Series(names, index=ids.index, dtype=str), problems


def _labelled_as_test(train: Listing) -> Listing:
    """The labelled images as the test split (``optional_test``): the rows that can be read, without labels; the
    train split already reports the rest (bad rows, strays, skipped files)."""
    rows = train.rows
    usable = rows["exists"] & (rows["problem"] == "" if "problem" in rows else True) & (rows["id"] != "")
    rows = rows[usable].drop(columns=[c for c in ("label", "group", "problem") if c in rows])
    rows = rows.drop_duplicates("id").reset_index(drop=True)
    return Listing(rows, [], [])


def _excluded(name: str, patterns: tuple[str, ...]) -> str | None:
    """The first pattern ``name`` matches, or None."""
    return next((p for p in patterns if fnmatch.fnmatchcase(name, p)), None)


def _skip_reason(adapter: Adapter, name: str, pattern: str, images: dict[str, str]) -> str:
    """Why an excluded file is not ingested, naming the image it lies beside when one's stem starts its stem
    (``benign (1)_mask_1.png`` belongs to ``benign (1).png``); ``images`` maps stems to file names."""
    stem = os.path.splitext(name)[0]
    owner = next((images[stem[:cut]] for cut in range(len(stem) - 1, 0, -1) if stem[:cut] in images), None)
    what = f"{adapter.exclude_reason} of {owner!r}" if owner else adapter.exclude_reason
    return f"{what}, not an image to classify (exclude pattern {pattern!r}); not ingested"


def _scan_folders(raw: Path, folders: tuple[str, ...], adapter: Adapter):
    """Files (not folders) of ``folders``, in order: ({name: folder path + os.sep} for the first copy of each
    name, strays (later copies of a name), skipped (files matching ``adapter.exclude``))."""
    found: dict[str, str] = {}
    strays, skipped = [], []
    for relative in folders:
        folder = Path(raw) / relative
        prefix = f"{folder}{os.sep}"
        names = _list_folder(folder)
        excluded = {n: p for n in names if (p := _excluded(n, adapter.exclude))} if adapter.exclude else {}
        if excluded:
            images = {os.path.splitext(n)[0]: n for n in names if n not in excluded}
            skipped += [(prefix + n, _skip_reason(adapter, n, p, images)) for n, p in sorted(excluded.items())]
        for name in sorted(names - set(excluded)) if excluded else names:
            if name in found:
                strays.append((prefix + name, f"a second copy of {found[name]}{name}; that one is read"))
            else:
                found[name] = prefix
    return found, strays, skipped


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
                return _labelled_as_test(self.list_split(raw, "train"))  # a dataset without a test split
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
                    if pattern := _excluded(entry.name, self.exclude):
                        skipped.append((entry.path, _skip_reason(self, entry.name, pattern, {})))
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
            images = {os.path.splitext(e.name)[0]: e.name for e in files if not _excluded(e.name, self.exclude)}
        for entry in entries:
            if files_only and entry.is_dir():
                continue
            stem, suffix = os.path.splitext(entry.name)
            pattern = None if entry.is_dir() else _excluded(entry.name, self.exclude)
            if pattern:
                skipped.append((entry.path, _skip_reason(self, entry.name, pattern, images)))
            elif entry.is_dir() or suffix.lower() not in self.suffixes:
                strays.append((entry.path, f"not an image file (expected {', '.join(self.suffixes)})"))
            else:
                image_id = entry.name if self.id_is_file_name else stem
                records.append((image_id, entry.path, True, f"{prefix}{entry.name}", label))

    def _list_from_table(self, raw: Path, split: str, path: Path) -> Listing:
        """The test split in the order of its table: each id names its file in the test folder(s)."""
        table = _read_table(path, self, split)
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


def _read_table(path: Path, adapter: Adapter, split: str) -> pd.DataFrame:
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


def _list_folder(folder: Path) -> set[str]:
    try:
        with os.scandir(folder) as entries:
            return {e.name for e in entries if not e.is_dir()}
    except FileNotFoundError:
        raise KitError(f"expected the image folder {folder}, found nothing. Fix: check --raw.") from None
