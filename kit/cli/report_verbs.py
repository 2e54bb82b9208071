"""The report verb of the `kit` command: ``kit report RUN_DIR [RUN_DIR ...]`` (argparse wiring only).

``_cmd_report`` reads the flags, calls ``kit.report.run_report.write_report`` (imported when the verb runs, so
``kit --help`` stays fast) and prints where the page is.

Example:
    $ kit report runs/pcam/20261124-101500_compact_cnn --out reports/pcam.html
    $ kit report runs/pcam/A runs/pcam/B --sensitivity 0.95
"""

from __future__ import annotations

__all__ = ["add_report_verbs"]

_EPILOG = (
    "examples:\n  kit report runs/pcam/20261124-101500_compact_cnn --out reports/pcam.html\n"
    "  kit report runs/pcam/A runs/pcam/B --sensitivity 0.95   # binary: threshold reaching 95% sensitivity\n\n"
    "One self-contained HTML page (images embedded, opens from disk with no network): data, cross-validation,\n"
    "operating point, top losses, Grad-CAM, ensemble and leaderboard. The PNGs also go to <page>_figures/."
)


def _sensitivity(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a sensitivity in (0, 1], got {text!r}; e.g. 0.95")
    return value


def _cmd_report(args) -> None:
    from kit.report.run_report import write_report

    out = write_report(args.run_dirs, args.out, sensitivity=args.sensitivity, gradcam=not args.no_gradcam)
    print(f"report: {out} (figures in {out.with_name(out.stem + '_figures')})")


def add_report_verbs(verbs, make_parser) -> None:
    """Add ``report`` to the `kit` parser.

    Args:
        verbs: the argparse subparsers object.
        make_parser: ``f(name, help, epilog)`` returning a new subparser.

    Example:
        >>> add_report_verbs(verbs, make_parser)  # doctest: +SKIP
    """
    p = make_parser("report", "write one self-contained HTML report of finished runs", _EPILOG)
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", metavar="FILE.html", help="page to write (default reports/<run>.html)")
    p.add_argument(
        "--sensitivity",
        type=_sensitivity,
        help="binary: the threshold reaching this OOF sensitivity (default: Youden's J)",
    )
    p.add_argument("--no-gradcam", action="store_true", help="skip the Grad-CAM section (no model is loaded)")
    p.set_defaults(run=_cmd_report)
