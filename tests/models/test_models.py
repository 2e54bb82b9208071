import keras
import numpy as np
import pytest

from kit.errors import KitError
from kit.models import create_model, is_pretrainable, list_backbones, register_backbone, set_backbone_trainable
from kit.models.applications import APPLICATIONS, preprocessing

# the smallest input each network accepts keeps this fast
_SMALL = {"xception": 71}


def _images(n=2, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.slow
@pytest.mark.parametrize("name", list_backbones())
def test_every_backbone_builds_and_predicts_probabilities_from_uint8(name):
    size = _SMALL.get(name, 32)
    model = create_model(name, input_shape=(size, size, 3), weights=None)
    pred = model.predict(_images(size=size), verbose=0)
    assert pred.shape == (2, 1) and pred.dtype == np.float32 and ((pred >= 0) & (pred <= 1)).all()
    assert model.get_layer("backbone").input.shape[1:] == (size, size, 3)


def test_registry_lists_the_required_backbones_and_rejects_unknown_names():
    assert {"tiny_cnn", "compact_cnn", "densenet169", "resnet50", "efficientnet_b0", "xception", "vgg16"} <= set(
        list_backbones()
    )
    with pytest.raises(KitError, match="unknown backbone 'resnet9000'.*compact_cnn.*tiny_cnn"):
        create_model("resnet9000")
    with pytest.raises(KitError, match="already registered"):
        register_backbone("tiny_cnn")(lambda input_shape, weights=None: None)
    assert all(is_pretrainable(name) for name in APPLICATIONS)
    assert not is_pretrainable("compact_cnn") and not is_pretrainable("tiny_cnn")


def test_weights_are_never_downloaded_and_missing_files_are_named(tmp_path):
    with pytest.raises(KitError, match="never downloads.*resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"):
        create_model("resnet50", input_shape=(32, 32, 3), weights="imagenet")
    with pytest.raises(KitError, match="no published weights"):
        create_model("compact_cnn", weights="imagenet")
    with pytest.raises(KitError, match="expected a weights file at .*missing.h5"):
        create_model("vgg16", input_shape=(32, 32, 3), weights=str(tmp_path / "missing.h5"))


def test_bad_shapes_say_how_to_fix_them():
    with pytest.raises(KitError, match="at least 71x71.*model.resize"):
        create_model("xception", input_shape=(32, 32, 3))
    with pytest.raises(KitError, match="crop between 1 and 32"):
        create_model("tiny_cnn", input_shape=(32, 32, 3), crop=48)


@pytest.mark.slow
def test_keras_applications_weight_file_loads_into_the_backbone(tmp_path):
    """The no-top .h5 file keras.applications downloads (legacy layout) and kit's own backbone file both load."""
    legacy_h5 = pytest.importorskip("keras.src.legacy.saving.legacy_h5_format")
    import h5py

    source = create_model("vgg16", input_shape=(32, 32, 3))
    backbone = source.get_layer("backbone")
    published = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with h5py.File(published, "w") as h5:  # the layout of keras' download: save_weights_to_hdf5_group
        legacy_h5.save_weights_to_hdf5_group(h5, backbone.get_layer("vgg16"))
    own = tmp_path / "vgg16.weights.h5"
    backbone.save_weights(own)
    images = _images(seed=1).astype("float32")
    expected = backbone.predict(images, verbose=0)
    for path in (published, own):
        loaded = create_model("vgg16", input_shape=(32, 32, 3), weights=str(path))
        np.testing.assert_allclose(loaded.get_layer("backbone").predict(images, verbose=0), expected, rtol=1e-5)
    with pytest.raises(KitError, match="could not load weights file .*vgg16.weights.h5"):
        create_model("resnet50", input_shape=(32, 32, 3), weights=str(own))


def test_scratch_backbone_weights_round_trip(tmp_path):
    source = create_model("compact_cnn", input_shape=(32, 32, 3))
    path = tmp_path / "compact.weights.h5"
    source.get_layer("backbone").save_weights(path)
    loaded = create_model("compact_cnn", input_shape=(32, 32, 3), weights=path)
    images = _images(seed=2)
    np.testing.assert_allclose(
        loaded.get_layer("backbone").predict(images, verbose=0),
        source.get_layer("backbone").predict(images, verbose=0),
        rtol=1e-5,
    )


@pytest.mark.parametrize("mode", ["caffe", "torch", "tf"])
def test_preprocessing_layers_match_keras_preprocess_input(mode):
    images = np.random.default_rng(3).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    expected = keras.applications.imagenet_utils.preprocess_input(images.copy(), mode=mode)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(preprocessing(mode)(images)), expected, atol=1e-4)


