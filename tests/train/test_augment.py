import itertools

import albumentations as A
import numpy as np
import pytest

import kit.train.batch_augment as augment_module
from kit.adapters.registry import get_adapter
from kit.errors import KitError
from kit.train.augment import (
    D4_ELEMENTS,
    D4_VIEWS,
    build_augmentation,
    dihedral,
    inverse_dihedral,
    load_augmentation,
    save_augmentation,
)
from kit.train.batch_augment import BatchAugmenter, _apply_alpha_beta, _apply_hsv, _rbc_params

PCAM_DEFAULT_TRAIN = get_adapter("pcam").train_augment
# rotations between the dihedral ones, small shifts and scales (tried as the PCam default: no better on real data)
AFFINE = {
    "name": "Affine",
    "scale": (0.9, 1.1),
    "rotate": (-45, 45),
    "translate_px": (-4, 4),
    "border_mode": 4,
    "p": 0.5,
}


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 10, 10, 3), dtype=np.uint8)
    images[0, :4, :4] = 128  # grey pixels: saturation 0 must stay 0 under any saturation shift
    images[1] = 0
    images[2] = 255
    return images


def _key(a):
    return a.tobytes()


# ---- the D4 group ----


def test_d4_views_are_eight_distinct_pixel_permutations_equal_to_albumentations(batch):
    views = [dihedral(batch, k) for k in D4_VIEWS]
    assert len(D4_VIEWS) == 8 and len({_key(v[3]) for v in views}) == 8  # a random image has no symmetry
    for k, view in enumerate(views):
        assert view.shape == batch.shape
        for b in range(len(batch)):  # same multiset of pixels: a permutation of the positions
            assert sorted(map(tuple, view[b].reshape(-1, 3))) == sorted(map(tuple, batch[b].reshape(-1, 3)))
        assert np.array_equal(view[3], A.D4(p=1).apply(batch[3], group_element=D4_ELEMENTS[k]))


def test_d4_views_are_isometries_of_the_square():
    n = 5
    coords = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1)[None].astype(np.uint8)
    points = coords.reshape(-1, 2).astype(int)
    distances = np.abs(points[:, None] - points[None]).sum(-1)  # any pairwise distance is preserved by D4
    for k in D4_VIEWS:
        source = dihedral(coords, k)[0].reshape(-1, 2).astype(int)  # where each output pixel came from
        assert np.array_equal(np.abs(source[:, None] - source[None]).sum(-1), distances)
        corners = {tuple(source.reshape(n, n, 2)[i, j]) for i in (0, n - 1) for j in (0, n - 1)}
        assert corners == {(0, 0), (0, n - 1), (n - 1, 0), (n - 1, n - 1)}  # corners go to corners


def test_d4_group_laws(batch):
    image = batch[:4]
    table = {_key(dihedral(image, k)): k for k in D4_VIEWS}
    for k in D4_VIEWS:
        assert np.array_equal(inverse_dihedral(dihedral(image, k), k), image)
        assert np.array_equal(dihedral(inverse_dihedral(image, k), k), image)
        if k >= 4:  # reflections are involutions
            assert np.array_equal(dihedral(dihedral(image, k), k), image)
        else:  # rotation k is rotation 1 applied k times; its order divides 4
            rotated = image
            for _ in range(k):
                rotated = dihedral(rotated, 1)
            assert np.array_equal(rotated, dihedral(image, k))
    for a, b in itertools.product(D4_VIEWS, D4_VIEWS):  # closed under composition
        assert _key(dihedral(dihedral(image, a), b)) in table
    # non-square batches: views keep the batch axis and swap H and W for the odd rotations and diagonals
    rect = np.arange(2 * 3 * 5 * 1, dtype=np.uint8).reshape(2, 3, 5, 1)
    assert [dihedral(rect, k).shape[1:3] for k in D4_VIEWS] == [(3, 5), (5, 3)] * 4
    assert all(np.array_equal(inverse_dihedral(dihedral(rect, k), k), rect) for k in D4_VIEWS)
    with pytest.raises(KitError, match="0..7"):
        dihedral(rect, 8)


# ---- batched kernels equal transform.apply for the same parameters ----


