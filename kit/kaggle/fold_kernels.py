"""Folds in parallel on several Kaggle kernels, and resuming a kernel across versions.

``build_fold_kernels`` writes one kernel per fold group next to the shared source bundle (``kit.kaggle.kernels``)::

    build/kernel/
        dataset/                     the kit source bundle (one dataset, shared)
        notebook-folds-0-1/          kernel <user>/kit-<competition>-<hash>-folds-0-1: trains folds 0 and 1
        notebook-folds-2-3/          ...
        fold_kernels.json            competition, config_hash, run_name, k, kernels [{id, folds, dir}]

Every kernel gets the same resolved configuration; its identity hash (``kit.config.identity_hash``) is in each
kernel's id and title, in each driver, and names the run folder they all train into:
``runs/<competition>/<hash>_<name>``. ``push_fold_kernels`` uploads the bundle once and pushes every kernel,
``kernel_statuses`` asks Kaggle how each run stands, and ``pull_fold_kernels`` downloads each kernel's run folder
and merges the finished folds into one local run folder (``merge_runs``: the parts must share config.toml's identity
and folds.csv). A kernel that failed or timed out is named with the tail of its log; the folds it finished are kept,
the others reported missing. ``kit predict`` and ``kit ensemble`` then work on the merged folder as on a local run.

Resume: a committed kernel starts with an empty /kaggle/working. ``kit kernel push --resume`` lists the kernel
itself in its ``kernel_sources`` (Kaggle mounts the previous version's output under /kaggle/input) and every
driver calls ``restore_run`` first, which copies the previous run folder into /kaggle/working, so unfinished
folds continue from last.keras + state.json and finished folds are skipped. Without an attached output it does
nothing.

Example:
    >>> build_fold_kernels("pcam", ["0,1", "2,3", "4"], user="me")  # doctest: +SKIP
    >>> push_fold_kernels("build/kernel")  # doctest: +SKIP
    >>> pull_fold_kernels("runs/pcam/merged", "build/kernel")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

from kit import paths
from kit.config import identity, identity_hash, resolve_config
from kit.errors import KitError
from kit.files import write_json

__all__ = [
    "MANIFEST",
    "parse_fold_groups",
    "build_fold_kernels",
    "push_fold_kernels",
    "read_manifest",
    "kernel_statuses",
    "pull_fold_kernels",
    "merge_runs",
    "MergeReport",
    "PullReport",
    "restore_run",
    "run_fold_group",
    "log_tail",
]

MANIFEST = "fold_kernels.json"
_FINISHED = ("complete", "error", "cancel_acknowledged")  # a run that will not change any more


def parse_fold_groups(groups, k: int) -> list[list[int]]:
    """``["0,1", "2,3", "4"]`` -> ``[[0, 1], [2, 3], [4]]``, each fold in ``range(k)`` and in one group only."""
    parsed, seen = [], set()
    for text in groups:
        try:
            group = sorted({int(part) for part in str(text).split(",") if part.strip()})
        except ValueError:
            raise KitError(f"expected --folds like 0,1 (fold numbers), got {text!r}. Fix: e.g. --folds 0,1.") from None
        bad = [f for f in group if not 0 <= f < k]
        if not group or bad:
            raise KitError(
                f"expected folds between 0 and {k - 1} (folds.k = {k}), got {text!r}. Fix: name folds of the config."
            )
        twice = seen.intersection(group)
        if twice:
            raise KitError(
                f"expected each fold in one group, got fold {sorted(twice)} twice. Fix: drop it from one --folds."
            )
        seen.update(group)
        parsed.append(group)
    return parsed


def _group_name(group: list[int]) -> str:
    return "folds-" + "-".join(str(f) for f in group)


def build_fold_kernels(
    competition: str,
    groups,
    out="build/kernel",
    user: str | None = None,
    max_minutes: float | None = 540,
    overrides=(),
    bundle: str = "kit-bundle",
    gpu: bool = True,
    resume: bool = False,
) -> dict:
    """Write the bundle and one kernel per fold group (see the module docstring); returns the manifest."""
    from kit.kaggle.kernels import build_kernel

    cfg = resolve_config(competition, overrides=list(overrides))
    parsed = parse_fold_groups(groups, cfg.folds.k)
    digest = identity_hash(cfg)
    run_name = f"{digest}_{cfg.name}"
    kernels = []
    for group in parsed:
        made = build_kernel(
            competition,
            out=out,
            user=user,
            max_minutes=max_minutes,
            overrides=overrides,
            bundle=bundle,
            gpu=gpu,
            run_name=run_name,
            folds=group,
            slug=f"kit-{competition}-{digest}-{_group_name(group)}",
            notebook=f"notebook-{_group_name(group)}",
            resume=resume,
        )
        user = made.kernel_id.split("/")[0]  # asked (or warned about) once
        kernels.append({"id": made.kernel_id, "folds": group, "dir": made.notebook_dir.name})
    manifest = {
        "competition": cfg.competition,
        "config_hash": digest,
        "run_name": run_name,
        "k": cfg.folds.k,
        "kernels": kernels,
    }
    write_json(Path(out) / MANIFEST, manifest)
    return manifest


def read_manifest(out="build/kernel") -> dict:
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise KitError(
            f"expected {path} (written by `kit kernel build COMPETITION --folds ...`), found nothing. Fix: build "
            "or push the fold kernels with --folds, or pass their --dir."
        )
    return json.loads(path.read_text())


def push_fold_kernels(out="build/kernel", notes: str = "kit bundle", kaggle=None, resume: bool = False) -> list[dict]:
    """Upload the bundle once, then push every fold group's kernel (``resume``: attach each one's previous
    version); returns one dict per kernel (dataset, kernel, kernel_url, version, folds)."""
    from kit.kaggle.client import Kaggle
    from kit.kaggle.kernels import push_bundle, push_notebook

    manifest = read_manifest(out)
    client = kaggle or Kaggle(quiet=True)
    made = push_bundle(out, notes, client)
    return [
        {**made, **push_notebook(Path(out) / kernel["dir"], client, resume=resume), "folds": kernel["folds"]}
        for kernel in manifest["kernels"]
    ]


def kernel_statuses(out="build/kernel", kaggle=None) -> list[dict]:
    """Each fold group's kernel as Kaggle reports it: ``[{"id", "folds", "status", "failure"}]``."""
    from kit.kaggle.client import Kaggle

    client = kaggle or Kaggle(quiet=True)
    return [
        {"id": k["id"], "folds": k["folds"], **client.kernel_status(k["id"])} for k in read_manifest(out)["kernels"]
    ]


