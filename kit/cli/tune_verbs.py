"""The `kit tune` verb: a keras_tuner search over configuration keys (argparse wiring only).

``_cmd_tune`` reads the parsed flags, calls ``kit.tune.search.tune`` (imported when the verb runs, so ``kit --help``
stays fast and does not load keras_tuner) and prints where the search's files are.

Example:
    $ kit tune pcam --space space.toml --max-trials 20 --max-minutes 120
    $ KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 kit tune pcam --space s.toml
"""

from __future__ import annotations

from kit.cli.options import add_config_options

__all__ = ["add_tune_verbs"]

_EPILOG = """examples:
  kit tune pcam --space space.toml --max-trials 20 --max-minutes 120
  kit tune pcam --space space.toml --set model.crop=64 --folds 0,1
  kit train pcam --config runs/pcam/tune/space/best.toml      # the best trial on every fold

The space file picks the oracle and the keys to search:
  oracle = "bayesian"          # or "random", "hyperband" (max_epochs = N: its epochs budget -> train.epochs)
  [keys]
  "train.lr" = {type = "float", min = 1e-4, max = 1e-2, sampling = "log"}
  "model.dropout" = {type = "float", min = 0.0, max = 0.5, step = 0.1}
  "model.backbone" = {type = "choice", values = ["tiny_cnn", "compact_cnn"]}
  "data.batch_size" = {type = "int", min = 16, max = 64, step = 16}

Each trial is a run folder under runs/<competition>/tune/<name>/trial_<id>/, scored by the competition's metric
on --folds. Rerunning the same command resumes the search (a killed trial continues from its resume point).
Several machines share one search: set KERASTUNER_TUNER_ID (chief on one machine, tuner0, tuner1, ... on the
others), KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT (the chief's address) and run the same command on each."""


def _cmd_tune(args) -> None:
    from kit.tune.search import tune

    result = tune(
        args.competition,
        args.space,
        max_trials=args.max_trials,
        max_minutes=args.max_minutes,
        folds=args.folds,
        store=args.store,
        config_file=args.config,
        overrides=args.set,
        name=args.name,
    )
    if result.best_toml is None and result.table_csv is None:
        print(f"worker done: ran trials {result.ran or 'none'}; the chief writes trials.csv and best.toml")


def add_tune_verbs(verbs, make_parser) -> None:
    """Add `kit tune` to the ``verbs`` subparsers (``make_parser(name, help, epilog)`` makes one verb's parser)."""
    p = make_parser("tune", "search configuration keys with keras_tuner; every trial is a kit run folder", _EPILOG)
    p.add_argument("competition")
    p.add_argument("--space", required=True, metavar="SPACE.toml", help="the oracle and the keys to search")
    p.add_argument("--max-trials", type=int, default=10, help="trials in the whole search, resumed ones included (10)")
    p.add_argument("--max-minutes", type=float, help="wall-clock budget of this call, shared by the trials to run")
    p.add_argument("--folds", default="0", help="comma-separated folds each trial trains and is scored on (default 0)")
    p.add_argument("--store", help="HDF5 store (default data/<competition>/<competition>.h5)")
    p.add_argument("--name", help="search name: the folder runs/<competition>/tune/NAME (default: the space file's)")
    add_config_options(p, note="; the base every trial starts from")
    p.set_defaults(run=_cmd_tune)
