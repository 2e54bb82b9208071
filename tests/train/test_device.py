import keras
import pytest

from kit.errors import KitError
from kit.train.device import Device, detect_device, precision_for, set_precision


def test_precision_follows_the_accelerator():
    assert [precision_for(k) for k in ("gpu", "tpu", "cpu")] == ["mixed_float16", "mixed_bfloat16", "float32"]


def test_auto_on_this_cpu_machine_is_float32_and_overrides_apply():
    cpu = detect_device()
    assert cpu.kind == "cpu"
    try:
        assert set_precision("auto", cpu) == "float32"
        assert set_precision("auto", Device("gpu", 1, ("GPU:0",), "tensorflow")) == "mixed_float16"
        assert keras.mixed_precision.dtype_policy().name == "mixed_float16"
        assert set_precision("mixed_bfloat16", cpu) == "mixed_bfloat16"
        with pytest.raises(KitError, match="train.precision"):
            set_precision("float8", cpu)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_mixed_precision_model_keeps_a_float32_output():
    from kit.models import create_model

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = create_model("tiny_cnn", input_shape=(32, 32, 3))
        assert model.get_layer("head").compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_value_and_grad_on_the_active_backend():
    import numpy as np

    from kit.train.device import value_and_grad

    x = np.array([[1.0, -2.0, 3.0]], "float32")
    value, grad = value_and_grad(lambda t: keras.ops.sum(t * t), x)
    assert float(value) == 14.0 and isinstance(grad, np.ndarray)
    np.testing.assert_allclose(grad, 2 * x)
    # through a layer: d/dx sum(x W + b) = the row sums of W, for every row of the batch
    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    value, grad = value_and_grad(lambda t: keras.ops.sum(dense(t)), np.repeat(x, 4, axis=0))
    np.testing.assert_allclose(grad, np.tile(dense.kernel.numpy().sum(axis=1), (4, 1)), rtol=1e-6)
    # a function that ignores x has a zero gradient, not None
    _, grad = value_and_grad(lambda t: keras.ops.sum(dense.kernel), x)
    np.testing.assert_array_equal(grad, np.zeros_like(x))
