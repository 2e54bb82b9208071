"""The configured network: a ``[model]`` section -> an uncompiled Keras model.

Training builds it for each fold and prediction rebuilds the same one to load the fold's weights. It takes the
section's values (``kit.config.ModelConfig`` or anything with the same attributes), not the whole
configuration, so the models stage does not depend on the config stage.

Example:
    >>> from kit.config import ModelConfig
    >>> model = build_model(ModelConfig(backbone="tiny_cnn"), (96, 96, 3))  # doctest: +SKIP
    >>> model.output_shape  # doctest: +SKIP
    (None, 1)
"""

from __future__ import annotations

import keras

from kit.metrics import n_outputs
from kit.models.registry import create_model

__all__ = ["build_model", "build_task_model"]

_HEADS = {"binary": "sigmoid", "multiclass": "softmax", "multilabel": "sigmoid"}


def build_model(model_cfg, image_shape, outputs: int = 1, activation: str = "sigmoid", augment=()) -> keras.Model:
    """The network ``model_cfg`` describes (backbone, weights, dropout, crop, resize, pool), uncompiled, with a head
    of ``outputs`` units (binary: 1 sigmoid; multiclass: one softmax unit per class; multilabel: sigmoids).

    Empty ``weights`` and zero ``crop``/``resize`` mean none; ``augment``: training-only layers in front.
    """
    m = model_cfg
    return create_model(
        m.backbone,
        input_shape=tuple(image_shape),
        weights=m.weights or None,
        dropout=m.dropout,
        crop=m.crop or None,
        resize=m.resize or None,
        pool=m.pool,
        outputs=outputs,
        activation=activation,
        augment=augment,
    )


def build_task_model(model_cfg, image_shape, task: str, classes, augment=()) -> keras.Model:
    """``build_model`` with the head ``task`` needs: 1 sigmoid (binary), a softmax over ``classes`` (multiclass) or
    one sigmoid per class (multilabel). Training builds each fold's network with it; prediction rebuilds the same.

    Example:
        >>> cfg = ModelConfig(backbone="tiny_cnn")  # doctest: +SKIP
        >>> model = build_task_model(cfg, (32, 32, 3), "multiclass", "abc")  # doctest: +SKIP
        >>> model.output_shape  # doctest: +SKIP
        (None, 3)
    """
    return build_model(model_cfg, image_shape, n_outputs(task, classes), _HEADS[task], augment)
