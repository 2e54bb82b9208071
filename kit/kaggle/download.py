"""Fetch a competition's files from Kaggle: download the archive, unpack it, check the layout the adapter expects.

Example:
    >>> from kit.kaggle.download import download_competition
    >>> download_competition("pcam")  # doctest: +SKIP
    PosixPath('data/pcam/raw')
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

from kit import paths
from kit.adapters.registry import get_adapter
from kit.errors import KitError
from kit.kaggle.client import Kaggle, competition_slug

__all__ = ["download_competition", "unpack", "verify_layout", "MARKER"]

MARKER = ".kit-download.json"  # written into the raw folder once its files are verified


def verify_layout(adapter, raw) -> dict:
    """Check ``raw`` holds the competition's files as Kaggle ships them; returns ``{"train": n, "test": m}``.

    Raises:
        KitError: naming each missing table, folder or image (the first few and a count).

    Example:
        >>> verify_layout(get_adapter("pcam"), "data/pcam/raw")  # doctest: +SKIP
        {'train': 220025, 'test': 57458}
    """
    raw, counts, problems = Path(raw), {}, []
    for split in ("train", "test"):
        try:
            rows = adapter.list_split(raw, split).rows
        except KitError as e:  # a missing or unreadable table or folder
            problems.append(str(e).split(" Fix:")[0])
            continue
        missing = rows.loc[~rows["exists"], "id"].tolist()
        if missing:
            problems.append(
                f"{len(missing)} of {len(rows)} {split} images are missing from "
                f"{raw / adapter.split_dir(split)} (e.g. {', '.join(missing[:3])})"
            )
        counts[split] = len(rows)
    if problems:
        raise KitError(
            f"expected the Kaggle layout of {adapter.slug} in {raw}, but "
            + "; ".join(problems)
            + f". Fix: rerun `kit download {adapter.name}` (it resumes; --force starts over)."
        )
    return counts


def unpack(archive, raw, progress: bool = True) -> None:
    """Extract ``archive`` into ``raw`` file by file (each written aside, then renamed); files already there are kept.

    Raises:
        KitError: when a member would land outside ``raw``.
        zipfile.BadZipFile: when the archive is damaged.

    Example:
        >>> unpack("data/pcam/histopathologic-cancer-detection.zip", "data/pcam/raw")  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    archive, raw = Path(archive), Path(raw)
    root = raw.resolve()
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        made = set()
        # disable=None: a bar on a terminal, nothing in a log file
        for member in tqdm(members, desc=f"unpack {archive.name}", unit="file", disable=None if progress else True):
            target = (raw / member.filename).resolve()
            if root not in target.parents:
                raise KitError(
                    f"expected archive members inside {raw}, got {member.filename!r}. Fix: check the "
                    f"archive {archive}; it does not come from Kaggle as downloaded."
                )
            if target.is_file() and target.stat().st_size == member.file_size:
                continue  # extracted by an earlier, interrupted unpack
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            part = target.with_name(f".{target.name}.part")
            with zf.open(member) as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            os.replace(part, target)


def _verify_and_mark(adapter, raw: Path) -> dict:
    """`verify_layout`, then write ``MARKER`` (the slug and the counts) into ``raw``; returns the counts."""
    counts = verify_layout(adapter, raw)
    (raw / MARKER).write_text(json.dumps({"slug": adapter.slug, **counts}) + "\n")
    return counts


def _already_complete(adapter, raw: Path) -> bool:
    """True (and says so) when ``raw`` was verified before or holds a complete layout; needs no network."""
    marker = raw / MARKER
    if marker.is_file() and all(adapter.table_path(raw, s).is_file() for s in ("train", "test")):
        print(f"{raw}: already downloaded and verified ({marker.name}); nothing to do (--force to fetch again)")
        return True
    try:
        counts = _verify_and_mark(adapter, raw)
    except KitError:
        return False
    print(f"{raw}: already complete ({counts['train']} train, {counts['test']} test); nothing to download")
    return True


def download_competition(
    name: str, raw=None, *, force: bool = False, keep_zip: bool = False, kaggle=None, progress: bool = True
) -> Path:
    """Fetch competition ``name`` into ``raw`` (default ``data/<name>/raw``), unpack, verify; skip when complete.

    The archive lands next to ``raw``; an interrupted download resumes (the client's Range requests) or restarts,
    an interrupted unpack continues where it stopped. The archive is deleted once verified unless ``keep_zip``.

    Args:
        name: kit competition name (an adapter).
        raw: folder for the files.
        force: download again even when the folder is complete.
        keep_zip: keep the archive after unpacking.
        kaggle: the `Kaggle` client to use (default: a new one).
        progress: show the unpack progress bar.

    Example:
        >>> download_competition("pcam")  # doctest: +SKIP
        PosixPath('data/pcam/raw')
    """
    adapter = get_adapter(name)
    raw = Path(raw) if raw is not None else paths.default_raw(name)
    slug = competition_slug(adapter, "download", f"Fix: `kaggle datasets download -d {adapter.slug} --unzip -p {raw}`.")
    if not force and _already_complete(adapter, raw):
        return raw
    archive = (kaggle or Kaggle()).download(slug, raw.parent, force=force)
    try:
        unpack(archive, raw, progress)
    except zipfile.BadZipFile as e:
        archive.unlink(missing_ok=True)
        raise KitError(
            f"expected a zip archive at {archive}, got a damaged file ({e}); it was deleted. "
            f"Fix: rerun `kit download {name}` to fetch it again."
        ) from e
    counts = _verify_and_mark(adapter, raw)
    if not keep_zip:
        archive.unlink(missing_ok=True)
    print(f"downloaded {slug} to {raw}: {counts['train']} train and {counts['test']} test images verified")
    return raw
