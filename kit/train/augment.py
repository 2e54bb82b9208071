"""Augmentation declared as data, and the D4 group for TTA.

A pipeline is declared in the config as ``[{name="D4", p=1.0}, ...]`` (an albumentations class name and its
arguments), built with ``build_augmentation`` and saved in albumentations' own JSON in the run folder;
``kit.train.batch_augment.BatchAugmenter`` runs it on whole batches. ``dihedral`` gives the 8 views of the
dihedral group that test-time augmentation averages over.

Example:
    >>> build_augmentation([{"name": "D4", "p": 1.0}]).transforms[0]
    D4(p=1.0)
"""

from __future__ import annotations

import warnings

import albumentations as A
import numpy as np

from kit.errors import KitError

__all__ = [
    "build_augmentation",
    "save_augmentation",
    "load_augmentation",
    "D4_VIEWS",
    "D4_ELEMENTS",
    "dihedral",
    "inverse_dihedral",
]

# Element k = r + 4 * f is "flip vertically f times, then rotate 90 degrees counter-clockwise r times"; this is
# albumentations' own order of the D4 group, so view k is ``A.D4().apply(image, group_element=D4_ELEMENTS[k])``.
D4_ELEMENTS = ("e", "r90", "r180", "r270", "v", "hvt", "h", "t")
D4_VIEWS = tuple(range(8))


def dihedral(batch: np.ndarray, k: int) -> np.ndarray:
    """Element ``k`` (0..7) of the dihedral group applied to every image of a (B, H, W, C) batch, as a view.

    Example:
        >>> dihedral(np.arange(4).reshape(1, 2, 2, 1), 1)[0, :, :, 0].tolist()  # 90 degrees counter-clockwise
        [[1, 3], [0, 2]]
    """
    if not 0 <= int(k) < 8:
        raise KitError(f"expected a dihedral element k in 0..7, got {k!r}. Fix: use one of D4_VIEWS.")
    flipped = batch[:, ::-1] if k >= 4 else batch
    return np.rot90(flipped, int(k) % 4, axes=(1, 2))


def inverse_dihedral(batch: np.ndarray, k: int) -> np.ndarray:
    """Undo ``dihedral(batch, k)``: rotations by their opposite, reflections by themselves.

    Example:
        >>> x = np.arange(6).reshape(1, 2, 3, 1)
        >>> bool((inverse_dihedral(dihedral(x, 3), 3) == x).all())
        True
    """
    return dihedral(batch, (4 - int(k)) % 4 if k < 4 else k)


def build_augmentation(spec) -> A.Compose | None:
    """An albumentations Compose from ``[{"name": ClassName, **kwargs}, ...]``; None for an empty spec.

    Example:
        >>> build_augmentation([{"name": "HorizontalFlip", "p": 0.5}]).transforms[0]
        HorizontalFlip(p=0.5)
    """
    if not spec:
        return None
    if isinstance(spec, (str, dict)):
        raise KitError(
            f'expected a list of transforms like [{{name="D4", p=1.0}}], got {spec!r}. '
            "Fix: write augment.train as a list of tables."
        )
    return A.Compose([_build_one(item) for item in spec])


def _build_one(item):
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise KitError(
            f'expected a transform table with a name, like {{name="HorizontalFlip", p=0.5}}, got '
            f"{item!r}. Fix: add name = an albumentations class name."
        )
    kwargs = dict(item)
    name = kwargs.pop("name")
    cls = getattr(A, name, None)
    if not (isinstance(cls, type) and issubclass(cls, (A.BasicTransform, A.BaseCompose))):
        raise KitError(
            f"expected an albumentations transform name, got {name!r}. Fix: use a class name from "
            "albumentations, such as D4, HorizontalFlip, HueSaturationValue or RandomBrightnessContrast."
        )
    if issubclass(cls, A.BaseCompose):  # OneOf, SomeOf, ...: their transforms are declared the same way
        kwargs["transforms"] = [_build_one(t) for t in kwargs.get("transforms", [])]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            transform = cls(**kwargs)
        # albumentations only warns about unknown arguments: a typo must not silently weaken the augmentation
        unknown = [str(w.message) for w in caught if "are not valid for transform" in str(w.message)]
        if unknown:
            raise ValueError(unknown[0])
    except (TypeError, ValueError) as e:
        reason = "; ".join(line.strip() for line in str(e).splitlines() if "errors.pydantic.dev" not in line)
        raise KitError(
            f"albumentations rejected {name} with arguments {kwargs}: {reason}. Fix: correct the arguments "
            f"of {name} (see help(albumentations.{name}))."
        ) from None
    return transform


def save_augmentation(compose: A.Compose, path) -> None:
    """Write ``compose`` in albumentations' own JSON serialisation (``A.save``).

    Example:
        >>> save_augmentation(build_augmentation(get_adapter("pcam").train_augment), "augment.json")  # doctest: +SKIP
    """
    A.save(compose, str(path), data_format="json")


def load_augmentation(path) -> A.Compose:
    """Read a Compose written by ``save_augmentation``.

    Example:
        >>> compose = load_augmentation("runs/pcam/x/augment.json")  # doctest: +SKIP
    """
    try:
        return A.load(str(path), data_format="json")
    except (OSError, ValueError, KeyError) as e:
        raise KitError(
            f"expected an albumentations JSON pipeline at {path}, could not read it ({e}). Fix: point "
            "at the augment.json of a run folder, written by save_augmentation."
        ) from None
