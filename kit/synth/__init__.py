"""Synthetic datasets in a competition's exact Kaggle layout: the embedded default for demos and tests.

``synthesize(name, dir)`` looks the adapter up and runs its synthetic twin (``adapter.synthesize``, drawn in
``competitions.synthetic``; ``kit.synth.generic`` for an adapter without one, such as a declarative adapter); the
writers those twins share live in ``kit.synth.layout`` and ``kit.synth.generic``.

Example:
    >>> from kit.synth import synthesize
    >>> synthesize("pcam", "/tmp/pcam-demo", n_train=64, n_test=16, seed=0)  # doctest: +SKIP
    PosixPath('/tmp/pcam-demo')
"""

from __future__ import annotations

from pathlib import Path

from kit.adapters.registry import get_adapter
from kit.synth.generic import synthesize_generic
from kit.synth.layout import SYNTH_TEST_LABELS, encode_image, hex_ids, write_class_folders, write_kaggle_layout

__all__ = ["synthesize", "write_kaggle_layout", "write_class_folders", "encode_image", "hex_ids", "SYNTH_TEST_LABELS"]


def synthesize(competition: str, raw, n_train: int = 2000, n_test: int = 500, seed: int = 0) -> Path:
    """Write a deterministic synthetic dataset for ``competition`` into ``raw``; returns ``raw``."""
    raw = Path(raw)
    adapter = get_adapter(competition)
    writer = adapter.synthesize or synthesize_generic  # declarative adapters have no drawing code of their own
    writer(adapter, raw, n_train, n_test, seed)
    return raw