def _plan_by_hand(augment, images, seed):
    """Apply the augmenter's sampled plan image by image with albumentations' own ``transform.apply``."""
    out = []
    plan = augment.sample(len(images), seed)
    for i, image in enumerate(images):
        for t, mask, params, _ in plan:
            if not mask[i]:
                continue
            p = {k: v[i].item() for k, v in params.items()}
            name = type(t).__name__
            if name == "D4":
                image = t.apply(image, group_element=D4_ELEMENTS[p["k"]])
            elif name == "RandomRotate90":
                image = t.apply(image, factor=p["k"])
            elif name == "HueSaturationValue":
                image = t.apply(image, hue_shift=p["hue"], sat_shift=p["sat"], val_shift=p["val"])
            elif name == "RandomBrightnessContrast":
                alpha, beta = _rbc_params(t, image[None], np.array([p["contrast"]]), np.array([p["brightness"]]))
                image = t.apply(image, alpha=float(alpha[0]), beta=float(beta[0]))
            elif name == "Affine":  # albumentations itself, with ranges pinned to the drawn values

                def fixed(v):
                    return (v, v)

                shift = {
                    "translate_px" if t.translate_px else "translate_percent": {
                        "x": fixed(p["tx"]),
                        "y": fixed(p["ty"]),
                    }
                }
                pinned = A.Affine(
                    scale={"x": fixed(p["scale_x"]), "y": fixed(p["scale_y"])},
                    rotate=fixed(p["rotate"]),
                    shear={"x": fixed(-p["shear_x"]), "y": fixed(-p["shear_y"])},
                    **shift,
                    interpolation=t.interpolation,
                    border_mode=t.border_mode,
                    fill=t.fill,
                    p=1,
                )
                image = A.Compose([pinned])(image=image)["image"]
            else:
                image = t.apply(image)
        out.append(image)
    return np.stack(out)


@pytest.mark.parametrize(
    "spec",
    [
        list(PCAM_DEFAULT_TRAIN),
        [{"name": "D4"}, AFFINE],
        [{"name": "HueSaturationValue", "hue_shift_limit": 40, "sat_shift_limit": 60, "val_shift_limit": 50, "p": 1}],
        [{"name": "RandomBrightnessContrast", "brightness_limit": 0.4, "contrast_limit": 0.6, "p": 0.7}],
        [{"name": "RandomBrightnessContrast", "brightness_by_max": False, "ensure_safe_range": True, "p": 1}],
        [{"name": "HorizontalFlip"}, {"name": "VerticalFlip"}, {"name": "Transpose"}, {"name": "RandomRotate90"}],
        [
            {
                "name": "Affine",
                "translate_percent": (-0.2, 0.3),
                "shear": (-10, 10),
                "scale": (0.7, 1.2),
                "keep_ratio": True,
                "rotate": 30,
                "border_mode": 0,
                "fill": 7,
                "interpolation": 0,
                "p": 0.8,
            }
        ],
    ],
)
def test_batch_augmenter_equals_albumentations_apply_with_the_same_parameters(batch, spec):
    augment = BatchAugmenter(build_augmentation(spec))
    for seed in range(3):
        assert np.array_equal(augment(batch, seed), _plan_by_hand(augment, batch, seed))


@pytest.mark.parametrize("lookup", ["stringzilla", "opencv"])
def test_colour_kernels_match_albumentations_at_extreme_parameters(batch, lookup, monkeypatch):
    if lookup == "opencv":
        monkeypatch.setattr(augment_module, "_translate", None)
    hsv = A.HueSaturationValue(p=1)
    for hue, sat, val in [(-179.5, -255, -255), (179.9, 255, 255), (0.5, 0.5, -0.5), (-0.2, 30.9, -30.9)]:
        got = _apply_hsv(hsv, batch, *(np.full(len(batch), v, float) for v in (hue, sat, val)))
        assert np.array_equal(
            got, np.stack([hsv.apply(im, hue_shift=hue, sat_shift=sat, val_shift=val) for im in batch])
        )
    rbc = A.RandomBrightnessContrast(p=1)
    for alpha, beta in [(0.0, 0.0), (2.5, -300.0), (0.37, 12.9), (1.0, 0.0)]:
        got = _apply_alpha_beta(batch, np.full(len(batch), alpha), np.full(len(batch), beta))
        assert np.array_equal(got, np.stack([rbc.apply(im, alpha=alpha, beta=beta) for im in batch]))


def test_zero_colour_shift_is_an_exact_identity(batch):
    augment = BatchAugmenter(
        [{"name": "HueSaturationValue", "hue_shift_limit": 0, "sat_shift_limit": 0, "val_shift_limit": 0, "p": 1}]
    )
    assert np.array_equal(augment(batch, 0), batch)  # no lossy RGB->HSV->RGB round trip, as albumentations


# ---- sampling, reproducibility, fallback ----


