"""Train: K-fold training into a run folder (folds, the batch loader, augmentation, callbacks, device and precision, the fold loop)."""
