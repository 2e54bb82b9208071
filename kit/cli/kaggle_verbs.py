"""The Kaggle verbs of the `kit` command: kernel, download, submit, leaderboard (argparse wiring only).

Each ``_cmd_*`` reads the parsed flags, calls the function in ``kit.kaggle`` or ``kit.report`` that does the work
(imported when the verb runs, so ``kit --help`` stays fast) and prints its outcome.

Example:
    $ kit download pcam                                   # data/pcam/raw, unpacked and verified
    $ kit submit pcam submissions/pcam/20261124-101500_cnn.csv -m "5-fold cnn"
    $ kit leaderboard pcam --sync --rank
"""

from __future__ import annotations

from pathlib import Path

from kit.cli.options import add_config_options
from kit.errors import KitError

__all__ = ["add_kaggle_verbs", "upload_once"]


def upload_once(competition: str, csv, message: str | None) -> None:
    """Upload ``csv`` unless it was already submitted; without credentials, say so and keep the CSV.

    Example:
        >>> upload_once("pcam", "submissions/pcam/20261124-101500_cnn.csv", "5-fold cnn")  # doctest: +SKIP
    """
    from kit.kaggle.credentials import find_credentials
    from kit.kaggle.errors import KaggleApiError
    from kit.kaggle.submit import submit_csv

    try:
        find_credentials()
    except KaggleApiError as e:
        print(f"not uploaded: {e}\nThe CSV is ready: `kit submit {competition} {csv}` uploads it later.")
        return
    submit_csv(competition, csv, message, skip_if_submitted=True)


def _cmd_kernel(args) -> None:
    from kit.kaggle.fold_kernels import MANIFEST
    from kit.kaggle.kernels import build_kernel, push_kernel

    if (
        args.action in ("status", "pull")
        or args.folds
        or (args.action == "push" and (Path(args.dir) / MANIFEST).exists())
    ):
        _cmd_fold_kernels(args)
        return
    if args.action == "build":
        if not args.competition:
            raise KitError(
                "expected a competition after `kit kernel build`, got none. Fix: name one, e.g. "
                "`kit kernel build pcam`."
            )
        if args.inference:
            _build_inference(args)
            return
        bundle = build_kernel(args.competition, **_bundle_options(args))
        print(
            f"kernel bundle in {bundle.root}: dataset {bundle.dataset_id} ({bundle.dataset_dir}), kernel "
            f"{bundle.kernel_id} ({bundle.notebook_dir}). Push it with `kit kernel push --dir {bundle.root}`."
        )
    else:
        result = push_kernel(args.dir, notes=args.message or "kit bundle", resume=args.resume)
        print(
            f"pushed dataset {result['dataset']} and kernel {result['kernel']} (version {result['version']}): "
            f"{result['kernel_url'] or ''}"
        )


def _cmd_fold_kernels(args) -> None:
    """kernel build|push --folds (one kernel per fold group), kernel status, kernel pull RUN_DIR."""
    from kit.kaggle import fold_kernels

    if args.action == "status":
        for k in fold_kernels.kernel_statuses(args.dir):
            failure = f"  {k['failure']}" if k["failure"] else ""
            print(f"{k['id']}  folds {','.join(map(str, k['folds']))}  {k['status']}{failure}")
        return
    if args.action == "pull":
        print(fold_kernels.pull_fold_kernels(args.competition, args.dir, store=args.store).text())
        return
    if args.folds:
        if not args.competition:
            raise KitError(
                f"expected a competition before --folds, got none. Fix: e.g. `kit kernel {args.action} pcam "
                "--folds 0,1 --folds 2,3 --folds 4`."
            )
        manifest = fold_kernels.build_fold_kernels(args.competition, args.folds, **_bundle_options(args))
        ids = ", ".join(k["id"] for k in manifest["kernels"])
        print(f"config {manifest['config_hash']}: {len(manifest['kernels'])} fold kernels in {args.dir}: {ids}")
    if args.action == "push":
        for r in fold_kernels.push_fold_kernels(args.dir, notes=args.message or "kit bundle", resume=args.resume):
            print(f"pushed {r['kernel']} (folds {r['folds']}, version {r['version']}): {r['kernel_url'] or ''}")


def _bundle_options(args) -> dict:
    """What a training kernel bundle (one, or one per fold group) is built with, from `kit kernel build`'s options."""
    return dict(
        out=args.dir,
        user=args.user,
        max_minutes=args.max_minutes,
        overrides=args.set,
        bundle=args.bundle,
        gpu=not args.no_gpu,
    )


