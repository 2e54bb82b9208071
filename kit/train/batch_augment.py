"""Augmentation applied to whole uint8 batches fast: ``BatchAugmenter``.

For the transforms PCam needs (D4, flips, RandomRotate90, Transpose, Affine, HueSaturationValue,
RandomBrightnessContrast) it draws every image's parameters from the transform's own probability and ranges, as
albumentations does, and applies them with batched kernels (OpenCV flips and turns for the D4 group, albumentations'
matrix and one warpAffine per image, one OpenCV colour conversion of the whole batch seen as a mosaic, per-image
lookup tables), giving exactly what ``transform.apply(image, **params)`` gives. Any other transform runs through
albumentations image by image, so every declared pipeline works.

Example:
    >>> import numpy as np
    >>> from kit.adapters.registry import get_adapter
    >>> augment = BatchAugmenter(build_augmentation(get_adapter("pcam").train_augment), seed=0)
    >>> augment(np.zeros((4, 8, 8, 3), np.uint8)).shape
    (4, 8, 8, 3)
"""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor

import albumentations as A
import cv2
import numpy as np
from albumentations.augmentations.geometric import functional as fgeometric
from albumentations.augmentations.pixel.functional import get_safe_brightness_contrast_params

from kit.errors import KitError
from kit.train.augment import build_augmentation, dihedral_each

try:  # albumentations' own table lookup (albucore.sz_lut without its per-call checks); 6x faster than cv2.LUT
    from stringzilla import translate as _translate
except ImportError:  # pragma: no cover - stringzilla comes with albumentations 2
    _translate = None

__all__ = ["BatchAugmenter"]


# ---- batched kernels: sample(t, n, rng) -> per-image parameter arrays; apply(t, images, **params) -> images ----


def _apply_dihedral(t, images, k):
    """Element ``k[i]`` of D4 on image i (``kit.train.augment.dihedral_each``: OpenCV's flip/rotate per image)."""
    if images.shape[1] != images.shape[2] and np.any(k % 2 == 1):
        raise KitError(
            f"expected square images for {type(t).__name__}, got {images.shape[1]}x{images.shape[2]}. "
            "Fix: crop or resize to a square first, or use HorizontalFlip/VerticalFlip."
        )
    return dihedral_each(images, k)


def _apply_hsv(t, images, hue, sat, val):
    """albumentations' ``shift_hsv`` on every image at once: one RGB->HSV conversion of the batch as a mosaic."""
    n, h, w, c = images.shape
    if c != 3:
        return _apply_each(t, images, hue_shift=hue, sat_shift=sat, val_shift=val)
    hsv = cv2.cvtColor(images.reshape(n * h, w, 3), cv2.COLOR_RGB2HSV).reshape(n, h, w, 3)
    luts = np.empty((n, 256, 1, 3), np.uint8)
    luts[:, :, 0, 0] = np.mod(np.arange(256, dtype=np.int16)[None, :] + hue[:, None], 180).astype(np.uint8)
    for channel, shift in ((1, sat), (2, val)):  # albucore adds a float to uint8 as int(value), saturating
        luts[:, :, 0, channel] = np.clip(np.arange(256)[None, :] + np.trunc(shift)[:, None], 0, 255)
    luts[:, 0, 0, 1] = 0  # grey pixels (saturation 0) stay grey whatever the saturation shift
    for i in range(n):
        cv2.LUT(hsv[i], luts[i], dst=hsv[i])
    out = cv2.cvtColor(hsv.reshape(n * h, w, 3), cv2.COLOR_HSV2RGB).reshape(n, h, w, 3)
    unchanged = (hue == 0) & (sat == 0) & (val == 0)  # albumentations returns these without a round trip
    out[unchanged] = images[unchanged]
    return out


def _rbc_params(t, images, contrast, brightness):
    """albumentations' (alpha, beta) of RandomBrightnessContrast from the two uniform draws of each image."""
    alpha = 1.0 + contrast
    if t.brightness_by_max:
        beta = brightness * 255.0
    else:
        beta = brightness * np.array([np.mean(image) for image in images])
    if t.ensure_safe_range:
        pairs = [get_safe_brightness_contrast_params(float(a), float(b), 255) for a, b in zip(alpha, beta)]
        alpha, beta = (np.array(v, dtype=np.float64) for v in zip(*pairs))
    return alpha, beta


def _apply_alpha_beta(images, alpha, beta):
    """``clip(x * alpha + beta)`` in float32 through one 256-entry table per image, as albucore.multiply_add."""
    table = np.arange(256, dtype=np.float32)[None, :] * alpha.astype(np.float32)[:, None]
    luts = np.clip(table + beta.astype(np.float32)[:, None], 0, 255).astype(np.uint8)
    out = np.array(images, copy=True, order="C")
    for image, lut in zip(out, luts):
        if _translate is None:
            cv2.LUT(image, lut, dst=image)
        else:
            _translate(memoryview(image), memoryview(lut), inplace=True)
    return out


