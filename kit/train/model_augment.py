"""Training augmentation as Keras layers inside the model (``augment.on = "model"``): it runs in the training step
on the accelerator, random per image, so a few CPU cores feeding a fast GPU no longer bound it.

The same declared pipeline as the CPU path (albumentations names and ranges) becomes layers that draw what
albumentations draws: ``RandomDihedral`` for D4, SquareSymmetry, RandomRotate90, HorizontalFlip, VerticalFlip and
Transpose (exactly ``kit.train.augment.dihedral``'s views), ``RandomHueSaturationValue`` and
``RandomBrightnessContrast`` (OpenCV's uint8 HSV units and albumentations' alpha/beta, in float). The layers act
only when ``training`` is true, and hold no weights: inference builds the model without them and loads the same
weights file. Any other transform stays on the CPU path (``model_augmentation`` says so before a run starts).

Example:
    >>> layers = model_augmentation([{"name": "D4", "p": 1.0}], seed=0)
    >>> [type(layer).__name__ for layer in layers]
    ['RandomDihedral']
"""

from __future__ import annotations

import keras
from keras import ops

from kit.errors import KitError
from kit.train.augment import D4_ELEMENTS, build_augmentation

__all__ = [
    "model_augmentation",
    "dihedral_ops",
    "RandomDihedral",
    "RandomHueSaturationValue",
    "RandomBrightnessContrast",
]

_ELEMENTS = {  # albumentations transform -> the D4 elements (kit.train.augment.D4_ELEMENTS) it draws from, uniformly
    "D4": tuple(range(8)),
    "SquareSymmetry": tuple(range(8)),
    "RandomRotate90": (0, 1, 2, 3),
    "VerticalFlip": (D4_ELEMENTS.index("v"),),
    "HorizontalFlip": (D4_ELEMENTS.index("h"),),
    "Transpose": (D4_ELEMENTS.index("t"),),
}


def model_augmentation(spec, seed: int = 0) -> list[keras.layers.Layer]:
    """The layers for a declared pipeline (a spec list, as ``augment.train``, or a Compose), in order.

    Raises a KitError naming the transforms that have no layer (use ``augment.on = "cpu"`` for those).
    """
    compose = build_augmentation(spec) if isinstance(spec, (list, tuple)) else spec
    transforms = [] if compose is None else list(compose.transforms)
    supported = [*_ELEMENTS, "HueSaturationValue", "RandomBrightnessContrast"]
    unknown = sorted({type(t).__name__ for t in transforms} - set(supported))
    if unknown:
        raise KitError(
            f"expected augment.train transforms that run as model layers ({', '.join(supported)}) with augment.on = "
            f'"model", got {", ".join(unknown)}. Fix: --set augment.on=cpu, or drop those transforms.'
        )
    layers = []
    for i, t in enumerate(transforms):
        name, common = type(t).__name__, dict(p=float(t.p), seed=seed * 100 + i, name=f"augment_{i}")
        if name in _ELEMENTS:
            layers.append(RandomDihedral(_ELEMENTS[name], **common))
        elif name == "HueSaturationValue":
            limits = (t.hue_shift_limit, t.sat_shift_limit, t.val_shift_limit)
            layers.append(RandomHueSaturationValue(*[tuple(map(float, lim)) for lim in limits], **common))
        else:
            layers.append(
                RandomBrightnessContrast(
                    tuple(map(float, t.brightness_limit)),
                    tuple(map(float, t.contrast_limit)),
                    bool(t.brightness_by_max),
                    bool(t.ensure_safe_range),
                    **common,
                )
            )
    return layers


def dihedral_ops(images, k):
    """Element ``k[i]`` (0..7, ``kit.train.augment.D4_ELEMENTS``) on image i of a (B, H, W, C) tensor.

    Example:
        >>> import numpy as np
        >>> x = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
        >>> ops.convert_to_numpy(dihedral_ops(x, np.array([1])))[0, :, :, 0].tolist()
        [[1.0, 3.0], [0.0, 2.0]]
    """
    k = ops.reshape(ops.convert_to_tensor(k, "int32"), (-1, 1, 1, 1))
    x = ops.where(k >= 4, ops.flip(images, 1), images)  # vertical flip first, then the rotation (D4_ELEMENTS)
    r = k % 4
    half = ops.flip(ops.flip(x, 1), 2)
    if images.shape[1] != images.shape[2]:  # only the 180-degree turn keeps a non-square shape
        return ops.where(r == 2, half, x)
    quarter = ops.flip(ops.swapaxes(x, 1, 2), 1)  # np.rot90(x, 1, axes=(1, 2))
    three_quarters = ops.flip(ops.swapaxes(x, 1, 2), 2)
    return ops.where(r == 1, quarter, ops.where(r == 2, half, ops.where(r == 3, three_quarters, x)))


