"""Kaggle: the only importer of the `kaggle` client (download, submit, leaderboard, kernels) and the submission
ledger."""
