"""Grad-CAM (Selvaraju et al., 2017): where in an image a kit model found the evidence for a class.

The map comes from the last convolutional feature map, the output of the nested "backbone" sub-model that
``kit.models.create_model`` builds. The model is split there into "image -> feature map" and "feature map ->
class scores" (the pooling, dropout and head layers after the backbone, re-applied in graph order, so every
``model.pool`` variant works). The score is the head's value *before* its sigmoid or softmax, as in the paper
(a saturated probability has no gradient left). Its gradient with respect to the feature map, averaged over
the map's cells, weighs the channels; the ReLU of the weighted sum, upsampled to the image and scaled to
[0, 1] per image, is the map. Gradients come from ``kit.train.device.value_and_grad``, so this module runs on
every Keras backend.

Example:
    >>> import numpy as np
    >>> from kit.models import create_model
    >>> model = create_model("tiny_cnn", input_shape=(32, 32, 3))
    >>> images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    >>> maps = grad_cam(model, images)
    >>> maps.shape, bool(maps.min() >= 0 and maps.max() <= 1)
    ((2, 32, 32), True)
    >>> overlay(images, maps).shape
    (2, 32, 32, 3)
"""

from __future__ import annotations

import dataclasses

import cv2
import keras
import numpy as np

from kit.errors import KitError
from kit.train.device import value_and_grad

__all__ = ["grad_cam", "overlay"]

_SQUASHES = ("sigmoid", "softmax")


@dataclasses.dataclass(frozen=True)
class _Split:
    features: keras.Model  # image -> feature map (N, h, w, C)
    rest: keras.Model  # feature map -> the model's output, or the head's input when ``head`` is set
    head: keras.layers.Dense | None  # a sigmoid/softmax Dense whose pre-activation is the score
    crop: tuple[int, int] | None  # the centre crop (height, width) the backbone sees, if any


def _split(model: keras.Model) -> _Split:
    """Cut ``model`` at the output of its "backbone" layer (the layers after it keep their weights)."""
    try:
        backbone = model.get_layer("backbone")
    except ValueError:
        raise KitError(
            f"expected a kit model with a nested layer named 'backbone', got model {model.name!r} without one. "
            "Fix: build it with kit.models.create_model or load a kit run's model."
        ) from None
    nodes = [node for node in backbone._inbound_nodes if node.operation is backbone]
    if len(nodes) != 1 or len(model.outputs) != 1:
        raise KitError(
            f"expected the backbone called once and one model output, got {len(nodes)} calls and "
            f"{len(model.outputs)} outputs in {model.name!r}. Fix: pass a model built by kit.models.create_model."
        )
    feature = nodes[0].output_tensors[0]
    if len(feature.shape) != 4:
        raise KitError(
            f"expected the backbone to output a feature map (N, H, W, C), got shape {tuple(feature.shape)}. "
            "Fix: Grad-CAM needs a convolutional backbone."
        )
    output = model.outputs[0]
    last = output._keras_history.operation
    head = None
    if isinstance(last, keras.layers.Dense) and getattr(last.activation, "__name__", "") in _SQUASHES:
        head, output = last, last.input  # differentiate the score before the squash
    crop = None
    for layer in model.layers:
        if isinstance(layer, keras.layers.CenterCrop):
            crop = (int(layer.height), int(layer.width))
    return _Split(keras.Model(model.inputs[0], feature), keras.Model(feature, output), head, crop)


def _scores(split: _Split, features):
    """The class scores (N, K) of a feature map: the head's pre-activation or the model's output."""
    x = split.rest(features, training=False)
    if split.head is None:
        return x
    x = keras.ops.matmul(keras.ops.cast(x, split.head.kernel.dtype), split.head.kernel)
    return x + split.head.bias if split.head.use_bias else x


