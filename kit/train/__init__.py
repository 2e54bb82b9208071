"""Train: K-fold training into a run folder.

Folds, the batch loader, augmentation, callbacks, device and precision, plots and the fold loop.
"""