def _apply_rbc(t, images, contrast, brightness):
    return _apply_alpha_beta(images, *_rbc_params(t, images, contrast, brightness))


def _sample_affine(t, n, rng):
    """Affine's draws as ``Affine.get_params_dependent_on_data`` makes them (albumentations keeps every range as a
    (low, high) pair, and translate_px as {"x": (0, 0), "y": (0, 0)} when no translation is asked for)."""

    def uniform(pair):
        return rng.uniform(*pair, n)

    if t.translate_px is not None:  # whole pixels, both ends included (random.randint)
        tx, ty = (rng.integers(int(low), int(high) + 1, n) for low, high in (t.translate_px["x"], t.translate_px["y"]))
    else:
        tx, ty = uniform(t.translate_percent["x"]), uniform(t.translate_percent["y"])
    scale_x = uniform(t.scale["x"])
    return {
        "tx": tx,
        "ty": ty,
        "shear_x": -uniform(t.shear["x"]),
        "shear_y": -uniform(t.shear["y"]),
        "scale_x": scale_x,
        "scale_y": scale_x if t.keep_ratio else uniform(t.scale["y"]),
        "rotate": uniform(t.rotate),
    }


def _apply_affine(t, images, tx, ty, shear_x, shear_y, scale_x, scale_y, rotate):
    """albumentations' own matrix and ``Affine.apply`` (one cv2.warpAffine) per image, minus a Compose per image."""
    h, w = images.shape[1:3]
    if t.translate_px is None:  # fractions of the size, truncated to pixels as albumentations does
        tx, ty = (tx * w).astype(int), (ty * h).astype(int)
    out = np.empty_like(images)
    for i, image in enumerate(images):
        matrix = fgeometric.create_affine_transformation_matrix(
            {"x": tx[i].item(), "y": ty[i].item()},
            {"x": shear_x[i].item(), "y": shear_y[i].item()},
            {"x": scale_x[i].item(), "y": scale_y[i].item()},
            rotate[i].item(),
            fgeometric.center((h, w)),
        )
        out[i] = t.apply(image, matrix=matrix, output_shape=(h, w)).reshape(image.shape)
    return out


def _apply_each(t, images, **params):
    """A known transform whose batched kernel does not fit the batch: ``t.apply`` image by image."""
    rows = [t.apply(image, **{k: v[i].item() for k, v in params.items()}) for i, image in enumerate(images)]
    return np.stack(rows)


def _apply_fallback(t, images, seed):
    """Any other transform: albumentations one image at a time, each seeded from the batch's generator."""
    single = A.Compose([copy.deepcopy(t)])  # a private copy: loader threads share ``t``
    single.transforms[0].p = 1.0  # the batch already drew which images this transform applies to
    rows = []
    for image, s in zip(images, seed):
        single.set_random_seed(int(s))
        rows.append(single(image=np.ascontiguousarray(image))["image"])
    try:
        return np.stack(rows)
    except ValueError:
        raise KitError(
            f"expected {type(t).__name__} to give every image the same shape, got "
            f"{sorted({r.shape for r in rows})}. Fix: add a Resize or a fixed-size crop after it."
        ) from None


_KERNELS = {  # name -> (sample, apply)
    "D4": (lambda t, n, rng: {"k": rng.integers(0, 8, n)}, _apply_dihedral),
    "SquareSymmetry": (lambda t, n, rng: {"k": rng.integers(0, 8, n)}, _apply_dihedral),
    "RandomRotate90": (lambda t, n, rng: {"k": rng.integers(0, 4, n)}, _apply_dihedral),
    "HorizontalFlip": (lambda t, n, rng: {}, lambda t, images: images[:, :, ::-1].copy()),
    "VerticalFlip": (lambda t, n, rng: {}, lambda t, images: images[:, ::-1].copy()),
    "Transpose": (lambda t, n, rng: {}, lambda t, images: images.swapaxes(1, 2).copy()),
    "HueSaturationValue": (
        lambda t, n, rng: {
            "hue": rng.uniform(*t.hue_shift_limit, n),
            "sat": rng.uniform(*t.sat_shift_limit, n),
            "val": rng.uniform(*t.val_shift_limit, n),
        },
        _apply_hsv,
    ),
    "RandomBrightnessContrast": (
        lambda t, n, rng: {
            "contrast": rng.uniform(*t.contrast_limit, n),
            "brightness": rng.uniform(*t.brightness_limit, n),
        },
        _apply_rbc,
    ),
}
_FALLBACK = (lambda t, n, rng: {"seed": rng.integers(0, 1 << 31, n)}, _apply_fallback)


def _kernel(t):
    """(sample, apply) for transform ``t``: its batched kernel, or albumentations image by image."""
    name = type(t).__name__
    if name == "Affine" and not (t.fit_output or t.balanced_scale):  # those two change the shape or the draws
        return _sample_affine, _apply_affine
    return _KERNELS.get(name, _FALLBACK)


