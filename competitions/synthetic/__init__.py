"""Synthetic twins of the adapters: one module per competition drawing look-alike images for demos and tests.

Each module has ``synthesize(adapter, raw, n_train, n_test, seed)``, which its adapter declares as
``synthesize=``; the writers are in ``kit.synth.layout``. Adapter discovery skips this package.
"""
