import cv2
import numpy as np
import pytest
from conftest import REAL_PCAM

from kit.adapters.image_spec import ImageSpec
from kit.ingest import tiff
from kit.ingest.decode import BadImage, decode_image

REAL_FILES = sorted((REAL_PCAM / "train").glob("*.tif")) + sorted((REAL_PCAM / "test").glob("*.tif"))


def test_real_fixtures_are_present():
    assert len(REAL_FILES) == 32


@pytest.mark.parametrize("path", REAL_FILES[:6] + REAL_FILES[-2:], ids=lambda p: p.name[:8])
def test_fast_path_matches_opencv_on_real_kaggle_files(path):
    image = tiff.decode_simple(path.read_bytes())
    reference = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert image.dtype == np.uint8 and image.shape == (96, 96, 3)
    np.testing.assert_array_equal(image, reference)


def test_encoder_reproduces_kaggle_files_byte_for_byte():
    for path in REAL_FILES:
        data = path.read_bytes()
        stamp = data[267:286].decode()  # the only header field that differs between Kaggle files
        assert tiff.encode_rgb(tiff.decode_simple(data), stamp) == data, path.name


def test_other_tiff_layouts_fall_back_to_opencv():
    image = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    ok, lzw = cv2.imencode(".tif", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))  # OpenCV compresses with LZW
    assert ok and tiff.decode_simple(lzw.tobytes()) is None
    np.testing.assert_array_equal(decode_image(lzw.tobytes(), ImageSpec((96, 96, 3), "tiff")), image)


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda d: b"", "empty file"),
        (lambda d: d[:5000], "truncated"),
        (lambda d: d[:100], "truncated"),
        (lambda d: b"\x89PNG\r\n\x1a\n" + d[8:], "not a TIFF"),
    ],
)
def test_bad_bytes_raise_with_a_reason(mutate, reason):
    data = REAL_FILES[0].read_bytes()
    with pytest.raises(BadImage, match=reason):
        decode_image(mutate(data), ImageSpec((96, 96, 3), "tiff"))


def test_wrong_shape_is_refused():
    data = tiff.encode_rgb(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(BadImage, match=r"expected \(96, 96, 3\) uint8, got \(64, 64, 3\)"):
        decode_image(data, ImageSpec((96, 96, 3), "tiff"))


def test_grayscale_tiff_is_refused_by_an_exact_rgb_spec_and_converted_by_a_resizing_one():
    gray = np.random.default_rng(0).integers(0, 256, (96, 96), dtype=np.uint8)
    kaggle_style = tiff.encode_gray(gray)
    np.testing.assert_array_equal(tiff.decode_simple(kaggle_style), gray)  # the fast path reads it
    opencv_lzw = cv2.imencode(".tif", gray)[1].tobytes()  # the OpenCV fallback path
    for data in (kaggle_style, opencv_lzw):
        with pytest.raises(BadImage, match=r"wrong channels: expected 3 \(RGB\), got 1 \(grayscale\).*exact"):
            decode_image(data, ImageSpec((96, 96, 3), "tiff"))
        converted = decode_image(data, ImageSpec((48, 48, 3), "tiff", "stretch"))
        assert converted.shape == (48, 48, 3) and (converted[..., 0] == converted[..., 2]).all()