def grad_cam(model: keras.Model, images, class_index=None, batch_size: int = 32) -> np.ndarray:
    """Grad-CAM maps (N, H, W), floats in [0, 1], at the size of ``images`` (N, H, W, C; one image: H, W, C).

    Args:
        model: a kit model (``kit.models.create_model`` or a run's saved model), fed 0..255 pixels.
        images: uint8 or float batch the model takes.
        class_index: the class to explain, an int or one per image; None explains each image's predicted
            class. A binary model's single sigmoid unit is class 0 (the map shows evidence for the positive).
        batch_size: images per forward and backward pass.

    With a centre crop in the model, the map covers the cropped centre and is 0 outside it. A map whose
    weighted sum is nowhere positive is all zeros.
    """
    images = np.asarray(images)
    input_shape = tuple(model.inputs[0].shape[1:])
    if images.shape == input_shape:
        images = images[None]
    if images.ndim == 3 and input_shape[-1] == 1:  # grayscale without its channel axis
        images = images[..., None]
    if images.ndim != 4 or len(input_shape) != 3:
        raise KitError(
            f"expected images (N, H, W, C) for a model taking {input_shape}, got shape {images.shape}. "
            "Fix: pass a batch of the images the model was trained on."
        )
    split = _split(model)
    n, height, width = images.shape[:3]
    classes = None if class_index is None else np.broadcast_to(np.asarray(class_index, dtype=int), (n,))
    maps = np.zeros((n, height, width), dtype=np.float32)
    for start in range(0, n, batch_size):
        batch = images[start : start + batch_size].astype(np.float32)
        features = keras.ops.convert_to_numpy(split.features(batch, training=False))
        scores = keras.ops.convert_to_numpy(_scores(split, features))
        chosen = scores.argmax(axis=1) if classes is None else classes[start : start + len(batch)]
        if chosen.min() < 0 or chosen.max() >= scores.shape[1]:
            raise KitError(
                f"expected class_index in 0..{scores.shape[1] - 1} (the model has {scores.shape[1]} outputs), "
                f"got {sorted(set(chosen.tolist()))}. Fix: pass a valid class index or None (the predicted class)."
            )
        # a backend tensor: torch will not multiply a tensor that tracks gradients by a numpy array
        one_hot = keras.ops.convert_to_tensor(np.eye(scores.shape[1], dtype=np.float32)[chosen])

        def score(f, one_hot=one_hot):
            return keras.ops.sum(keras.ops.cast(_scores(split, f), "float32") * one_hot)

        _, grads = value_and_grad(score, features)
        weights = grads.astype(np.float32).mean(axis=(1, 2), keepdims=True)  # (N, 1, 1, C)
        cams = np.maximum((weights * features.astype(np.float32)).sum(axis=-1), 0.0)
        for i, cam in enumerate(cams):
            maps[start + i] = _to_image(cam, height, width, split.crop)
    return maps


def _to_image(cam: np.ndarray, height: int, width: int, crop) -> np.ndarray:
    """Upsample a cell map to the image (or its centre crop), scaled so its maximum is 1."""
    top = left = 0
    out_h, out_w = height, width
    if crop is not None:
        out_h, out_w = min(crop[0], height), min(crop[1], width)
        top, left = (height - out_h) // 2, (width - out_w) // 2
    full = np.zeros((height, width), dtype=np.float32)
    full[top : top + out_h, left : left + out_w] = cv2.resize(cam, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    peak = float(full.max())
    return np.clip(full / peak, 0.0, 1.0) if peak > 0 else full


def overlay(images, heatmaps, alpha: float = 0.45) -> np.ndarray:
    """Heat maps in [0, 1] coloured (jet) and blended over the images: uint8 RGB (N, H, W, 3).

    ``images`` are (N, H, W, C) with C 1 or 3, or (N, H, W), values 0..255 (grayscale is shown as RGB);
    ``heatmaps`` (N, h, w) are resized to the images; ``alpha`` is the heat map's weight. One image (H, W, C)
    with one map (H, W) works too.
    """
    images, heatmaps = np.asarray(images), np.asarray(heatmaps, dtype=np.float32)
    if heatmaps.ndim == 2:
        heatmaps, images = heatmaps[None], images[None]
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or heatmaps.ndim != 3 or len(images) != len(heatmaps):
        raise KitError(
            f"expected images (N, H, W, 1 or 3) and heat maps (N, H, W), got {images.shape} and {heatmaps.shape}. "
            "Fix: pass grad_cam's output with the images it explains."
        )
    if not 0 <= alpha <= 1:
        raise KitError(f"expected alpha in [0, 1], got {alpha}. Fix: e.g. alpha=0.45.")
    rgb = np.clip(images, 0, 255).astype(np.uint8)
    if rgb.shape[-1] == 1:
        rgb = np.repeat(rgb, 3, axis=-1)
    out = np.empty(rgb.shape, dtype=np.uint8)
    height, width = rgb.shape[1:3]
    for i, heat in enumerate(heatmaps):
        if heat.shape != (height, width):
            heat = cv2.resize(heat, (width, height), interpolation=cv2.INTER_LINEAR)
        heat = np.round(np.clip(np.nan_to_num(heat), 0.0, 1.0) * 255).astype(np.uint8)
        colour = cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
        blended = (1 - alpha) * rgb[i].astype(np.float32) + alpha * colour.astype(np.float32)
        out[i] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return out
