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