def log_tail(log: Path | None, lines: int = 20) -> str:
    """The last ``lines`` lines of a kernel log (Kaggle's JSON list of ``{"data": ...}`` or plain text)."""
    if log is None or not Path(log).is_file():
        return "(no log)"
    text = Path(log).read_text(errors="replace")
    try:
        text = "".join(str(entry.get("data", "")) for entry in json.loads(text))
    except (ValueError, AttributeError, TypeError):
        pass
    return "\n".join(text.rstrip().splitlines()[-lines:])


# ---- merging run folders ----
@dataclasses.dataclass
class MergeReport:
    """What `merge_runs` made: the merged folder, its finished folds, the missing ones, and notes."""

    run_dir: Path
    done: list[int]
    missing: list[int]
    notes: list[str] = dataclasses.field(default_factory=list)


def _folds_table(run):
    import pandas as pd

    return pd.read_csv(run.folds_path, dtype=str)


def _check_same(reference, part) -> None:

    want, got = reference.read_config(), part.read_config()
    if identity(want) != identity(got):
        raise KitError(
            f"expected every part trained with config {identity_hash(want)} ({reference.config_path}), got "
            f"{identity_hash(got)} in {part.path}. Fix: merge only the kernels of one `kit kernel push` (the same "
            "--set), or push the missing folds again with that config."
        )
    if not part.folds_path.exists() or not reference.folds_path.exists():
        raise KitError(
            f"expected folds.csv in {reference.path} and {part.path}, found it missing. Fix: pull again once "
            "the kernel has trained (training writes folds.csv first)."
        )
    if not _folds_table(reference).equals(_folds_table(part)):
        raise KitError(
            f"expected the same folds.csv in every part, got a different split in {part.path} than in "
            f"{reference.path}. Fix: train every part on the same store and config (folds.seed, folds.k), "
            "then merge."
        )