def test_probability_and_parameter_ranges_follow_the_transform():
    augment = BatchAugmenter(build_augmentation([*PCAM_DEFAULT_TRAIN, AFFINE]))
    steps = {type(t).__name__: (mask, params) for t, mask, params, _ in augment.sample(20000, 0)}
    (d4_mask, d4), (affine_mask, affine) = steps["D4"], steps["Affine"]
    (hsv_mask, hsv), (rbc_mask, rbc) = steps["HueSaturationValue"], steps["RandomBrightnessContrast"]
    assert d4_mask.all() and np.bincount(d4["k"], minlength=8).min() > 2300  # all 8 elements, uniform
    assert all(abs(mask.mean() - 0.5) < 0.02 for mask in (affine_mask, hsv_mask, rbc_mask))
    assert np.corrcoef(hsv_mask, rbc_mask)[0, 1] < 0.03  # independent draws per transform
    for name, limit in (("hue", 8), ("sat", 12), ("val", 8)):
        assert -limit <= hsv[name].min() < -0.99 * limit and 0.99 * limit < hsv[name].max() <= limit
    assert np.abs(rbc["contrast"]).max() <= 0.1 and np.abs(rbc["brightness"]).max() <= 0.1
    # Affine: whole-pixel shifts -4..4 (both ends drawn, as random.randint), independent x/y scales, no shear
    assert set(np.unique(affine["tx"])) == set(range(-4, 5)) == set(np.unique(affine["ty"]))
    assert 0.9 <= affine["scale_x"].min() < 0.901 and 1.099 < affine["scale_y"].max() <= 1.1
    assert abs(np.corrcoef(affine["scale_x"], affine["scale_y"])[0, 1]) < 0.03
    assert -45 <= affine["rotate"].min() < -44.9 and (affine["shear_x"] == 0).all()
    sheared = BatchAugmenter([{"name": "Affine", "shear": (0, 10)}]).sample(1000, 0)[0][2]
    assert (sheared["shear_x"] <= 0).all() and sheared["shear_x"].min() < -9.9  # albumentations negates the draw
    never = BatchAugmenter([{"name": "HorizontalFlip", "p": 0.0}])
    always = BatchAugmenter([{"name": "HorizontalFlip", "p": 1.0}])
    x = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    assert np.array_equal(never(x, 0), x) and np.array_equal(always(x, 0), x[:, :, ::-1])
    skip_all = BatchAugmenter(A.Compose([A.HorizontalFlip(p=1)], p=0.0))  # Compose's own p is honoured
    assert np.array_equal(skip_all(x, 0), x)


def test_batch_augmenter_is_reproducible_and_leaves_its_input_alone(batch):
    augment = BatchAugmenter(build_augmentation(PCAM_DEFAULT_TRAIN), seed=3)
    original = batch.copy()
    a = augment(batch, np.random.default_rng(7))
    assert np.array_equal(batch, original) and a.dtype == np.uint8 and a.shape == batch.shape
    assert a.flags.c_contiguous and not np.shares_memory(a, batch)
    assert np.array_equal(a, augment(batch, np.random.default_rng(7)))
    assert np.array_equal(a, augment(batch, 7))  # a seed is as good as a Generator
    assert not np.array_equal(a, augment(batch, 8))
    assert np.array_equal(a, BatchAugmenter(augment.compose, threads=3)(batch, 7))  # threads do not matter
    first, second = augment(batch), augment(batch)  # the augmenter's own generator moves on
    assert not np.array_equal(first, second)
    augment.reseed(3)
    assert np.array_equal(augment(batch), first) and np.array_equal(augment(batch), second)
    identity = BatchAugmenter(None)
    assert np.array_equal(identity(batch), batch) and not np.shares_memory(identity(batch), batch)


def test_transforms_without_a_batched_kernel_fall_back_to_albumentations(batch):
    spec = [
        {"name": "D4"},
        {"name": "OneOf", "transforms": [{"name": "GaussNoise", "p": 1}, {"name": "Blur", "blur_limit": 3}]},
        {"name": "RandomBrightnessContrast", "p": 0.5},
    ]
    augment = BatchAugmenter(build_augmentation(spec))
    out = augment(batch, 0)
    assert out.shape == batch.shape and out.dtype == np.uint8
    assert np.array_equal(out, augment(batch, 0)) and not np.array_equal(out, augment(batch, 1))
    assert np.array_equal(out, BatchAugmenter(augment.compose, threads=2)(batch, 0))
    # the fallback is albumentations itself: GaussNoise alone, seeded, equals a direct per-image call
    noise = BatchAugmenter([{"name": "GaussNoise", "p": 1}])
    _, _, params, _ = noise.sample(len(batch), 0)[0]
    single = A.Compose([A.GaussNoise(p=1)])
    expected = []
    for image, seed in zip(batch, params["seed"]):
        single.set_random_seed(int(seed))
        expected.append(single(image=image)["image"])
    assert np.array_equal(noise(batch, 0), np.stack(expected))
    # Affine with a changing output shape or balanced scales keeps albumentations' own sampling
    for odd in ({"fit_output": True}, {"balanced_scale": True, "scale": (0.5, 2)}):
        assert BatchAugmenter([{"name": "Affine", **odd}]).steps[0][2] is augment_module._apply_fallback


