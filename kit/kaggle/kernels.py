"""Ship kit to Kaggle: the source as a Kaggle dataset, plus a driver script (a Kaggle kernel) that runs the whole
pipeline offline on Kaggle's GPU with ``kit.notebook.run``.

``build_kernel`` writes (default ``build/kernel``)::

    dataset/kit_src.zip             kit/ and competitions/ sources; Python imports straight from the zip
    dataset/dataset-metadata.json   id <user>/kit-bundle (private)
    notebook/kit_<competition>.py   the driver: bundle on sys.path, then kit.notebook.run(...)
    notebook/kernel-metadata.json   id <user>/kit-<competition>: GPU on, internet off, sources = bundle + competition

``push_kernel`` uploads the bundle (a new version, or a new dataset the first time) and pushes the kernel, both
through the official client with kit's retries. Kaggle unpacks uploaded zips into folders, so the driver puts
whichever of ``kit_src.zip`` / ``kit_src/`` it finds on ``sys.path``.

Example:
    >>> bundle = build_kernel("pcam", user="me", max_minutes=540)  # doctest: +SKIP
    >>> push_kernel(bundle.root)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path

from kit.adapters.registry import get_adapter
from kit.config import identity_hash, resolve_config
from kit.errors import KitError
from kit.files import write_json

__all__ = [
    "KernelBundle",
    "build_kernel",
    "push_kernel",
    "push_bundle",
    "push_notebook",
    "attach_previous",
    "DRIVER_TEMPLATE",
    "FOLD_DRIVER_TEMPLATE",
]

_PACKAGES = ("kit", "competitions")
PLACEHOLDER = "your-kaggle-username"
_SOURCE_ROOT = Path(__file__).resolve().parents[2]

DRIVER_TEMPLATE = '''\
"""kit on Kaggle: {competition} -> {run_name} run -> /kaggle/working/submission.csv (written by `kit kernel build`)."""
import glob, os, sys

ROOT = os.environ.get("KIT_KAGGLE_ROOT", "/kaggle")
sys.path[:0] = sorted(glob.glob(f"{{ROOT}}/input/{bundle}/kit_src*"))  # the zip, or the folder Kaggle unpacked it to
import kit.notebook

if __name__ == "__main__":  # ingest workers re-import this file when processes are spawned
    import kit.kaggle.fold_kernels  # the previous version's run folder, when attached (`kit kernel push --resume`)

    kit.kaggle.fold_kernels.restore_run({kernel_slug!r}, {competition!r}, {run_name!r})
    kit.notebook.run({competition!r}, max_minutes={max_minutes!r}, overrides={overrides!r}, run_name={run_name!r})
'''

FOLD_DRIVER_TEMPLATE = '''\
"""kit on Kaggle: {competition}, folds {folds} of config {config_hash} -> /kaggle/working/runs/{competition}/{run_name}
(written by `kit kernel build --folds`; `kit kernel pull` merges the fold groups' run folders)."""
import glob, os, sys

ROOT = os.environ.get("KIT_KAGGLE_ROOT", "/kaggle")
sys.path[:0] = sorted(glob.glob(f"{{ROOT}}/input/{bundle}/kit_src*"))  # the zip, or the folder Kaggle unpacked it to
import kit.kaggle.fold_kernels

CONFIG_HASH = {config_hash!r}  # kit.config.identity_hash of the resolved config: the same in every group

if __name__ == "__main__":  # ingest workers re-import this file when processes are spawned
    kit.kaggle.fold_kernels.restore_run({kernel_slug!r}, {competition!r}, {run_name!r})
    kit.kaggle.fold_kernels.run_fold_group(
        {competition!r}, folds={folds!r}, max_minutes={max_minutes!r}, overrides={overrides!r},
        run_name={run_name!r}, expected_hash=CONFIG_HASH,
    )
'''


@dataclasses.dataclass(frozen=True)
class KernelBundle:
    """What `build_kernel` wrote: the bundle folder, its two halves, and the Kaggle ids they will get.

    Example:
        >>> build_kernel("pcam", user="me").kernel_id  # doctest: +SKIP
        'me/kit-pcam'
    """

    root: Path
    dataset_dir: Path
    notebook_dir: Path
    dataset_id: str
    kernel_id: str


def _username(user: str | None) -> str:
    if user:
        return user
    if os.environ.get("KAGGLE_USERNAME"):
        return os.environ["KAGGLE_USERNAME"]
    from kit.kaggle.credentials import config_dir

    try:
        name = json.loads((config_dir() / "kaggle.json").read_text()).get("username")
    except (OSError, ValueError, AttributeError):
        name = None
    if not name:
        print(
            f"warning: no Kaggle username (--user, KAGGLE_USERNAME or kaggle.json): the ids say {PLACEHOLDER}; "
            "rebuild with --user before `kit kernel push`."
        )
    return name or PLACEHOLDER


def _zip_sources(target: Path) -> int:
    """Zip the .py files of kit/ and competitions/ (no caches, no tests); returns how many."""
    count = 0
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in _PACKAGES:
            for path in sorted((_SOURCE_ROOT / package).rglob("*.py")):
                zf.write(path, path.relative_to(_SOURCE_ROOT).as_posix())
                count += 1
    return count


def build_kernel(
    competition: str,
    out="build/kernel",
    user: str | None = None,
    max_minutes: float | None = 540,
    overrides=(),
    bundle: str = "kit-bundle",
    gpu: bool = True,
    run_name: str = "kernel",
    folds: list[int] | None = None,
    slug: str | None = None,
    notebook: str = "notebook",
    resume: bool = False,
) -> KernelBundle:
    """Write the dataset bundle and the kernel (see the module docstring); returns where they are.

    With ``folds`` the driver trains only those folds (``kit.kaggle.fold_kernels.run_fold_group``) into
    ``runs/<competition>/<run_name>``, in the kernel ``slug`` written to ``root/<notebook>``; ``resume`` attaches
    the kernel's previous version (its output) so the driver continues its run folder.
    """
    adapter = get_adapter(competition)
    if adapter.kind != "competition":
        raise KitError(
            f"{competition} is a Kaggle dataset ({adapter.slug}), not a competition; a kernel here "
            "attaches a competition. Fix: run kit.notebook.run in a notebook with the dataset attached."
        )
    cfg = resolve_config(competition, overrides=list(overrides))  # a typo fails here, not hours later on Kaggle
    user = _username(user)
    root = Path(out)
    dataset_dir, notebook_dir = root / "dataset", root / notebook
    for folder in (dataset_dir, notebook_dir):
        folder.mkdir(parents=True, exist_ok=True)
    if _zip_sources(dataset_dir / "kit_src.zip") == 0:
        raise KitError(f"found no kit sources under {_SOURCE_ROOT}. Fix: build from a kit checkout.")
    dataset_id, kernel_slug = f"{user}/{bundle}", slug or f"kit-{competition}"
    write_json(
        dataset_dir / "dataset-metadata.json",
        {
            "id": dataset_id,
            "title": "kit bundle (source)",
            "licenses": [{"name": "other"}],
            "description": "kit sources: put kit_src.zip (or the kit_src folder) on sys.path.",
        },
    )
    code_file = f"kit_{competition.replace('-', '_')}.py"
    fields = dict(
        competition=competition,
        bundle=bundle,
        max_minutes=max_minutes,
        overrides=list(overrides),
        run_name=run_name,
        kernel_slug=kernel_slug,
    )
    if folds is None:
        driver = DRIVER_TEMPLATE.format(**fields)
    else:
        driver = FOLD_DRIVER_TEMPLATE.format(**fields, folds=list(folds), config_hash=identity_hash(cfg))
    (notebook_dir / code_file).write_text(driver)
    kernel_id = f"{user}/{kernel_slug}"
    write_json(
        notebook_dir / "kernel-metadata.json",
        {
            "id": kernel_id,
            "title": kernel_slug if folds is not None else f"kit {competition}",  # title -> slug on Kaggle
            "code_file": code_file,
            "language": "python",
            "kernel_type": "script",
            "is_private": True,
            "enable_gpu": gpu,
            "enable_tpu": False,
            "enable_internet": False,
            "dataset_sources": [dataset_id],
            "competition_sources": [adapter.slug],
            "kernel_sources": [kernel_id] if resume else [],  # the previous version's output, read to resume
            "model_sources": [],
        },
    )
    return KernelBundle(root, dataset_dir, notebook_dir, dataset_id, kernel_id)


def push_kernel(folder="build/kernel", notes: str = "kit bundle", kaggle=None, resume: bool = False) -> dict:
    """Upload ``folder``'s bundle (new version, or new private dataset) and push its kernel; returns the refs.

    ``resume`` first attaches the kernel's previous version (`attach_previous`), so the driver continues its run.
    """
    from kit.kaggle.client import Kaggle

    root = Path(folder)
    notebook_dir = root / "notebook"
    if not (notebook_dir / "kernel-metadata.json").is_file():
        raise KitError(
            f"expected {notebook_dir / 'kernel-metadata.json'}, found nothing. Fix: run `kit kernel build` "
            "(or `make kernel`) first."
        )
    client = kaggle or Kaggle(quiet=True)
    made = push_bundle(root, notes, client)
    return {**made, **push_notebook(notebook_dir, client, resume=resume)}


def push_bundle(folder, notes: str, client) -> dict:
    """Upload the source bundle in ``folder/dataset`` (a new version, or a new private dataset the first time)."""
    from kit.kaggle.errors import KaggleApiError

    dataset_dir = Path(folder) / "dataset"
    if not (dataset_dir / "dataset-metadata.json").is_file():
        raise KitError(
            f"expected {dataset_dir / 'dataset-metadata.json'}, found nothing. Fix: run `kit kernel build` "
            "(or `make kernel`) first."
        )
    dataset_id = json.loads((dataset_dir / "dataset-metadata.json").read_text())["id"]
    if dataset_id.startswith(f"{PLACEHOLDER}/"):
        raise KitError(
            f"the bundle in {folder} was built without a Kaggle username (ids {dataset_id}). Fix: "
            "`kit kernel build COMPETITION --user YOUR_NAME` (or `make kernel "
            "KERNEL_FLAGS=--user=YOUR_NAME`)."
        )
    try:
        made = client.call(
            f"uploading a new version of {dataset_id}",
            "dataset_create_version",
            str(dataset_dir),
            notes,
            quiet=True,
            dir_mode="zip",
        )
    except KaggleApiError as e:
        if e.kind != "not_found":
            raise
        made = client.call(
            f"creating the dataset {dataset_id}",
            "dataset_create_new",
            str(dataset_dir),
            public=False,
            quiet=True,
            dir_mode="zip",
        )
    _check(made, f"uploading {dataset_id}")
    return {"dataset": dataset_id, "dataset_url": getattr(made, "url", None)}


def attach_previous(notebook_dir) -> str:
    """List the kernel itself in its ``kernel_sources``: the next version reads the previous version's output
    (mounted under /kaggle/input) and continues its run folder. Returns the kernel id."""
    meta_path = Path(notebook_dir) / "kernel-metadata.json"
    meta = json.loads(meta_path.read_text())
    if meta["id"] not in meta.get("kernel_sources", []):
        meta["kernel_sources"] = [*meta.get("kernel_sources", []), meta["id"]]
        write_json(meta_path, meta)
    return meta["id"]


def push_notebook(notebook_dir, client, resume: bool = False) -> dict:
    """Push the kernel in ``notebook_dir`` (a new version; ``resume`` attaches the previous one first)."""
    if resume:
        attach_previous(notebook_dir)
    pushed = client.call("pushing the kernel", "kernels_push", str(notebook_dir))
    _check(pushed, "pushing the kernel")
    return {
        "kernel": getattr(pushed, "ref", None),
        "kernel_url": getattr(pushed, "url", None),
        "version": getattr(pushed, "version_number", None),
    }


def _check(response, what: str) -> None:
    error = getattr(response, "error", None)
    if error:
        raise KitError(
            f"{what}: Kaggle answered {error!r}. Fix: correct the metadata in build/kernel, or the "
            "dataset/kernel id, and push again."
        )
