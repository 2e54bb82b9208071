"""Competition adapters: data describing one competition or dataset.

The engine owns every loop; an adapter only says where files are, what the columns are called, what an image
looks like and how to score. Two layouts are built in: a label table plus image folders (``Adapter``: PCam, ISIC,
head CT, any ``id,label`` table whatever its separator) and one folder per class
(``kit.adapters.folder_per_class.FolderPerClassAdapter``); reading the raw files is ``kit.adapters.raw_files``.
Declarations live in the top-level ``competitions`` package or in any installed package;
``kit.adapters.registry`` finds them.

Example:
    >>> from kit.adapters.registry import get_adapter
    >>> get_adapter("pcam").image_shape
    (96, 96, 3)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from kit.adapters.image_spec import FITS, ImageSpec
from kit.adapters.raw_files import Listing, labelled_as_test, read_table, scan_folders
from kit.errors import KitError
from kit.metrics import TASKS, get_metric, n_outputs

__all__ = ["Adapter", "TTA_VIEWS", "SUBMISSION_FORMATS"]

TTA_VIEWS = ("d4", "hflip", "none")  # label-preserving views an adapter may declare, most to fewest
SUBMISSION_FORMATS = {
    "probability": "id, then the positive class's probability (binary)",
    "class_name": "id, then the predicted class's name (one label per image, e.g. file,species)",
    "class_probs": "id, then one probability column per class (e.g. image,MEL,NV,...)",
    "labels": "id, then the predicted labels, space-separated (multilabel)",
}


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
        return n_outputs(self.task, self.classes)

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
            return labelled_as_test(self.list_split(raw, "train"))  # a dataset without a test split
        path = self.table_path(raw, split)
        table = read_table(path, self, split)
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
        found, strays, skipped = scan_folders(raw, self.split_dirs(split), self)
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
