"""The `kit` command: one verb per pipeline step (see README). Also `python -m kit`.

Example:
    $ kit synth pcam data/pcam-synth/raw --train 2000 --test 500
    $ kit ingest pcam --raw data/pcam-synth/raw --store data/pcam-synth/pcam.h5
"""

from __future__ import annotations

import argparse
import json
import sys

from kit.cli.kaggle_verbs import add_kaggle_verbs
from kit.cli.options import add_config_options
from kit.cli.report_verbs import add_report_verbs
from kit.cli.tune_verbs import add_tune_verbs
from kit.config import TTA_MODES
from kit.errors import KitError

__all__ = ["main", "build_parser"]


def _cmd_synth(args) -> None:
    from kit.synth import synthesize

    synthesize(args.competition, args.dir, args.train, args.test, args.seed)
    print(f"wrote a synthetic {args.competition} dataset ({args.train} train, {args.test} test) to {args.dir}")


def _cmd_ingest(args) -> None:
    from kit import paths
    from kit.ingest.writer import ingest

    raw = args.raw or paths.default_raw(args.competition)
    store = args.store or paths.default_store(args.competition)
    summary = ingest(args.competition, raw, store, workers=args.workers, force=args.force, size=args.size)
    print(summary.report())


def _cmd_config(args) -> None:
    from kit.config import describe, resolve_config

    print(describe(resolve_config(args.competition, args.config, args.set)), end="")


def _cmd_train(args) -> None:
    from kit.train.loop import train

    result = train(
        args.competition,
        store=args.store,
        config_file=args.config,
        overrides=args.set,
        folds=args.folds,
        max_minutes=args.max_minutes,
        run_dir=args.run_dir,
        workers=args.workers,
    )
    if not result.complete:
        print(f"folds still to train: {result.missing_folds} (rerun the same command to continue)")


def _cmd_predict(args) -> None:
    if args.images is None and args.out is not None:
        raise KitError(
            f"expected --out only with --images, got --out {args.out} without it. Fix: add --images DIR_OR_CSV "
            "(the test split's predictions always go to the run folder's test_pred.csv)."
        )
    if args.images is not None:
        _predict_images(args)
        return
    from kit.infer.predict import predict_run

    result = predict_run(args.run_dir, tta=args.tta, oof=args.oof, store=args.store, force=args.force)
    line = f"predicted {len(result.test_pred)} test images with folds {result.folds} (TTA {result.tta})"
    if result.oof_score_tta is not None:
        line += f"; OOF {result.metric} {result.oof_score:.4f} plain, {result.oof_score_tta:.4f} with TTA"
    print(line + f" -> {result.run_dir / 'test_pred.csv'}")


def _predict_images(args) -> None:
    from kit.infer.predict_images import predict_images

    if args.out is None:
        raise KitError(
            f"expected --out CSV with --images, got none. Fix: e.g. --out {args.images.rstrip('/')}_pred.csv."
        )
    result = predict_images(args.run_dir, args.images, args.out, tta=args.tta, force=args.force, store=args.store)
    if result.ignored:
        shown = ", ".join(result.ignored[:5]) + (
            f" and {len(result.ignored) - 5} more" if len(result.ignored) > 5 else ""
        )
        print(f"not images by suffix, not predicted ({len(result.ignored)}): {shown}")
    print(f"predicted {len(result.table)} images with folds {result.folds} (TTA {result.tta}) -> {result.out}")


def _cmd_ensemble(args) -> None:
    from kit.infer.ensemble import blend_and_submit

    csv = blend_and_submit(
        args.run_dirs, method=args.method, out_dir=args.out_dir, name=args.name, partial=args.partial
    )
    if args.submit:
        _upload_once(args.run_dirs[0], csv, args.message)


def _upload_once(run_dir, csv, message) -> None:
    """Upload ``csv`` unless it was already submitted; without credentials, say so and keep the CSV."""
    from kit.cli.kaggle_verbs import upload_once
    from kit.run import load_run_config

    competition = load_run_config(run_dir).competition
    upload_once(competition, csv, message)


