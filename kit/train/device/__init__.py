"""The one place that knows about accelerators and backends: device detection, precision, distribution.

Everything else in kit speaks Keras 3 only, so the engine runs with ``KERAS_BACKEND=tensorflow`` (default), ``jax``
or ``torch``. Precision: GPU -> ``mixed_float16``, TPU -> ``mixed_bfloat16``, CPU -> ``float32`` (CPUs gain nothing
from half precision). Distribution: TensorFlow: several GPUs -> ``MirroredStrategy``, a TPU -> ``TPUStrategy``, a
``TF_CONFIG`` naming several workers -> ``MultiWorkerMirroredStrategy``; JAX: several devices -> Keras'
``DataParallel``; torch: one device (Keras' torch backend trains on ``cuda:0``).

Several machines (TensorFlow, ``TF_CONFIG``): ``kit.train.device.multi_worker``; ``detect_device`` creates its strategy
before any TensorFlow op runs.

Example:
    >>> from kit.train.device import precision_for
    >>> precision_for("gpu"), precision_for("tpu"), precision_for("cpu")
    ('mixed_float16', 'mixed_bfloat16', 'float32')
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import keras

from kit.config import PRECISIONS
from kit.errors import KitError
from kit.train.device.multi_worker import cluster_from_tf_config, multi_worker_strategy

__all__ = [
    "Device",
    "detect_device",
    "precision_for",
    "set_precision",
    "distribution_scope",
    "batch_multiple",
    "value_and_grad",
    "PRECISIONS",
]


@dataclasses.dataclass(frozen=True)
class Device:
    """What training runs on: ``kind`` is cpu, gpu or tpu; ``count`` how many of them (on this machine); ``names``
    for env.json; ``workers`` the machines training together (``TF_CONFIG``), ``worker`` this one's rank among them
    and ``chief`` whether it writes the run folder."""

    kind: str
    count: int
    names: tuple[str, ...]
    backend: str
    workers: int = 1
    worker: int = 0
    chief: bool = True


def detect_device() -> Device:
    """This machine's accelerators, and the cluster ``TF_CONFIG`` names; call it before any TensorFlow op runs."""
    backend = keras.backend.backend()
    cluster = cluster_from_tf_config(os.environ.get("TF_CONFIG"))
    if cluster is not None and backend != "tensorflow":
        raise KitError(
            f"expected KERAS_BACKEND tensorflow for training on the {cluster.workers} workers TF_CONFIG names, got "
            f"{backend!r}. Fix: KERAS_BACKEND=tensorflow, or unset TF_CONFIG to train on one machine."
        )
    if backend == "jax":
        import jax

        devices = jax.devices()
        kind = devices[0].platform  # cpu | gpu | tpu
        return Device(kind, len(devices), tuple(str(d) for d in devices), backend)
    if backend == "torch":
        import torch

        if torch.cuda.is_available():  # Keras' torch backend places everything on cuda:0
            return Device("gpu", 1, (torch.cuda.get_device_name(0),), backend)
        return Device("cpu", 1, ("CPU",), backend)
    if backend != "tensorflow":
        raise KitError(f"expected KERAS_BACKEND tensorflow, jax or torch, got {backend!r}. Fix: set KERAS_BACKEND.")
    import tensorflow as tf

    if cluster is None and _tpu_resolver() is not None:
        return Device("tpu", len(tf.config.list_logical_devices("TPU")) or 8, ("TPU",), backend)
    gpus = tf.config.list_physical_devices("GPU")  # physical devices: the runtime is not initialised yet
    for gpu in gpus:  # let several processes or kit steps share a GPU instead of grabbing all its memory
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)
    names = tuple(g.name for g in gpus) or ("CPU",)
    device = Device("gpu" if gpus else "cpu", len(gpus) or 1, names, backend)
    if cluster is None:
        return device
    multi_worker_strategy()  # now: its collectives must be configured before TensorFlow's runtime starts
    return dataclasses.replace(device, workers=cluster.workers, worker=cluster.rank, chief=cluster.chief)