class _RandomPerImage(keras.layers.Layer):
    """A weightless layer that, in training, applies ``augment`` to each image with probability ``p``."""

    def __init__(self, p: float = 1.0, seed: int = 0, **kwargs):
        kwargs.setdefault("dtype", "float32")  # pixel values 0..255 need float32 even under mixed precision
        super().__init__(**kwargs)
        self.p, self.seed = float(p), int(seed)
        self.generator = keras.random.SeedGenerator(self.seed)

    def call(self, images, training=None):
        if not training:
            return images
        batch = ops.shape(images)[0]
        applies = keras.random.uniform((batch,), seed=self.generator) < self.p
        changed = self.augment(images, batch)
        return ops.where(ops.reshape(applies, (-1, 1, 1, 1)), changed, images)

    def uniform(self, batch, limits):
        """One draw per image from [low, high], shaped to broadcast over (B, H, W, C)."""
        draw = keras.random.uniform((batch,), limits[0], limits[1], seed=self.generator)
        return ops.reshape(draw, (-1, 1, 1, 1))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "p": self.p, "seed": self.seed}


@keras.saving.register_keras_serializable(package="kit")
class RandomDihedral(_RandomPerImage):
    """One of ``elements`` (D4 element numbers), uniformly, per image: D4, flips, quarter turns, transpose."""

    def __init__(self, elements=tuple(range(8)), **kwargs):
        super().__init__(**kwargs)
        self.elements = tuple(int(e) for e in elements)

    def build(self, input_shape):
        odd = [D4_ELEMENTS[e] for e in self.elements if e % 2]
        if odd and input_shape[1] != input_shape[2]:
            raise KitError(
                f"expected square images for the dihedral views {odd}, got {input_shape[1]}x{input_shape[2]}. "
                "Fix: use HorizontalFlip/VerticalFlip, or crop to a square first."
            )

    def augment(self, images, batch):
        pick = keras.random.randint((batch,), 0, len(self.elements), seed=self.generator)
        k = ops.take(ops.convert_to_tensor(self.elements, "int32"), pick)
        return dihedral_ops(images, k)

    def get_config(self):
        return {**super().get_config(), "elements": list(self.elements)}


@keras.saving.register_keras_serializable(package="kit")
class RandomHueSaturationValue(_RandomPerImage):
    """albumentations' HueSaturationValue on 0..255 RGB: shifts in OpenCV's uint8 HSV units (hue of 180)."""

    def __init__(self, hue_shift_limit=(-20, 20), sat_shift_limit=(-30, 30), val_shift_limit=(-20, 20), **kwargs):
        super().__init__(**kwargs)
        limits = (hue_shift_limit, sat_shift_limit, val_shift_limit)
        self.limits = tuple(tuple(float(v) for v in limit) for limit in limits)

    def build(self, input_shape):
        if input_shape[-1] != 3:
            raise KitError(
                f"expected RGB images (3 channels) for HueSaturationValue, got {input_shape[-1]} channel(s). "
                "Fix: drop HueSaturationValue from augment.train, or --set augment.on=cpu."
            )

    def augment(self, images, batch):
        hue, sat, val = (self.uniform(batch, lim) for lim in self.limits)
        hsv = ops.image.rgb_to_hsv(images / 255.0)
        h = (hsv[..., :1] + hue / 180.0) % 1.0
        # albumentations adds whole units (it truncates the shift) and leaves grey pixels grey
        s = ops.where(hsv[..., 1:2] > 0, ops.clip(hsv[..., 1:2] + ops.trunc(sat) / 255.0, 0.0, 1.0), 0.0)
        v = ops.clip(hsv[..., 2:] + ops.trunc(val) / 255.0, 0.0, 1.0)
        return ops.image.hsv_to_rgb(ops.concatenate([h, s, v], axis=-1)) * 255.0

    def get_config(self):
        hue, sat, val = self.limits
        return {**super().get_config(), "hue_shift_limit": hue, "sat_shift_limit": sat, "val_shift_limit": val}


@keras.saving.register_keras_serializable(package="kit")
class RandomBrightnessContrast(_RandomPerImage):
    """albumentations' RandomBrightnessContrast on 0..255: ``clip(x * (1 + contrast) + beta)`` per image."""

    def __init__(
        self,
        brightness_limit=(-0.2, 0.2),
        contrast_limit=(-0.2, 0.2),
        brightness_by_max: bool = True,
        ensure_safe_range: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.brightness_limit = tuple(float(v) for v in brightness_limit)
        self.contrast_limit = tuple(float(v) for v in contrast_limit)
        self.brightness_by_max, self.ensure_safe_range = bool(brightness_by_max), bool(ensure_safe_range)

    def augment(self, images, batch):
        alpha = 1.0 + self.uniform(batch, self.contrast_limit)
        brightness = self.uniform(batch, self.brightness_limit)
        if self.brightness_by_max:
            beta = brightness * 255.0
        else:
            beta = brightness * ops.mean(images, axis=(1, 2, 3), keepdims=True)
        if self.ensure_safe_range:  # albumentations' get_safe_brightness_contrast_params, per image
            safe_beta = ops.where(alpha > 0, ops.clip(beta, 0.0, 255.0), ops.minimum(beta, 255.0))
            alpha = ops.where(
                alpha > 0, ops.minimum(alpha, (255.0 - safe_beta) / 255.0), ops.maximum(alpha, -safe_beta / 255.0)
            )
            beta = safe_beta
        return ops.floor(ops.clip(images * alpha + beta, 0.0, 255.0))  # as albumentations' uint8 table truncates

    def get_config(self):
        return {
            **super().get_config(),
            "brightness_limit": self.brightness_limit,
            "contrast_limit": self.contrast_limit,
            "brightness_by_max": self.brightness_by_max,
            "ensure_safe_range": self.ensure_safe_range,
        }
