"""The one place that knows about accelerators and backends: device detection, precision, distribution.

Everything else in kit speaks Keras 3 only, so the engine runs with ``KERAS_BACKEND=tensorflow`` (default) or
``jax``. Policy: GPU -> ``mixed_float16``, TPU -> ``mixed_bfloat16``, CPU -> ``float32`` (CPUs gain nothing from
half precision); several GPUs -> ``tf.distribute.MirroredStrategy``, a TPU -> ``TPUStrategy``.

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

__all__ = ["Device", "detect_device", "precision_for", "set_precision", "distribution_scope", "PRECISIONS"]


@dataclasses.dataclass(frozen=True)
class Device:
    """What training runs on: ``kind`` is cpu, gpu or tpu; ``count`` how many of them; ``names`` for env.json."""

    kind: str
    count: int
    names: tuple[str, ...]
    backend: str


def detect_device() -> Device:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        devices = jax.devices()
        kind = devices[0].platform  # cpu | gpu | tpu
        return Device(kind, len(devices), tuple(str(d) for d in devices), backend)
    if backend != "tensorflow":
        raise KitError(f"expected KERAS_BACKEND tensorflow or jax, got {backend!r}. Fix: set KERAS_BACKEND.")
    import tensorflow as tf

    if _tpu_resolver() is not None:
        return Device("tpu", len(tf.config.list_logical_devices("TPU")) or 8, ("TPU",), backend)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        for gpu in gpus:  # let several processes or kit steps share a GPU instead of grabbing all its memory
            with contextlib.suppress(RuntimeError):
                tf.config.experimental.set_memory_growth(gpu, True)
        return Device("gpu", len(gpus), tuple(g.name for g in gpus), backend)
    return Device("cpu", 1, ("CPU",), backend)


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
    import tensorflow as tf

    if device.kind == "tpu":
        resolver = _tpu_resolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver).scope
    if device.kind == "gpu" and device.count > 1:
        return tf.distribute.MirroredStrategy().scope
    return contextlib.nullcontext


def _tpu_resolver():
    # Kaggle and Colab TPU VMs announce themselves; probing a resolver elsewhere is slow, so only try there.
    if not (os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR") or os.path.exists("/dev/accel0")):
        return None
    import tensorflow as tf

    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver()
    except (ValueError, RuntimeError):
        return None