def precision_for(kind: str) -> str:
    return {"gpu": "mixed_float16", "tpu": "mixed_bfloat16"}.get(kind, "float32")


def set_precision(setting: str, device: Device) -> str:
    """Apply ``setting`` (auto or a policy name) as Keras' global dtype policy; return the policy used."""
    policy = precision_for(device.kind) if setting == "auto" else setting
    if policy not in PRECISIONS:
        raise KitError(
            f"expected train.precision auto or one of {', '.join(PRECISIONS)}; got {setting!r}. "
            "Fix: --set train.precision=auto."
        )
    keras.mixed_precision.set_global_policy(policy)
    return policy


def distribution_scope(device: Device):
    """A factory of contexts to build and compile models in: the right strategy for several GPUs or a TPU.

    Call once per run (a TPU is initialised here) and enter ``scope()`` for each model.
    """
    if device.backend == "jax":
        if device.count > 1:
            keras.distribution.set_distribution(keras.distribution.DataParallel())
        return contextlib.nullcontext
    if device.backend == "torch":
        return contextlib.nullcontext
    import tensorflow as tf

    if device.workers > 1:
        return multi_worker_strategy().scope
    if device.kind == "tpu":
        resolver = _tpu_resolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver).scope
    if device.kind == "gpu" and device.count > 1:
        return tf.distribute.MirroredStrategy().scope
    return contextlib.nullcontext


def batch_multiple(device: Device, batch_size: int) -> int:
    """How many equal parts each batch is split into: JAX's ``DataParallel`` puts one on every device, so a batch
    must divide evenly (and a short last validation batch is padded); TensorFlow's strategies and torch need none.

    Example:
        >>> batch_multiple(Device("gpu", 2, ("gpu:0", "gpu:1"), "jax"), 64)
        2
    """
    multiple = device.count if device.backend == "jax" and device.count > 1 else 1
    if int(batch_size) % multiple:
        fix = max(multiple, round(int(batch_size) / multiple) * multiple)
        raise KitError(
            f"expected data.batch_size divisible by the {multiple} devices JAX trains on in parallel, got "
            f"{batch_size}. Fix: --set data.batch_size={fix}."
        )
    return multiple


def value_and_grad(fn, x):
    """``fn(x)`` (a scalar) and its gradient with respect to the array ``x``, as numpy, on the active backend.

    ``fn`` takes a backend tensor and returns a scalar tensor built from Keras ops or layer calls (call layers
    with ``training=False`` to differentiate inference). TensorFlow uses ``tf.GradientTape``, JAX ``jax.grad``
    and torch autograd; the rest of kit (e.g. ``kit.report.gradcam``) stays backend-free by calling this.

    Example:
        >>> import numpy as np
        >>> value, grad = value_and_grad(lambda t: keras.ops.sum(t * t), np.array([1.0, 2.0], "float32"))
        >>> float(value), grad.tolist()
        (5.0, [2.0, 4.0])
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensor = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            value = fn(tensor)
        grad = tape.gradient(value, tensor)
        if grad is None:  # fn does not depend on x
            grad = tf.zeros_like(tensor)
    elif backend == "jax":
        import jax

        value, grad = jax.value_and_grad(fn)(keras.ops.convert_to_tensor(x))
    elif backend == "torch":
        import torch

        tensor = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        value = fn(tensor)
        (grad,) = torch.autograd.grad(value, tensor, allow_unused=True)
        if grad is None:
            grad = torch.zeros_like(tensor)
        value = value.detach()
    else:
        raise KitError(f"expected KERAS_BACKEND tensorflow, jax or torch, got {backend!r}. Fix: set KERAS_BACKEND.")
    return keras.ops.convert_to_numpy(value), keras.ops.convert_to_numpy(grad)


def _tpu_resolver():
    # Kaggle and Colab TPU VMs announce themselves; probing a resolver elsewhere is slow, so only try there.
    if not (os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR") or os.path.exists("/dev/accel0")):
        return None
    import tensorflow as tf

    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver()
    except (ValueError, RuntimeError):
        return None