def test_freezing_the_backbone_leaves_only_the_head_trainable():
    model = create_model("vgg16", input_shape=(32, 32, 3))
    unfrozen = len(model.trainable_weights)
    set_backbone_trainable(model, False)
    assert len(model.trainable_weights) == 2  # the head's kernel and bias
    set_backbone_trainable(model, True)
    # preprocessing has no trainable weights, so unfreezing restores exactly the network's own
    assert len(model.trainable_weights) == unfrozen == 2 + 2 * 13


def test_uint8_batches_train_and_the_model_survives_a_keras_round_trip(tmp_path):
    model = create_model("tiny_cnn", input_shape=(32, 32, 3), crop=24, resize=32)
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    history = model.fit(_images(8), np.arange(8) % 2, batch_size=4, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "m.keras")  # what training's resume point does
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("backbone").name == "backbone"
    np.testing.assert_allclose(loaded.predict(_images(), verbose=0), model.predict(_images(), verbose=0), rtol=1e-5)


def test_custom_preprocessing_layer_survives_a_keras_round_trip(tmp_path):
    model = create_model("vgg16", input_shape=(32, 32, 3))  # caffe preprocessing: ChannelFlip
    model.save(tmp_path / "v.keras")
    loaded = keras.saving.load_model(tmp_path / "v.keras")
    np.testing.assert_allclose(loaded.predict(_images(), verbose=0), model.predict(_images(), verbose=0), rtol=1e-5)


@pytest.mark.parametrize("name", ["tiny_cnn", "vgg16"])
def test_output_stays_float32_under_mixed_precision(name):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = create_model(name, input_shape=(32, 32, 3))
        pred = model.predict(_images(), verbose=0)
        assert model.get_layer("backbone").output.dtype == "float16"  # the policy is really in force
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.output.dtype == "float32" and pred.dtype == np.float32 and ((pred >= 0) & (pred <= 1)).all()


def test_crop_and_resize_are_part_of_the_model():
    model = create_model("tiny_cnn", input_shape=(96, 96, 3), crop=64, resize=32)
    assert model.get_layer("centre_crop").output.shape[1:3] == (64, 64)
    assert model.get_layer("backbone").input.shape[1:3] == (32, 32)


@pytest.mark.parametrize("pool", ["avg_max", "avg_centre"])
def test_pooling_heads_concatenate_the_global_average_with_max_or_centre(pool, tmp_path):
    model = create_model("tiny_cnn", input_shape=(96, 96, 3), pool=pool)  # 24x24x16 feature map
    probe = keras.Model(model.input, [model.get_layer("pool").input, model.get_layer("pool_concat").output])
    features, pooled = probe.predict(_images(size=96), verbose=0)
    np.testing.assert_allclose(pooled[:, :16], features.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    second = features.max(axis=(1, 2)) if pool == "avg_max" else features[:, 8:16, 8:16].mean(axis=(1, 2))
    np.testing.assert_allclose(pooled[:, 16:], second, rtol=1e-5, atol=1e-6)  # centre = the middle third
    model.save(tmp_path / "m.keras")  # stock layers only: the resume point reloads in Keras' safe mode
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(
        loaded.predict(_images(size=96), verbose=0), model.predict(_images(size=96), verbose=0), rtol=1e-5
    )
    with pytest.raises(KitError, match="model.pool one of avg, avg_max, avg_centre; got 'centre'"):
        create_model("tiny_cnn", input_shape=(96, 96, 3), pool="centre")
