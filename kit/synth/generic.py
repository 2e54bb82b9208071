"""A synthetic dataset for any adapter, in its layout: the writer declarative (TOML) adapters use, and the
multi-class twins build on.

``write_dataset`` writes train and test images plus the tables an adapter reads, for both layouts (a label table
plus image folders, one folder per class), any number of classes, several image folders, integer or text ids,
ids with their suffix, grouped rows and the optional test split of a Kaggle dataset. ``draw_class_signal`` is the
default drawing: noise with one filled shape whose colour (or grey level) and form depend on the class, so a tiny
CNN can learn it. A multilabel adapter gets 1 to 3 labels per image (every class present in train), one shape per
label (``draw_label_signals``), and its label column holds the class names space-separated in class order
("cat dog"). The hidden test labels go to ``synth_test_labels.csv`` (class names; 0/1 for binary; multilabel:
space-separated class names, as in the train table).

Example:
    >>> from kit.synth.generic import synthesize_generic
    >>> synthesize_generic(adapter, "/tmp/demo", n_train=40, n_test=8, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from kit.adapters.base import Adapter
from kit.adapters.folder_per_class import FolderPerClassAdapter
from kit.synth.layout import SYNTH_TEST_LABELS, _check_counts, _write_csv, encode_image

__all__ = [
    "write_dataset",
    "synthesize_generic",
    "draw_class_signal",
    "draw_label_signals",
    "class_colour",
    "Written",
]

Written = dict[str, list[tuple[str, Path, int | tuple[int, ...]]]]  # split -> (id, file, label) per image
# the label: the class index; for a multilabel adapter the tuple of its classes' indices
Ids = Callable[[np.random.Generator, np.ndarray, str], list[str]]


def class_colour(label: int, n_classes: int) -> tuple[int, int, int]:
    """A saturated RGB colour per class, evenly spaced in hue."""
    hue = int(180 * label / max(n_classes, 1)) % 180
    bgr = cv2.cvtColor(np.array([[[hue, 230, 230]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[2]), int(bgr[1]), int(bgr[0])


def draw_class_signal(
    rng: np.random.Generator, labels: np.ndarray, shape: tuple[int, int, int], n_classes: int, vary: bool = True
) -> list[np.ndarray]:
    """Noisy images of about ``shape`` (sizes vary when ``vary``) with one filled shape per image: its colour (RGB)
    or grey level (C=1) and its form (disc, square, triangle) are set by the class; position and size are random.
    """
    out = []
    for label in np.asarray(labels).astype(int):
        scale = rng.uniform(1.0, 1.4) if vary else 1.0  # never below the stored side: JPEG readers shrink
        h, w = max(16, int(shape[0] * scale)), max(16, int(shape[1] * scale * (rng.uniform(0.8, 1.25) if vary else 1)))
        image = np.clip(rng.normal(110, 18, (h, w, 3)), 0, 255).astype(np.uint8)
        colour = _class_colour_or_grey(int(label), n_classes, shape[2])
        r = int(min(h, w) * rng.uniform(0.18, 0.3))
        cx, cy = int(rng.integers(r, w - r)), int(rng.integers(r, h - r))
        _fill_shape(image, label % 3, cx, cy, r, colour)
        out.append(image[:, :, 0] if shape[2] == 1 else image)
    return out


def _class_colour_or_grey(label: int, n_classes: int, channels: int) -> tuple[int, int, int]:
    if channels == 1:
        level = 40 + int(200 * label / max(n_classes - 1, 1))
        return level, level, level
    return class_colour(label, n_classes)


def _fill_shape(image: np.ndarray, form: int, cx: int, cy: int, r: int, colour) -> None:
    if form == 0:
        cv2.circle(image, (cx, cy), r, colour, -1)
    elif form == 1:
        cv2.rectangle(image, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
    else:
        points = np.array([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], np.int32)
        cv2.fillPoly(image, [points], colour)


def draw_label_signals(
    rng: np.random.Generator, hot: np.ndarray, shape: tuple[int, int, int], n_classes: int, vary: bool = True
) -> list[np.ndarray]:
    """Noisy images of about ``shape`` for multi-hot rows ``hot`` (N, C): one filled shape per positive label, each
    in its own cell of a 2 x 2 grid (so shapes never overlap; at most 4 labels per image), coloured and formed by
    its class as in ``draw_class_signal``.
    """
    out = []
    for row in np.asarray(hot):
        positives = np.flatnonzero(row)
        if len(positives) > 4:
            raise ValueError(f"expected at most 4 labels per image to draw, got {len(positives)}")
        scale = rng.uniform(1.0, 1.4) if vary else 1.0  # never below the stored side: JPEG readers shrink
        h, w = max(16, int(shape[0] * scale)), max(16, int(shape[1] * scale * (rng.uniform(0.8, 1.25) if vary else 1)))
        image = np.clip(rng.normal(110, 18, (h, w, 3)), 0, 255).astype(np.uint8)
        cells = rng.permutation(4)[: len(positives)]
        for label, cell in zip(positives.tolist(), cells.tolist()):
            top, left = (cell // 2) * (h // 2), (cell % 2) * (w // 2)
            ch, cw = h // 2, w // 2
            r = max(2, int(min(ch, cw) * rng.uniform(0.3, 0.42)))
            cx, cy = left + int(rng.integers(r, max(r + 1, cw - r))), top + int(rng.integers(r, max(r + 1, ch - r)))
            _fill_shape(image, label % 3, cx, cy, r, _class_colour_or_grey(label, n_classes, shape[2]))
        out.append(image[:, :, 0] if shape[2] == 1 else image)
    return out


def _default_ids(adapter: Adapter) -> Ids:
    counter = {"next": 0}

    def ids(rng: np.random.Generator, labels: np.ndarray, split: str) -> list[str]:
        start = counter["next"]
        counter["next"] += len(labels)
        if "{n" in adapter.file_stem:
            return [str(k) for k in range(start, start + len(labels))]
        return [f"{rng.bytes(5).hex()}{k:04d}" for k in range(start, start + len(labels))]

    return ids


def _labels(rng: np.random.Generator, n: int, n_classes: int) -> np.ndarray:
    """Class indices, every class present first (as far as n allows), then uniform."""
    labels = rng.integers(0, n_classes, n)
    labels[: min(n, n_classes)] = np.arange(min(n, n_classes))
    return labels


def _multi_labels(rng: np.random.Generator, n: int, n_classes: int) -> np.ndarray:
    """Multi-hot rows (N, C) uint8 with 1 to 3 labels each (at most C); row k < C holds class k, so every class is
    present as far as n allows."""
    most = min(3, n_classes)
    counts = rng.integers(1, most + 1, n)
    hot = np.zeros((n, n_classes), np.uint8)
    for k, count in enumerate(counts.tolist()):
        if k < n_classes:
            others = rng.permutation([c for c in range(n_classes) if c != k])[: count - 1]
            hot[k, [k, *others.tolist()]] = 1
        else:
            hot[k, rng.permutation(n_classes)[:count]] = 1
    return hot


def _written_label(adapter: Adapter, label) -> str:
    if adapter.task == "multilabel":  # a tuple of class indices -> names, space-separated in class order
        return " ".join(adapter.class_names[c] for c in sorted(label))
    return str(label) if adapter.task == "binary" else adapter.class_names[label]


def write_dataset(
    adapter: Adapter,
    raw,
    n_train: int,
    n_test: int,
    seed: int,
    draw: Callable[[np.random.Generator, np.ndarray], list[np.ndarray]] | None = None,
    ids: Ids | None = None,
    groups: Callable[[np.random.Generator, int], list[str]] | None = None,
    suffix: str | None = None,
) -> Written:
    """Write ``n_train`` labelled and ``n_test`` test images in ``adapter``'s layout under ``raw``.

    ``draw(rng, labels)`` draws images for class indices, or for a multilabel adapter multi-hot rows (N, C) (default
    ``draw_class_signal``; multilabel ``draw_label_signals``); ``ids(rng, labels,
    split)`` names them (default: short hex ids, or integers for ``{n}`` file stems); ``groups(rng, n)`` gives the
    ``group_column`` values. Images go round-robin into the split's folders. A test table is written when the
    adapter names one (for a folder-per-class adapter: ``sample_submission_csv``), in a shuffled order, so a
    reader that sorts instead of following it is caught. Returns what was written, per split.
    """
    _check_counts(n_train, n_test)
    raw, rng = Path(raw), np.random.default_rng(seed)
    names = adapter.class_names
    multilabel = adapter.task == "multilabel"
    default_draw = draw_label_signals if multilabel else draw_class_signal
    draw = draw or (lambda r, labels: default_draw(r, labels, adapter.image_shape, len(names)))
    ids = ids or _default_ids(adapter)
    folder_layout = isinstance(adapter, FolderPerClassAdapter)
    suffix = suffix or (adapter.suffixes[0] if folder_layout else adapter.image_suffix)
    written: Written = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = _multi_labels(rng, n, len(names)) if multilabel else _labels(rng, n, len(names))
        stems = ids(rng, labels, split)
        folders = adapter.split_dirs(split)
        rows = []
        for k, (stem, label, image) in enumerate(zip(stems, labels, draw(rng, labels))):
            folder = raw / folders[k % len(folders)]
            if folder_layout:
                file = folder / names[label] / f"{stem}{suffix}" if split == "train" else folder / f"{stem}{suffix}"
                image_id = file.name if adapter.id_is_file_name else stem
            else:
                file = folder / (
                    adapter.file_stem.format(id=stem, n=int(stem) if "{n" in adapter.file_stem else 0) + suffix
                )
                image_id = stem
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(encode_image(image, suffix))
            rows.append((image_id, file, tuple(np.flatnonzero(label).tolist()) if multilabel else int(label)))
        written[split] = rows
    sep = adapter.csv_sep or ","
    train, test = written["train"], written["test"]
    if not folder_layout:
        extra = {adapter.group_column: groups(rng, len(train))} if groups and adapter.group_column else {}
        if adapter.group_column and not extra:
            extra = {adapter.group_column: [f"g{k // 3:05d}" for k in range(len(train))]}
        labels = [_written_label(adapter, label) for _, _, label in train]
        _write_csv(
            raw / adapter.labels_csv,
            sep,
            adapter.id_column,
            [i for i, _, _ in train],
            {adapter.label_column: labels, **extra},
        )
    if adapter.sample_submission_csv:
        order = [test[k] for k in rng.permutation(len(test))]
        if adapter.submission == "class_probs":
            columns = {c: [0.0] * len(order) for c in (adapter.class_columns or names)}
        else:
            columns = {adapter.label_column: [_written_label(adapter, (0,) if multilabel else 0)] * len(order)}
        _write_csv(raw / adapter.sample_submission_csv, sep, adapter.id_column, [i for i, _, _ in order], columns)
    _write_csv(
        raw / SYNTH_TEST_LABELS,
        ",",
        "id",
        [i for i, _, _ in test],
        {"label": [_written_label(adapter, label) for _, _, label in test]},
    )
    return written


def synthesize_generic(adapter: Adapter, raw: Path, n_train: int, n_test: int, seed: int) -> None:
    """``Adapter.synthesize`` for any adapter (declarative ones use it): ``write_dataset`` with the default
    drawing."""
    write_dataset(adapter, raw, n_train, n_test, seed)
