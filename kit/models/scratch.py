"""From-scratch networks: a tiny one for tests and a compact one that trains well at 96x96 on CPU and GPU.

Both rescale 0..255 pixels to 0..1 themselves. A ``weights`` file (saved with
``model.get_layer("backbone").save_weights("b.weights.h5")``) initialises them, e.g. from an earlier run.

Example:
    >>> from kit.models import create_model
    >>> 300_000 < create_model("compact_cnn").count_params() < 1_500_000
    True
"""

from __future__ import annotations

import keras
from keras import layers

from kit.models.registry import load_weights_file, register_backbone

__all__ = ["tiny_cnn", "compact_cnn"]


def _conv_bn_relu(x, filters, strides=1):
    # no conv bias: the BatchNorm shift that follows makes it redundant
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    # momentum 0.9, not Keras' 0.99: with a few dozen steps per epoch the moving statistics must keep up with
    # the weights, or validation (inference-mode BN) scores near 0.5 for many epochs while training is fine.
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.ReLU()(x)


def _finish(inputs, outputs, name, weights) -> keras.Model:
    model = keras.Model(inputs, outputs, name=name)
    if weights:
        load_weights_file(weights, {f"{name} backbone": model})
    return model


@register_backbone("tiny_cnn")
def tiny_cnn(input_shape, weights=None) -> keras.Model:
    """Two stride-2 conv stages (8, 16 filters): ~1.5k parameters, for tests and CPU smoke runs.

    Example:
        >>> tiny_cnn((32, 32, 3)).output_shape
        (None, 8, 8, 16)
    """
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(1 / 255)(inputs)
    for filters in (8, 16):
        x = _conv_bn_relu(x, filters, strides=2)
    return _finish(inputs, x, "tiny_cnn", weights)


@register_backbone("compact_cnn")
def compact_cnn(input_shape, weights=None) -> keras.Model:
    """VGG-style conv-BN-ReLU stages (32-64-128-256 filters, two convs each) behind a stride-2 stem; 1.18M params.

    A plain CNN spends most of its time on its full-resolution stage. The stride-2 stem halves the resolution
    first, which cuts the multiply-adds ~3.4x (140M vs 475M per 96x96 image) for the same parameters and depth.
    Training ran ~4x faster than the same stages without the stem (docs/benchmarks.md).

    Example:
        >>> compact_cnn((96, 96, 3)).output_shape
        (None, 6, 6, 256)
    """
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(1 / 255)(inputs)
    x = _conv_bn_relu(x, 32, strides=2)
    for stage, filters in enumerate((32, 64, 128, 256)):
        x = _conv_bn_relu(x, filters)
        x = _conv_bn_relu(x, filters)
        if stage < 3:  # the last stage feeds global pooling directly
            x = layers.MaxPooling2D()(x)
    return _finish(inputs, x, "compact_cnn", weights)