def _cmd_bench(args) -> None:
    from kit import bench

    if args.what == "ingest":
        if not args.raw:
            raise KitError("expected --raw DIR for `kit bench ingest`. Fix: pass a Kaggle-layout folder.")
        figures = bench.bench_ingest(args.raw, args.competition, args.workers, args.repeat, args.size)
    elif args.what == "train":
        from kit.bench_train import bench_train

        figures = bench_train(
            args.backbone,
            args.batch,
            args.precision,
            args.store,
            args.seconds,
            competition=args.competition,
            augment_on=args.augment_on,
        )
    else:
        if not args.store:
            raise KitError(f"expected --store FILE for `kit bench {args.what}`. Fix: pass a store made by kit ingest.")
        if args.what == "loader":
            figures = bench.bench_loader(args.store, args.competition, threads=args.workers)
        else:
            figures = bench.bench_tta(args.store, backbone=args.backbone, rounds=args.repeat)
    print(json.dumps(figures))


_EPILOG = {
    "synth": "example:\n  kit synth pcam data/pcam-synth/raw --train 2000 --test 500 --seed 0",
    "ingest": "examples:\n  kit ingest pcam                      # data/pcam/raw -> data/pcam/pcam.h5\n"
    "  kit ingest pcam --raw data/pcam-sample/raw --store data/sample.h5 --workers 2\n"
    "  kit ingest isic --size 256             # JPEGs of any size -> 256x256 (centre square, area resize)\n\n"
    "An interrupted ingest resumes when rerun; a finished store is left alone unless --force.",
    "config": "examples:\n  kit config show pcam\n"
    "  kit config show pcam --set train.lr=1e-3 --set model.backbone=tiny_cnn\n"
    "  kit config show pcam > my.toml   # edit, then: kit train pcam --config my.toml\n\n"
    "Prints the resolved configuration as TOML, each key with a one-line description; an unknown key or "
    "a bad value is an error listing the valid ones.",
    "train": "examples:\n  kit train pcam --max-minutes 20                 # default CPU recipe, 3 folds\n"
    "  kit train pcam --set model.backbone=densenet169 --set model.weights=/kaggle/input/w/densenet.h5\n"
    "  kit train pcam --folds 0,1 --run-dir runs/pcam/shared   # spread folds over machines\n\n"
    "Rerunning the same command resumes: finished folds are skipped, an interrupted fold continues.",
    "predict": "examples:\n  kit predict runs/pcam/20261124-101500_compact_cnn\n"
    "  kit predict runs/pcam/20261124-101500_compact_cnn --tta none --oof\n"
    "  kit predict runs/pcam/20261124-101500_compact_cnn --images new_scans/ --out new_pred.csv\n\n"
    "--images predicts any folder of images (or a CSV of paths) instead of the test split, through the run's "
    "own\npreprocessing, TTA and fold average; the CSV holds id (file name without suffix) and the probability.",
    "ensemble": "examples:\n  kit ensemble runs/pcam/A                         # one run: its fold average\n"
    "  kit ensemble runs/pcam/A runs/pcam/B --method hill\n\n"
    "Writes the blend next to the runs and a submission CSV under submissions/<competition>/.",
    "bench": "examples:\n  kit synth pcam data/pcam24k --train 20000 --test 4000\n"
    "  kit bench ingest --raw data/pcam24k\n"
    "  kit bench loader --store data/pcam/pcam.h5\n  kit bench tta --store data/pcam/pcam.h5\n"
    "  kit bench train --backbone efficientnet_b0 --batch 128 --precision mixed_float16 --seconds 10\n"
    "  kit bench train --augment-on model      # augmentation inside the timed step, a plain loader",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kit", description="Batch toolkit for Kaggle image classification.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def make_parser(name, help_text, epilog):
        return verbs.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def verb(name, help_text):
        return make_parser(name, help_text, _EPILOG[name])

    p = verb("synth", "write a synthetic dataset in the competition's exact Kaggle layout (any adapter)")
    p.add_argument("competition")
    p.add_argument("dir")
    p.add_argument("--train", type=int, default=2000, help="train images (default 2000)")
    p.add_argument("--test", type=int, default=500, help="test images (default 500)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_cmd_synth)

    p = verb("ingest", "stream the raw images into one HDF5 store (parallel, resumable)")
    p.add_argument("competition")
    p.add_argument("--raw", help="folder with Kaggle's files (default data/<competition>/raw)")
    p.add_argument("--store", help="HDF5 file to write (default data/<competition>/<competition>.h5)")
    p.add_argument("--workers", type=int, default=None, help="decode processes (default: all cores)")
    p.add_argument("--force", action="store_true", help="rebuild even if a finished store exists")
    p.add_argument(
        "--size",
        type=int,
        help="stored image side for adapters that resize (isic, chest-xray, head-ct); default: the adapter's",
    )
    p.set_defaults(run=_cmd_ingest)

    p = verb("config", "print the resolved, validated configuration with a description of each key")
    p.add_argument("action", choices=["show"])
    p.add_argument("competition")
    add_config_options(p)
    p.set_defaults(run=_cmd_config)

    p = verb("train", "train K cross-validated folds from the store into a run folder")
    p.add_argument("competition")
    p.add_argument("--store", help="HDF5 store (default data/<competition>/<competition>.h5)")
    add_config_options(p)
    p.add_argument("--folds", help="comma-separated folds to train (default all)")
    p.add_argument("--max-minutes", type=float, help="wall-clock budget shared by the folds")
    p.add_argument("--run-dir", help="run folder (default: the matching unfinished run, else a new one)")
    p.add_argument("--workers", type=int, default=0, help="loader threads (default 0: in the training thread)")
    p.set_defaults(run=_cmd_train)

    p = verb("predict", "predict the test split (or new images) with every fold model of a run (D4 TTA by default)")
    p.add_argument("run_dir")
    p.add_argument(
        "--tta",
        choices=list(TTA_MODES),
        help="test-time views: d4 (8 dihedral), hflip (mirror) or none, at most the adapter's (default: the run's)",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--oof", action="store_true", help="also re-score the out-of-fold rows with the same TTA")
    what.add_argument(
        "--images", metavar="DIR_OR_CSV", help="predict these images instead of the test split (a folder or a CSV)"
    )
    p.add_argument("--out", metavar="CSV", help="with --images: the CSV to write (id, probability)")
    p.add_argument(
        "--store", help="store to predict from (default: the one the run trained on); with --images, its image shape"
    )
    p.add_argument(
        "--force", action="store_true", help="predict again even if done with this TTA; with --images, overwrite --out"
    )
    p.set_defaults(run=_cmd_predict)

    p = verb("ensemble", "blend runs (fold averages) by OOF score and write a submission CSV")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--method", choices=["mean", "rank", "hill"], default="mean")
    p.add_argument("--name", help="submission name (default: the run names)")
    p.add_argument(
        "--out-dir",
        help="submissions folder (default submissions/); the CSV goes to OUT_DIR/<competition>/<time>_<name>.csv",
    )
    p.add_argument(
        "--submit", action="store_true", help="then upload it to Kaggle once (kit submit), when credentials exist"
    )
    p.add_argument("-m", "--message", help="submission description for --submit (CV score and runs are appended)")
    p.add_argument(
        "--partial",
        action="store_true",
        help="blend runs whose --max-minutes ran out from their finished folds (CV on those folds' rows only)",
    )
    p.set_defaults(run=_cmd_ensemble)

    p = verb("bench", "measure a pipeline step against a naive baseline; prints one JSON line")
    p.add_argument("what", choices=["ingest", "loader", "tta", "train"])
    p.add_argument("--raw", help="Kaggle-layout folder to ingest (ingest)")
    p.add_argument("--store", help="HDF5 store (loader, tta; train: default a synthetic one)")
    p.add_argument("--competition", default="pcam")
    p.add_argument("--backbone", default="compact_cnn", help="network timed by `bench tta` and `bench train`")
    p.add_argument("--batch", type=int, default=64, help="training batch size (train)")
    p.add_argument("--precision", default="auto", help="auto or a Keras dtype policy, e.g. mixed_float16 (train)")
    p.add_argument("--seconds", type=float, default=5.0, help="timed seconds of each contender (train)")
    p.add_argument(
        "--augment-on",
        choices=("cpu", "model"),
        default="cpu",
        help="train: the competition's augmentation in the loader (cpu) or as layers in the timed step (model)",
    )
    p.add_argument("--workers", type=int, default=None, help="decode processes / loader threads")
    p.add_argument("--repeat", type=int, default=3, help="ingest: kit runs, the best reported; tta: alternating rounds")
    p.add_argument("--size", type=int, help="stored image side (ingest, resizing adapters)")
    p.set_defaults(run=_cmd_bench)

    add_kaggle_verbs(verbs, make_parser)
    add_tune_verbs(verbs, make_parser)
    add_report_verbs(verbs, make_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except KitError as e:
        print(f"kit {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kit {args.verb}: interrupted", file=sys.stderr)
        return 130
    return 0