def _build_inference(args) -> None:
    from kit.kaggle.inference_kernel import build_inference_kernel

    bundle = build_inference_kernel(
        args.competition,
        args.inference,
        out=args.dir,
        user=args.user,
        bundle=None if args.bundle == "kit-bundle" else args.bundle,
        gpu=not args.no_gpu,
    )
    print(
        f"inference kernel in {bundle.root}: dataset {bundle.dataset_id} (kit + run {args.inference}), kernel "
        f"{bundle.kernel_id}. Push it with `kit kernel push --dir {bundle.root}`, then "
        f"`kit submit {args.competition} --kernel {bundle.kernel_id} --version N`."
    )


def _cmd_download(args) -> None:
    from kit.kaggle.download import download_competition

    raw = args.raw or (Path(args.data_dir) / args.competition / "raw" if args.data_dir else None)
    download_competition(args.competition, raw, force=args.force, keep_zip=args.keep_zip)


def _cmd_submit(args) -> None:
    from kit.infer.sidecar import Sidecar
    from kit.kaggle.leaderboard import wait_for_score
    from kit.kaggle.submit import SubmitContext, submit_csv, submit_kernel

    if args.kernel:
        if args.csv or args.dry_run:
            raise KitError(
                f"expected a CSV or --kernel, got --kernel {args.kernel} with a CSV or --dry-run. Fix: a code "
                "competition takes --kernel USER/SLUG --version N; any other takes the CSV."
            )
        result = submit_kernel(
            args.competition, args.kernel, args.version, args.message, plain_message=args.plain_message
        )
    elif args.csv is None:
        raise KitError(
            "expected a submission CSV (or --kernel USER/SLUG for a code competition), got neither. Fix: "
            f"`kit submit {args.competition} submissions/{args.competition}/<file>.csv`."
        )
    elif args.version is not None:
        raise KitError(f"expected --version only with --kernel, got --version {args.version}. Fix: add --kernel.")
    else:
        result = submit_csv(
            args.competition,
            args.csv,
            args.message,
            dry_run=args.dry_run,
            plain_message=args.plain_message,
            context=SubmitContext(raw=args.raw, store=args.store),
        )
    if args.wait and result.status == "pending" and result.ref is not None:
        print(f"waiting for Kaggle to score submission {result.ref} (at most {args.wait_minutes:g} min)")
        scored = wait_for_score(args.competition, result.ref, minutes=args.wait_minutes)
        cv = Sidecar.read(args.csv).cv_score if args.csv else None
        public = "none" if scored["public_score"] is None else f"{scored['public_score']:.5f}"
        print(f"public score {public}" + ("" if cv is None else f"  (CV {cv:.5f})"))


def _cmd_leaderboard(args) -> None:
    from kit.kaggle.leaderboard import our_rank, sync_ledger
    from kit.report.leaderboard import show_leaderboard

    if args.sync:
        updated, added = sync_ledger(args.competition)
        print(f"synced with Kaggle: {updated} ledger rows updated, {added} added")
    if args.rank:
        rank = our_rank(args.competition)
        score = "" if rank.score is None else f" with public score {rank.score:.5f}"
        print(f"{rank.team}: position {rank.rank} of {rank.teams} (top {rank.percentile:.1f}%){score}")
    plot = show_leaderboard(args.competition, plot=args.plot)
    print(f"plot: {plot}")


_EPILOG = {
    "kernel": "examples:\n  kit kernel build pcam --user me --max-minutes 540   # or: make kernel\n"
    "  kit kernel build pcam --set model.backbone=densenet169 --set "
    "model.weights=/kaggle/input/keras-weights/densenet169_notop.h5\n"
    "  kit kernel push --dir build/kernel\n"
    "  kit kernel push pcam --folds 0,1 --folds 2,3 --folds 4   # one kernel per fold group, same config\n"
    "  kit kernel status; kit kernel pull runs/pcam/merged     # merge the finished folds into one run\n"
    "  kit kernel push --resume                                 # continue from the previous version's output\n\n"
    "Attach the competition and the bundle dataset; the driver writes /kaggle/working/submission.csv.",
    "download": "examples:\n  kit download pcam                    # -> data/pcam/raw\n"
    "  kit download pcam --data-dir /mnt/big  # -> /mnt/big/pcam/raw\n\n"
    "Needs Kaggle credentials (~/.kaggle/kaggle.json) and the competition's rules accepted. A complete\n"
    "folder is left alone; an interrupted download or unpack continues when rerun.",
    "submit": 'examples:\n  kit submit pcam submissions/pcam/20261124-101500_cnn.csv -m "5-fold cnn"\n'
    "  kit submit pcam submissions/pcam/20261124-101500_cnn.csv --dry-run\n\n"
    "The CSV is validated first (ids, order, probabilities in [0, 1]); the message gets the CV score and\n"
    "run names from the CSV's .json sidecar unless --plain-message. Every attempt is recorded in\n"
    "submissions/ledger.sqlite, failures included.",
    "leaderboard": "examples:\n  kit leaderboard pcam                 # ledger table + CV-vs-public plot\n"
    "  kit leaderboard pcam --sync --rank   # fetch scores and our position first",
}