def merge_runs(parts, target, store=None) -> MergeReport:
    """Merge the fold folders of run folders ``parts`` into the run folder ``target`` (created, or extended when it
    holds the same run), after checking every part has the same config identity and folds.csv.

    Only finished folds (done.json present) are copied; a fold finished in two parts keeps the first. metrics.json
    is rewritten for the merged folds; with ``store`` (the competition's store here) the run is summarised as
    training does (``kit.train.loop.train`` on the finished folds: oof.csv once every fold is there, plots,
    env.json naming that store), so ``kit predict`` finds it.
    """
    from kit.run import RunFolder, RunMetrics

    parts = [RunFolder(p) for p in parts]
    target = RunFolder(target)
    usable = [p for p in parts if p.config_path.exists()]
    if not usable and not target.config_path.exists():
        raise KitError(
            f"expected at least one trained part with config.toml, got none of {[str(p.path) for p in parts]}. "
            "Fix: wait until a kernel has trained a fold (`kit kernel status`), then pull."
        )
    reference = target if target.config_path.exists() else usable[0]
    for part in usable:
        _check_same(reference, part)
    cfg = reference.read_config()
    notes = [f"{p.path}: no config.toml (the kernel trained nothing), skipped" for p in parts if p not in usable]
    target.path.mkdir(parents=True, exist_ok=True)
    for name in ("config.toml", "folds.csv", "augment.json", "env.json"):
        source = next((p.path / name for p in usable if (p.path / name).exists()), None)
        if source is not None and not (target.path / name).exists():
            shutil.copy2(source, target.path / name)
    for k in range(cfg.folds.k):
        for part in usable:
            if not part.fold(k).is_done():
                continue
            if target.fold(k).is_done():
                if target.fold(k).stamp() != part.fold(k).stamp():
                    notes.append(f"fold {k}: finished in {target.path} and {part.path}; kept the first")
                continue
            if target.fold(k).dir.exists():
                shutil.rmtree(target.fold(k).dir)  # an unfinished copy: the finished one replaces it
            shutil.copytree(part.fold(k).dir, target.fold(k).dir)
    done = [k for k in range(cfg.folds.k) if target.fold(k).is_done()]
    missing = [k for k in range(cfg.folds.k) if k not in done]
    before = next((m for m in (p.read_metrics() for p in [target, *usable]) if m is not None), None)
    metrics = RunMetrics(
        fold_score={k: target.fold(k).read_done().best_score for k in done},
        oof_score=None,
        missing_folds=missing,
        **({} if before is None else {"metric": before.metric, "task": before.task, "classes": before.classes}),
    )
    target.write_metrics(metrics)
    if missing:
        target.oof_path.unlink(missing_ok=True)
    if store is not None and done:
        from kit.train.loop import train

        train(
            cfg.competition,
            store=store,
            config_file=target.config_path,
            folds=",".join(str(k) for k in done),
            run_dir=target.path,
            verbose=0,
        )
    elif not missing:
        notes.append(
            f"every fold is here; oof.csv needs the store: `kit kernel pull {target.path} --store STORE` "
            "(or `kit train` on it) writes it"
        )
    return MergeReport(target.path, done, missing, notes)


@dataclasses.dataclass
class PullReport:
    """What `pull_fold_kernels` did: the merge, and the kernels that did not finish (id, folds, status, log tail)."""

    merge: MergeReport
    failed: list[dict]

    def text(self) -> str:
        lines = [f"merged run: {self.merge.run_dir}  folds done {self.merge.done}, missing {self.merge.missing}"]
        for f in self.failed:
            failure = f" ({f['failure']})" if f.get("failure") else ""
            lines.append(f"kernel {f['id']} (folds {f['folds']}): {f['status']}{failure}; log tail:")
            lines += ["    " + line for line in f["log_tail"].splitlines()]
        lines += [f"note: {n}" for n in self.merge.notes]
        if self.merge.missing:
            lines.append(
                f"folds {self.merge.missing} are missing: `kit predict` uses the finished ones and `kit ensemble "
                "--partial` blends them; push their kernels again with --resume to finish them."
            )
        return "\n".join(lines)


