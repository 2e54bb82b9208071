"""The `kit` command: one verb per pipeline step (see README). Also `python -m kit`.

Example:
    $ kit synth pcam data/pcam-synth/raw --train 2000 --test 500
    $ kit ingest pcam --raw data/pcam-synth/raw --store data/pcam-synth/pcam.h5
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from kit.errors import KitError

__all__ = ["main", "build_parser"]


def _cmd_synth(args) -> None:
    from kit.synth import synthesize

    synthesize(args.competition, args.dir, args.train, args.test, args.seed)
    print(f"wrote a synthetic {args.competition} dataset ({args.train} train, {args.test} test) to {args.dir}")


def _cmd_ingest(args) -> None:
    from kit import paths
    from kit.ingest import ingest

    raw = args.raw or paths.default_raw(args.competition)
    store = args.store or paths.default_store(args.competition)
    summary = ingest(args.competition, raw, store, workers=args.workers, force=args.force)
    print(summary.report())


def _cmd_bench(args) -> None:
    from kit import bench

    if args.what == "ingest":
        figures = bench.bench_ingest(args.raw, args.competition, args.workers, args.repeat)
    print(json.dumps(figures))


_EPILOG = {
    "synth": "example:\n  kit synth pcam data/pcam-synth/raw --train 2000 --test 500 --seed 0",
    "ingest": "examples:\n  kit ingest pcam                      # data/pcam/raw -> data/pcam/pcam.h5\n"
              "  kit ingest pcam --raw ../shared/pcam-sample --store data/sample.h5 --workers 2\n\n"
              "An interrupted ingest resumes when rerun; a finished store is left alone unless --force.",
    "bench": "example:\n  kit synth pcam /tmp/pcam24k --train 20000 --test 4000 && kit bench ingest --raw /tmp/pcam24k",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kit", description="Batch toolkit for Kaggle image classification.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name, help_text):
        return verbs.add_parser(name, help=help_text, description=help_text, epilog=_EPILOG[name],
                                formatter_class=argparse.RawDescriptionHelpFormatter)

    p = verb("synth", "write a synthetic dataset in the competition's exact Kaggle layout")
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
    p.set_defaults(run=_cmd_ingest)

    p = verb("bench", "measure a pipeline step against a naive baseline; prints one JSON line")
    p.add_argument("what", choices=["ingest"])
    p.add_argument("--raw", required=True, help="Kaggle-layout folder to ingest")
    p.add_argument("--competition", default="pcam")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--repeat", type=int, default=3, help="kit runs; the best is reported")
    p.set_defaults(run=_cmd_bench)
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