_POOL_LOCK = threading.Lock()
_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    with _POOL_LOCK:
        if threads not in _POOLS:
            _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="kit-augment")
        return _POOLS[threads]


class BatchAugmenter:
    """Applies an albumentations Compose to (B, H, W, C) uint8 batches, reproducibly and fast.

    Each image gets its own draw of every transform (whether it applies, with probability ``p``, and its
    parameters from the transform's ranges). The draws come from the ``rng`` given to the call, or from the
    augmenter's own generator (seeded by ``seed``, restarted by ``reseed``) when none is given; the result does
    not depend on ``threads``. Loader threads should pass their own ``rng`` (e.g. from seed, epoch and batch).

    Args:
        compose: a Compose (or a spec list for ``build_augmentation``); None gives an identity augmenter.
        seed: seed of the augmenter's own generator.
        threads: split each batch over this many threads (helps when one thread calls; leave 1 in a loader
            that already runs batches in parallel threads).

    Example:
        >>> augment = BatchAugmenter(build_augmentation(get_adapter("pcam").train_augment), seed=1)
        >>> batch = np.random.default_rng(0).integers(0, 256, (8, 96, 96, 3), dtype=np.uint8)
        >>> bool((augment(batch, rng=5) == augment(batch, rng=5)).all())
        True
    """

    def __init__(self, compose, seed: int = 0, threads: int = 1):
        if isinstance(compose, (list, tuple)):
            compose = build_augmentation(compose)
        if compose is not None and not isinstance(compose, A.BaseCompose):
            raise KitError(
                f"expected an albumentations Compose, a transform list or None, got "
                f"{type(compose).__name__}. Fix: pass build_augmentation(spec)."
            )
        if int(threads) < 1:
            raise KitError(f"expected threads >= 1, got {threads}. Fix: pass threads=1 or more.")
        self.compose, self.threads = compose, int(threads)
        transforms = compose.transforms if compose is not None else []
        self.steps = [(t, *_kernel(t)) for t in transforms]
        self.reseed(seed)

    def reseed(self, seed) -> None:
        """Restart the augmenter's own generator (used by calls that pass no ``rng``)."""
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def sample(self, n: int, rng) -> list[tuple]:
        """Draw the plan for ``n`` images: per transform, ``(transform, applies mask, parameter arrays)``."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        whole = rng.random(n) < (self.compose.p if self.compose is not None else 1.0)
        return [(t, (rng.random(n) < t.p) & whole, sample(t, n, rng), apply) for t, sample, apply in self.steps]

    def __call__(self, images: np.ndarray, rng=None) -> np.ndarray:
        """A new augmented batch; ``rng``: a Generator, a seed, or None for the augmenter's own generator."""
        images = np.asarray(images)
        if images.ndim != 4 or images.dtype != np.uint8:
            raise KitError(
                f"expected a uint8 batch of shape (B, H, W, C), got {images.dtype} {images.shape}. "
                "Fix: stack the images into one uint8 array (np.stack)."
            )
        plan = self.sample(len(images), self._rng if rng is None else rng)
        images, n = np.ascontiguousarray(images), len(images)
        if self.threads == 1 or n < 2 * self.threads:
            return _run(images, plan, 0)
        edges = np.linspace(0, n, self.threads + 1).astype(int)
        parts = _pool(self.threads).map(lambda a, b: _run(images[a:b], plan, a), edges[:-1], edges[1:])
        return np.concatenate(list(parts))

    def __repr__(self) -> str:
        names = [type(t).__name__ for t, _, _ in self.steps]
        return f"BatchAugmenter({names}, seed={self.seed!r}, threads={self.threads})"


def _run(images: np.ndarray, plan, start: int) -> np.ndarray:
    """Execute a sampled plan on the images ``start .. start + len(images)`` of the batch, as a new array.

    Kernels never write into their input and always return a new array, so the caller's batch is copied only
    when the first transform applies to some of its images and not others.
    """
    stop, owned = start + len(images), False
    for t, mask, params, apply in plan:
        rows = np.flatnonzero(mask[start:stop])
        if len(rows) == 0:
            continue
        if len(rows) == len(images):
            images, owned = apply(t, images, **{k: v[start:stop] for k, v in params.items()}), True
            continue
        result = apply(t, images[rows], **{k: v[start:stop][rows] for k, v in params.items()})
        if not owned:
            images, owned = images.copy(), True
        if result.shape[1:] != images.shape[1:]:
            raise KitError(
                f"expected {type(t).__name__} with p={t.p} to keep the image shape "
                f"{images.shape[1:]}, got {result.shape[1:]}. Fix: use p=1.0 for shape-changing "
                "transforms, or square images for rotations."
            )
        images[rows] = result
    return images if owned else images.copy()
