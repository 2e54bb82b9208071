"""Infer: a trained run folder -> test predictions with TTA, ensembles of runs, validated submission files."""
