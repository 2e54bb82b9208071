"""The backbone registry: ``@register_backbone`` adds a feature extractor, ``create_model`` wraps it in a head.

A backbone builder is ``fn(input_shape, weights) -> keras.Model``: it takes float pixels in 0..255, does its own
preprocessing and loads its own weights file, so every model of kit is fed the same uint8 batches and a run's
config only has to name the backbone.

Example:
    >>> from kit.models import create_model, list_backbones
    >>> "compact_cnn" in list_backbones()
    True
    >>> create_model("tiny_cnn", input_shape=(32, 32, 3)).output_shape
    (None, 1)
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
from keras import layers

from kit.errors import KitError

__all__ = [
    "register_backbone",
    "list_backbones",
    "create_model",
    "set_backbone_trainable",
    "is_pretrainable",
    "load_weights_file",
]


@dataclasses.dataclass(frozen=True)
class _Backbone:
    builder: Callable[..., keras.Model]
    pretrainable: bool
    weights_file: str | None  # the ImageNet file keras.applications would download, named in errors


_BACKBONES: dict[str, _Backbone] = {}


def register_backbone(name: str, pretrainable: bool = False, weights_file: str | None = None):
    """Decorator registering ``fn(input_shape, weights) -> keras.Model`` under ``name`` (timm style).

    Args:
        name: the name configs and ``create_model`` use.
        pretrainable: True when published (ImageNet) weights exist, so training warms up a frozen backbone.
        weights_file: file name of those weights as keras would download them, quoted in error messages.

    Example:
        >>> @register_backbone("my_net")  # doctest: +SKIP
        ... def my_net(input_shape, weights=None):
        ...     inputs = keras.Input(input_shape)
        ...     return keras.Model(inputs, keras.layers.Conv2D(8, 3)(keras.layers.Rescaling(1 / 255)(inputs)))
    """

    def decorate(fn):
        if name in _BACKBONES:
            raise KitError(
                f"expected a new backbone name, got {name!r}, which is already registered. Fix: pick another name."
            )
        _BACKBONES[name] = _Backbone(fn, pretrainable, weights_file)
        return fn

    return decorate


def list_backbones() -> list[str]:
    """Registered backbone names, sorted."""
    return sorted(_BACKBONES)


def is_pretrainable(name: str) -> bool:
    """Whether published weights exist for backbone ``name`` (then training may freeze it first)."""
    return _lookup(name).pretrainable


def _lookup(name: str) -> _Backbone:
    if name not in _BACKBONES:
        raise KitError(
            f"unknown backbone {name!r}; known: {', '.join(list_backbones())}. "
            "Fix: --set model.backbone=<one of these>."
        )
    return _BACKBONES[name]


POOLS = ("avg", "avg_max", "avg_centre")
HEADS = ("sigmoid", "softmax")


def create_model(
    name: str,
    input_shape=(96, 96, 3),
    weights=None,
    dropout: float = 0.3,
    crop=None,
    resize=None,
    pool: str = "avg",
    outputs: int = 1,
    activation: str = "sigmoid",
    augment=(),
) -> keras.Model:
    """Backbone ``name`` behind optional crop/resize, with global pooling, dropout and a float32 head.

    Args:
        name: a registered backbone (``list_backbones()``).
        input_shape: stored image shape; the model takes uint8 or float batches of it, values 0..255.
        weights: None (random init) or a local weights file; never downloaded (see ``kit.models.applications``).
        dropout: dropout rate before the head (0 for none).
        crop: keep only the centre ``crop`` x ``crop`` pixels (cheaper; PCam labels concern the centre).
        resize: resize to ``resize`` x ``resize`` after cropping (e.g. upscale for ImageNet networks).
        pool: "avg" (global average), "avg_max" (average and max, concatenated) or "avg_centre" (global average
            and the average of the feature map's middle third, concatenated: tells the head *where* a feature
            is, which global pooling loses; PCam labels concern the centre 32x32 of 96x96).
        outputs, activation: the head: 1 "sigmoid" unit (binary), one "softmax" unit per class (multiclass) or
            one "sigmoid" unit per label (multilabel).
        augment: layers applied to the stored image first, active only in training (``kit.train.model_augment``);
            they hold no weights, so the same model built without them loads the trained weights.

    Example:
        >>> model = create_model("tiny_cnn", input_shape=(96, 96, 3), crop=64)
        >>> model.get_layer("backbone").input.shape
        (None, 64, 64, 3)
    """
    entry = _lookup(name)
    if activation not in HEADS or int(outputs) < 1 or (activation == "softmax" and int(outputs) < 2):
        raise KitError(
            f"expected a head of sigmoid units (1 or more) or softmax units (2 or more), got {outputs} "
            f"{activation!r}. Fix: e.g. create_model(..., outputs=len(classes), activation='softmax')."
        )
    if pool not in POOLS:
        raise KitError(f"expected model.pool one of {', '.join(POOLS)}; got {pool!r}. Fix: --set model.pool=avg.")
    input_shape = _check_shape(input_shape, crop, resize)
    weights = _check_weights(name, entry, weights)
    if not 0 <= dropout < 1:
        raise KitError(f"expected dropout in [0, 1), got {dropout}. Fix: --set model.dropout=0.3.")
    # float32 input, so uint8 numpy batches are cast on the way in (cheap, and keeps the loader's memory small)
    inputs = keras.Input(input_shape, dtype="float32", name="image")
    x = inputs
    for layer in augment:
        x = layer(x)
    if crop:
        x = layers.CenterCrop(int(crop), int(crop), name="centre_crop")(x)
    if resize:
        x = layers.Resizing(int(resize), int(resize), name="resize")(x)
    backbone = entry.builder(tuple(x.shape[1:]), weights)
    backbone.name = "backbone"  # two-phase fine-tuning and weight surgery find it by this name
    x = backbone(x)
    if len(x.shape) == 4:
        x = _pool(x, pool)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    # float32 output under mixed precision: a float16 sigmoid or softmax saturates and breaks the loss and score
    head = layers.Dense(outputs, activation=activation, dtype="float32", name="head")(x)
    return keras.Model(inputs, head, name=name)


def _pool(x, pool: str):
    """Feature map (N, H, W, C) -> (N, C) or (N, 2C); built from stock layers so saved models reload safely."""
    average = layers.GlobalAveragePooling2D(name="pool")(x)
    if pool == "avg":
        return average
    if pool == "avg_max":
        return layers.Concatenate(name="pool_concat")([average, layers.GlobalMaxPooling2D(name="pool_max")(x)])
    h, w = x.shape[1], x.shape[2]
    keep_h, keep_w = max(1, round(h / 3)), max(1, round(w / 3))
    top, left = (h - keep_h) // 2, (w - keep_w) // 2
    centre = layers.Cropping2D(((top, h - keep_h - top), (left, w - keep_w - left)), name="centre_cells")(x)
    centre = layers.GlobalAveragePooling2D(name="pool_centre")(centre)
    return layers.Concatenate(name="pool_concat")([average, centre])


def set_backbone_trainable(model: keras.Model, trainable: bool) -> None:
    """Freeze (False) or unfreeze the layer named "backbone", for two-phase fine-tuning.

    Keras 3 runs frozen BatchNorm layers in inference mode, so a warm-up does not wreck pretrained statistics.
    Compile the model again after calling this: the optimizer captures the trainable weights at compile time.

    Example:
        >>> model = create_model("tiny_cnn", input_shape=(32, 32, 3))
        >>> set_backbone_trainable(model, False); len(model.trainable_weights)  # the head's kernel and bias
        2
    """
    model.get_layer("backbone").trainable = bool(trainable)


def load_weights_file(path: str, targets: dict[str, keras.Model]) -> None:
    """Load ``path`` into the first of ``targets`` (description -> model) it matches; KitError if none does.

    Builders pass several targets so one ``weights=`` accepts both the file keras.applications publishes and
    weights saved from kit's own backbone (``model.get_layer("backbone").save_weights("b.weights.h5")``).

    Example:
        >>> load_weights_file("b.weights.h5", {"compact_cnn backbone": model})  # doctest: +SKIP
    """
    errors = []
    for label, target in targets.items():
        # a layout that does not match warns once per layer before it raises: keep those out of the user's log
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                target.load_weights(path)
            except (ValueError, KeyError, OSError) as error:  # keras raises ValueError on a structure mismatch
                errors.append(f"as {label}: {str(error).splitlines()[0]}")
                continue
        for warning in caught:  # a successful load's warnings are the user's business
            warnings.warn(warning.message, warning.category, stacklevel=2)
        return
    raise KitError(
        f"could not load weights file {path} ({'; '.join(errors)}). Fix: pass the no-top file "
        "keras.applications publishes for this network, or one saved with "
        "model.get_layer('backbone').save_weights('x.weights.h5') from the same backbone."
    )


def _check_shape(input_shape, crop, resize) -> tuple[int, int, int]:
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise KitError(f"expected input_shape (height, width, channels), got {input_shape!r}. Fix: e.g. (96, 96, 3).")
    if crop and not 0 < int(crop) <= min(shape[:2]):
        raise KitError(
            f"expected crop between 1 and {min(shape[:2])} for {shape[0]}x{shape[1]} images, got {crop}."
            " Fix: --set model.crop=0 (no crop) or a smaller size."
        )
    if resize and int(resize) < 1:
        raise KitError(f"expected resize >= 1, got {resize}. Fix: --set model.resize=0 (no resize).")
    return shape


def _check_weights(name: str, entry: _Backbone, weights):
    # checked before building: a typo should not cost the seconds DenseNet takes to build
    if weights in (None, ""):
        return None
    file_name = entry.weights_file or f"a file saved from a trained {name} backbone"
    if weights == "imagenet" and not entry.weights_file:
        raise KitError(
            f"weights='imagenet' for {name}: it has no published weights and trains from scratch. "
            "Fix: drop model.weights, or pick a pretrainable backbone "
            f"({', '.join(n for n in list_backbones() if _BACKBONES[n].pretrainable)})."
        )
    if weights == "imagenet":
        raise KitError(
            f"weights='imagenet' for {name}: kit never downloads weights at run time (Kaggle notebooks "
            f"have no internet). Fix: attach the file keras would download ({file_name}) as a Kaggle "
            f"dataset and pass its path, e.g. --set model.weights=/kaggle/input/<dataset>/{file_name}"
        )
    if not Path(weights).is_file():
        raise KitError(
            f"expected a weights file at {weights}, found nothing. Fix: check model.weights (on Kaggle, "
            f"the path under /kaggle/input of the attached dataset holding {file_name})."
        )
    return str(weights)