def pull_fold_kernels(run_dir=None, out="build/kernel", store=None, kaggle=None) -> PullReport:
    """Download every fold group's run folder (the kernel output) and merge them into ``run_dir`` (default
    ``runs/<competition>/<hash>_<name>``); see the module docstring."""
    from kit.kaggle.client import Kaggle

    manifest = read_manifest(out)
    client = kaggle or Kaggle(quiet=True)
    competition, run_name = manifest["competition"], manifest["run_name"]
    target = Path(run_dir) if run_dir else paths.runs_dir() / competition / run_name
    target.parent.mkdir(parents=True, exist_ok=True)
    failed, parts = [], []
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-parts-", dir=target.parent) as scratch:
        for kernel in manifest["kernels"]:
            state = client.kernel_status(kernel["id"])
            if state["status"] not in _FINISHED:
                failed.append({**kernel, **state, "log_tail": "(still running: pull again when it ends)"})
                continue
            folder = Path(scratch) / kernel["id"].rsplit("/", 1)[-1]
            got = client.kernel_output(kernel["id"], folder, file_pattern=rf"^runs/{competition}/{run_name}/")
            part = folder / "runs" / competition / run_name
            if part.is_dir():
                parts.append(part)
            if state["status"] != "complete":
                failed.append({**kernel, **state, "log_tail": log_tail(got["log"])})
        merged = merge_runs(parts, target, store=store)
    return PullReport(merged, failed)


# ---- inside the kernel ----
def restore_run(kernel_slug: str, competition: str, run_name: str) -> Path | None:
    """Copy the previous version's run folder (its output, attached by `kit kernel push --resume` and mounted at
    /kaggle/input/<kernel_slug>) into /kaggle/working, without overwriting files already there; returns the
    restored folder, or None when no previous output is attached (outside Kaggle: always None)."""
    root = paths.kaggle_root()
    if root is None:
        return None
    relative = Path("runs") / competition / run_name
    candidates = [root / "input" / kernel_slug / relative]  # where Kaggle mounts a kernel's output
    candidates += sorted((root / "input").glob(f"notebooks/*/{kernel_slug}/{relative}"))
    source = next((c for c in candidates if (c / "config.toml").is_file()), None)
    if source is None:
        return None
    target = paths.runs_dir() / competition / run_name
    for path in sorted(source.rglob("*")):
        copy = target / path.relative_to(source)
        if path.is_dir():
            copy.mkdir(parents=True, exist_ok=True)
        elif not copy.exists():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)  # copyfile: the input is read-only, the copy must not be
    done = sorted(p.parent.name for p in target.glob("fold*/done.json"))
    print(f"resumed {target} from the previous version ({source}); finished: {done or 'none'}")
    return target


def run_fold_group(
    competition: str,
    folds,
    max_minutes: float | None = None,
    overrides=(),
    run_name: str = "kernel",
    expected_hash: str | None = None,
    workers: int | None = None,
) -> Path:
    """In a fold-group kernel: ingest, then train only ``folds`` into ``runs/<competition>/<run_name>``; refuses
    to train when this kit resolves the config to another hash than the one the kernels were built with."""

    working = paths.working_dir()
    paths.keep_library_caches_in(working)
    cfg = resolve_config(competition, overrides=list(overrides))
    got = identity_hash(cfg)
    if expected_hash is not None and got != expected_hash:
        raise KitError(
            f"expected config {expected_hash} (the one every fold kernel was built with), got {got} from this kit "
            "bundle. Fix: rebuild and push every fold kernel together (`kit kernel push COMPETITION --folds ...`)."
        )
    from kit.ingest.writer import ingest

    store = paths.default_store(competition)
    print(ingest(competition, paths.default_raw(competition), store, workers=workers).report())
    from kit.train.loop import train

    result = train(
        competition,
        store=store,
        overrides=list(overrides),
        folds=",".join(str(f) for f in folds),
        max_minutes=max_minutes,
        run_dir=paths.runs_dir() / competition / run_name,
        workers=workers or os.cpu_count() or 1,
    )
    mine = [f for f in folds if f in result.missing_folds]
    print(f"config {got}: folds {list(folds)} -> {result.run_dir}" + (f"; unfinished: {mine}" if mine else ""))
    return result.run_dir