def test_bad_batches_and_shapes_are_clear_errors(batch):
    augment = BatchAugmenter(build_augmentation(PCAM_DEFAULT_TRAIN))
    with pytest.raises(KitError, match="uint8 batch of shape"):
        augment(batch.astype(np.float32))
    with pytest.raises(KitError, match="uint8 batch of shape"):
        augment(batch[0])
    with pytest.raises(KitError, match="square images"):
        augment(np.zeros((16, 8, 6, 3), np.uint8), 0)
    with pytest.raises(KitError, match="keep the image shape"):
        BatchAugmenter([{"name": "Transpose", "p": 0.5}])(np.zeros((16, 8, 6, 3), np.uint8), 0)
    with pytest.raises(KitError, match="threads"):
        BatchAugmenter(None, threads=0)


# ---- declared pipelines ----


def test_pipeline_round_trips_through_albumentations_json(tmp_path, batch):
    compose = build_augmentation(PCAM_DEFAULT_TRAIN)
    save_augmentation(compose, tmp_path / "augment.json")
    assert '"HueSaturationValue"' in (tmp_path / "augment.json").read_text()
    loaded = load_augmentation(tmp_path / "augment.json")
    assert A.to_dict(loaded) == A.to_dict(compose)
    assert np.array_equal(BatchAugmenter(loaded)(batch, 5), BatchAugmenter(compose)(batch, 5))
    with pytest.raises(KitError, match="albumentations JSON pipeline"):
        load_augmentation(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "spec, message",
    [
        ([{"name": "NoSuchTransform"}], "expected an albumentations transform name, got 'NoSuchTransform'"),
        ([{"name": "HorizontalFlip", "nonsense": 1}], "rejected HorizontalFlip.*nonsense.*Fix"),
        ([{"name": "RandomBrightnessContrast", "p": 2}], "rejected RandomBrightnessContrast.*Fix"),
        ([{"name": "HueSaturationValue", "hue_shift_limit": "a lot"}], "rejected HueSaturationValue"),
        ([{"p": 0.5}], "with a name"),
        (["D4"], "with a name"),
        ({"name": "D4"}, "list of transforms"),
        ([{"name": "KitError"}], "transform name"),
    ],
)
def test_bad_declarations_are_clear_errors(spec, message):
    with pytest.raises(KitError, match=message):
        build_augmentation(spec)


def test_empty_declarations_build_nothing_and_lists_build_a_compose():
    assert build_augmentation([]) is None and build_augmentation(None) is None
    compose = build_augmentation([{"name": "HueSaturationValue", "hue_shift_limit": [-5, 5], "p": 0.25}])
    assert compose.transforms[0].hue_shift_limit == (-5, 5) and compose.transforms[0].p == 0.25
    assert [type(t).__name__ for t in build_augmentation(PCAM_DEFAULT_TRAIN).transforms] == [
        "D4",
        "HueSaturationValue",
        "RandomBrightnessContrast",
    ]


@pytest.mark.parametrize(("channels", "dtype"), [(1, np.uint8), (3, np.uint8), (3, np.float32), (5, np.uint8)])
def test_the_opencv_views_are_numpys_dihedral(channels, dtype):
    from kit.train.augment import dihedral_each, dihedral_stack

    images = np.random.default_rng(channels).integers(0, 256, (8, 6, 6, channels)).astype(dtype)
    each = dihedral_each(images, np.arange(8))
    for k in range(8):
        np.testing.assert_array_equal(each[k], dihedral(images[k : k + 1], k)[0])
    stack = dihedral_stack(images, range(8))
    np.testing.assert_array_equal(stack, np.concatenate([dihedral(images, k) for k in range(8)]))
    assert stack.dtype == dtype and stack.flags["C_CONTIGUOUS"]