def add_kaggle_verbs(verbs, make_parser) -> None:
    """Add ``kernel``, ``download``, ``submit`` and ``leaderboard`` to the `kit` parser, in that order.

    Args:
        verbs: the argparse subparsers object.
        make_parser: ``f(name, help, epilog)`` returning a new subparser.

    Example:
        >>> add_kaggle_verbs(verbs, make_parser)  # doctest: +SKIP
    """
    p = make_parser(
        "kernel", "build a Kaggle kernel bundle (source dataset + driver script), or push it", _EPILOG["kernel"]
    )
    p.add_argument("action", choices=["build", "push", "status", "pull"])
    p.add_argument("competition", nargs="?", help="competition to run (build, push --folds); RUN_DIR for pull")
    p.add_argument(
        "--folds", action="append", metavar="0,1", help="one kernel per fold group (repeat); the same config in each"
    )
    p.add_argument("--resume", action="store_true", help="push: attach the previous version's output and continue")
    p.add_argument("--store", help="pull: the local store, to summarise the merged run (oof.csv) for kit predict")
    p.add_argument("--dir", default="build/kernel", help="bundle folder (default build/kernel)")
    p.add_argument("--user", help="Kaggle username for the ids (default: from the credentials)")
    p.add_argument("--max-minutes", type=float, default=540, help="training budget in the kernel (default 540)")
    add_config_options(p, config_file=False, note="; baked into the kernel")
    p.add_argument("--bundle", default="kit-bundle", help="dataset slug of the source bundle")
    p.add_argument("--no-gpu", action="store_true", help="run the kernel on CPU")
    p.add_argument(
        "--inference",
        metavar="RUN_DIR",
        help="pack this trained run and write an inference-only kernel (code competitions): no training",
    )
    p.add_argument("-m", "--message", help="version notes for push")
    p.set_defaults(run=_cmd_kernel)

    p = make_parser(
        "download", "fetch the competition's files from Kaggle, unpack and verify them", _EPILOG["download"]
    )
    p.add_argument("competition")
    p.add_argument("--data-dir", help="data folder; files go to DATA_DIR/<competition>/raw (default data/)")
    p.add_argument("--raw", help="exact folder for the files (overrides --data-dir)")
    p.add_argument("--force", action="store_true", help="download again even if the folder is complete")
    p.add_argument("--keep-zip", action="store_true", help="keep the archive after unpacking")
    p.set_defaults(run=_cmd_download)

    p = make_parser(
        "submit", "validate a submission CSV, upload it to Kaggle and record it in the ledger", _EPILOG["submit"]
    )
    p.add_argument("competition")
    p.add_argument("csv", metavar="CSV", nargs="?", help="the submission (not with --kernel)")
    p.add_argument("--kernel", metavar="USER/SLUG", help="code competition: submit this notebook's output")
    p.add_argument("--version", type=int, help="the notebook version to submit (with --kernel; default latest)")
    p.add_argument("-m", "--message", help="submission description (CV score and runs are appended)")
    p.add_argument("--dry-run", action="store_true", help="validate and record, do not upload")
    p.add_argument("--plain-message", action="store_true", help="send MESSAGE as is, without CV score and runs")
    p.add_argument("--raw", help="folder with sample_submission.csv (default data/<competition>/raw)")
    p.add_argument("--store", help="store with the test ids, used when the raw folder is absent")
    p.add_argument("--wait", action="store_true", help="poll until Kaggle scores it; print the public score and CV")
    p.add_argument(
        "--wait-minutes", type=float, default=30.0, help="give up waiting after this long (default 30; stays pending)"
    )
    p.set_defaults(run=_cmd_submit)

    p = make_parser(
        "leaderboard",
        "print the submission ledger (CV vs public vs private) and plot CV vs public",
        _EPILOG["leaderboard"],
    )
    p.add_argument("competition")
    p.add_argument("--sync", action="store_true", help="first pull our submissions' statuses and scores from Kaggle")
    p.add_argument("--rank", action="store_true", help="also show our public leaderboard position and percentile")
    p.add_argument("--plot", help="PNG to write (default submissions/<competition>/cv_vs_public.png)")
    p.set_defaults(run=_cmd_leaderboard)
