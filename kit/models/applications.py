"""keras.applications backbones with their own preprocessing; ImageNet weights only from a local file.

Preprocessing is written with Keras layers (no ``tf`` ops), so it runs on every backend, and reproduces each
network's ``preprocess_input``: "caffe" = RGB->BGR minus the ImageNet means (ResNet50, VGG16), "torch" =
ImageNet mean/std (DenseNet169), "tf" = scale to [-1, 1] (Xception); EfficientNetB0 rescales itself.

``weights`` takes the no-top file keras.applications would download (e.g.
``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``; on Kaggle, attach it as a dataset) or a file saved
from kit's backbone with ``model.get_layer("backbone").save_weights("b.weights.h5")``.

Example:
    >>> from kit.models import create_model
    >>> create_model("resnet50", input_shape=(32, 32, 3)).get_layer("backbone").layers[-1].name
    'resnet50'
"""

from __future__ import annotations

import keras
from keras import layers

from kit.errors import KitError
from kit.models.registry import load_weights_file, register_backbone

__all__ = ["APPLICATIONS", "ChannelFlip", "preprocessing"]

_MEAN = [0.485, 0.456, 0.406]
_STD = [0.229, 0.224, 0.225]
_CAFFE_MEAN_BGR = [103.939, 116.779, 123.68]


@keras.saving.register_keras_serializable(package="kit")
class ChannelFlip(layers.Layer):
    """Reverse the channel axis (RGB -> BGR) for caffe-style networks.

    A layer without weights, so unfreezing the backbone cannot make it trainable (a fixed 1x1 convolution would).
    """

    def call(self, inputs):
        return keras.ops.flip(inputs, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape


def preprocessing(mode: str) -> keras.Sequential:
    """Layers mapping 0..255 RGB to what a network of ``mode`` ("caffe", "torch", "tf", "none") expects.

    Example:
        >>> import numpy as np
        >>> preprocessing("tf")(np.array([[[[0.0, 127.5, 255.0]]]])).numpy().ravel().tolist()
        [-1.0, 0.0, 1.0]
    """
    steps = {
        "caffe": [ChannelFlip(), layers.Normalization(mean=_CAFFE_MEAN_BGR, variance=[1.0, 1.0, 1.0])],
        # (x/255 - mean)/std written as one Normalization over 0..255 values
        "torch": [layers.Normalization(mean=[m * 255 for m in _MEAN], variance=[(s * 255) ** 2 for s in _STD])],
        "tf": [layers.Rescaling(1 / 127.5, offset=-1.0)],
        "none": [layers.Identity()],  # the network rescales itself; the layer keeps every backbone alike
    }
    if mode not in steps:
        raise KitError(f"expected a preprocessing mode, one of {', '.join(steps)}; got {mode!r}. Fix: use one of them.")
    return keras.Sequential(steps[mode], name="preprocess")


# name -> (keras.applications constructor, preprocessing mode, file keras would download, smallest input side)
APPLICATIONS = {
    "densenet169": (
        keras.applications.DenseNet169,
        "torch",
        "densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5",
        32,
    ),
    "resnet50": (keras.applications.ResNet50, "caffe", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", 32),
    "efficientnet_b0": (keras.applications.EfficientNetB0, "none", "efficientnetb0_notop.h5", 32),
    "xception": (keras.applications.Xception, "tf", "xception_weights_tf_dim_ordering_tf_kernels_notop.h5", 71),
    "vgg16": (keras.applications.VGG16, "caffe", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", 32),
}


def _register(name: str, constructor, mode: str, weights_file: str, min_side: int) -> None:
    @register_backbone(name, pretrainable=True, weights_file=weights_file)
    def build(input_shape, weights=None) -> keras.Model:
        if min(input_shape[:2]) < min_side or input_shape[2] not in (1, 3):
            raise KitError(
                f"{name} needs RGB or grayscale images of at least {min_side}x{min_side}; got input "
                f"{input_shape}. Fix: --set model.resize={max(min_side, 96)} (upscales inside the model)."
            )
        inputs = keras.Input(input_shape)
        # ImageNet filters expect three channels: a grayscale image is fed as gray RGB
        rgb = layers.Concatenate(name="gray_to_rgb")([inputs] * 3) if input_shape[2] == 1 else inputs
        # weights=None here and loaded below, so one path accepts keras' file or kit's saved backbone and a bad
        # file becomes a KitError naming it
        net = constructor(include_top=False, weights=None, input_shape=(*input_shape[:2], 3))
        model = keras.Model(inputs, net(preprocessing(mode)(rgb)), name=name)
        if weights:
            load_weights_file(weights, {f"keras.applications {name}": net, f"kit {name} backbone": model})
        return model

    build.__name__ = name
    build.__doc__ = f"keras.applications {constructor.__name__} without its top, {mode} preprocessing."


for _name, _spec in APPLICATIONS.items():
    _register(_name, *_spec)
