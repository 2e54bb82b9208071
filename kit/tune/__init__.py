"""Hyperparameter search over any configuration keys: keras_tuner's oracles, every trial an ordinary kit run.

``kit.tune.space`` reads a space file (the oracle and the keys to search, checked against ``kit.config``);
``kit.tune.search`` runs the search with a keras_tuner Tuner whose trials call ``kit.train.loop.train`` and writes
the best trial's configuration (``best.toml``) and the trials table (``trials.csv``) into the search folder.
"""
