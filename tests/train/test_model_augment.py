"""augment.on = "model": the Keras layers draw what the CPU path (albumentations, BatchAugmenter) draws."""

import keras
import numpy as np
import pytest
from keras import ops

from kit.errors import KitError
from kit.models import create_model
from kit.train.augment import D4_ELEMENTS, build_augmentation, dihedral
from kit.train.batch_augment import BatchAugmenter
from kit.train.model_augment import RandomDihedral, dihedral_ops, model_augmentation

PCAM_COLOUR = [
    {"name": "HueSaturationValue", "hue_shift_limit": 8, "sat_shift_limit": 12, "val_shift_limit": 8, "p": 0.5},
    {"name": "RandomBrightnessContrast", "brightness_limit": 0.1, "contrast_limit": 0.1, "p": 0.5},
]


def _apply(layers, images):
    x = images.astype("float32")
    for layer in layers:
        x = layer(x, training=True)
    return ops.convert_to_numpy(x)


def _view_index(out: np.ndarray, image: np.ndarray) -> int:
    """Which D4 element turned ``image`` into ``out`` (the image is asymmetric, so exactly one)."""
    matches = [k for k in range(8) if np.array_equal(out, dihedral(image[None], k)[0])]
    assert len(matches) == 1, matches
    return matches[0]


def test_dihedral_ops_is_numpys_dihedral_for_every_element():
    x = np.random.default_rng(0).integers(0, 256, (8, 6, 6, 3)).astype("float32")
    for k in range(8):
        np.testing.assert_array_equal(ops.convert_to_numpy(dihedral_ops(x, np.full(8, k))), dihedral(x, k))
    mixed = np.arange(8)
    out = ops.convert_to_numpy(dihedral_ops(x, mixed))
    for i in range(8):
        np.testing.assert_array_equal(out[i], dihedral(x[i : i + 1], i)[0])
    wide = x[:, :4]  # non-square: the half turn and the flips still apply
    np.testing.assert_array_equal(ops.convert_to_numpy(dihedral_ops(wide, np.full(8, 6))), dihedral(wide, 6))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("D4", set(range(8))),
        ("RandomRotate90", {0, 1, 2, 3}),
        ("HorizontalFlip", {0, D4_ELEMENTS.index("h")}),
        ("VerticalFlip", {0, D4_ELEMENTS.index("v")}),
        ("Transpose", {0, D4_ELEMENTS.index("t")}),
    ],
)
def test_every_view_of_a_geometric_transform_occurs_per_image(name, expected):
    image = np.arange(5 * 5 * 3, dtype=np.uint8).reshape(5, 5, 3)
    p = 1.0 if name in ("D4", "RandomRotate90") else 0.5
    out = _apply(model_augmentation([{"name": name, "p": p}], seed=3), np.repeat(image[None], 800, axis=0))
    seen = np.bincount([_view_index(o, image) for o in out], minlength=8)
    assert set(np.flatnonzero(seen)) == expected, seen
    # uniform over the views: each within 4 standard deviations of its expected count
    share = 800 / len(expected)
    assert all(abs(seen[k] - share) < 4 * np.sqrt(share) for k in expected), seen


def test_the_albumentations_flips_are_the_named_d4_elements():
    import albumentations as A

    image = np.random.default_rng(1).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    for name, element in (("HorizontalFlip", "h"), ("VerticalFlip", "v"), ("Transpose", "t")):
        reference = getattr(A, name)(p=1.0).apply(image)
        np.testing.assert_array_equal(dihedral(image[None], D4_ELEMENTS.index(element))[0], reference)


def test_layers_are_the_identity_outside_training():
    x = np.random.default_rng(2).integers(0, 256, (4, 8, 8, 3)).astype("float32")
    for layer in model_augmentation([{"name": "D4", "p": 1.0}, *PCAM_COLOUR], seed=0):
        np.testing.assert_array_equal(ops.convert_to_numpy(layer(x, training=False)), x)


@pytest.mark.parametrize(
    "spec",
    [
        [PCAM_COLOUR[0] | {"p": 1.0}],
        [PCAM_COLOUR[1] | {"p": 1.0}],
        [{"name": "RandomBrightnessContrast", "brightness_limit": 0.2, "brightness_by_max": False, "p": 1.0}],
        PCAM_COLOUR,
    ],
    ids=["hsv", "brightness-contrast", "brightness-by-mean", "pcam-colour"],
)
def test_colour_statistics_match_the_cpu_path(spec):
    base = np.random.default_rng(1).integers(0, 256, (1, 8, 8, 3)).astype(np.uint8)
    images = np.repeat(base, 6000, axis=0)
    cpu = BatchAugmenter(build_augmentation(spec), seed=0)(images).astype(np.float64).mean(axis=(1, 2))
    model = _apply(model_augmentation(spec, seed=0), images).astype(np.float64).mean(axis=(1, 2))
    # Per image and channel, the mean colour: same centre (within 0.5 of 255; OpenCV's uint8 HSV round trip
    # shifts green by about 0.2) and the same spread (within 3 %).
    np.testing.assert_array_less(np.abs(cpu.mean(0) - model.mean(0)), 0.5)
    np.testing.assert_allclose(cpu.std(0), model.std(0), rtol=0.03)
    assert model.min() >= 0 and model.max() <= 255


def test_transforms_without_a_layer_are_refused_before_training():
    with pytest.raises(KitError, match=r"got Affine.*augment.on=cpu"):
        model_augmentation([{"name": "D4", "p": 1.0}, {"name": "Affine", "rotate": 10, "p": 0.5}])
    with pytest.raises(KitError, match="square images"):
        RandomDihedral(tuple(range(8))).build((None, 8, 6, 3))
    with pytest.raises(KitError, match="3 channels"):
        create_model("tiny_cnn", (8, 8, 1), augment=model_augmentation([PCAM_COLOUR[0]]))


def test_a_model_with_augmentation_saves_loads_and_hands_its_weights_to_one_without(tmp_path):
    augment = model_augmentation([{"name": "D4", "p": 1.0}, *PCAM_COLOUR], seed=5)
    model = create_model("tiny_cnn", (16, 16, 3), augment=augment)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert [type(layer).__name__ for layer in loaded.layers[1:4]] == [
        "RandomDihedral",
        "RandomHueSaturationValue",
        "RandomBrightnessContrast",
    ]
    assert loaded.layers[2].get_config()["hue_shift_limit"] == (-8.0, 8.0)
    model.save_weights(tmp_path / "w.weights.h5")
    plain = create_model("tiny_cnn", (16, 16, 3))
    plain.load_weights(tmp_path / "w.weights.h5")
    x = np.random.default_rng(3).integers(0, 256, (4, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(plain.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
