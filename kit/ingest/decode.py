"""Read one image file into an (H, W, C) uint8 array of the stored shape, or say precisely why it cannot be used.

Simple TIFFs go through kit.ingest.tiff's byte slicing; everything else through OpenCV (BGR converted to RGB).
Grayscale and colour sources are converted to the stored channel count, except with ``fit="exact"`` (files stored
as they are, PCam): there a file with other channels is refused (quarantined) like any other wrong shape. Adapters
whose images vary in size resize them at ingest (``fit``): "stretch" to the stored shape, "crop" the centre square
then resize (keeps the aspect, loses the long side's edges), or "pad" (letterbox with black, keeps everything).
Resizing uses area interpolation; large JPEGs are decoded at 1/2, 1/4 or 1/8 scale by libjpeg when that still
leaves at least the stored size, which makes decoding multi-megapixel photos many times faster.

Example:
    >>> read_image("missing.tif", ImageSpec((96, 96, 3), "tiff"))
    Traceback (most recent call last):
    kit.ingest.decode.BadImage: unreadable file: No such file or directory
"""

from __future__ import annotations

import io

import cv2
import numpy as np

from kit.adapters.image_spec import FITS, ImageSpec
from kit.ingest import tiff

__all__ = ["BadImage", "read_image", "decode_image", "fit_image"]


class BadImage(Exception):
    """The file cannot become a stored image; the message is the quarantine reason."""


def read_image(path, spec: ImageSpec) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise BadImage(f"unreadable file: {e.strerror or e}") from None
    return decode_image(data, spec)


def decode_image(data: bytes, spec: ImageSpec) -> np.ndarray:
    """Decode file bytes into ``spec.shape`` uint8, converting channels and fitting the size as the spec says."""
    if not data:
        raise BadImage("empty file (0 bytes)")
    if spec.image_format == "tiff" and not tiff.is_tiff(data):
        raise BadImage(f"not a TIFF file (first bytes {data[:4]!r}, expected b'II*\\x00' or b'MM\\x00*')")
    try:
        image = tiff.decode_simple(data)
    except ValueError as e:
        raise BadImage(str(e)) from None
    if image is None:
        image = _decode_with_opencv(data, spec)
    if image.dtype != np.uint8:
        raise BadImage(f"wrong dtype: expected 8-bit pixels (uint8), got {image.dtype}")
    if spec.fit == "exact":
        _check_channels(image, spec.shape[2])
    image = _to_channels(image, spec.shape[2])
    if spec.fit != "exact" and image.shape[:2] != tuple(spec.shape[:2]):
        image = fit_image(image, spec.shape[:2], spec.fit)
    if image.shape != tuple(spec.shape):
        raise BadImage(f"wrong shape: expected {tuple(spec.shape)} uint8, got {image.shape} {image.dtype}")
    return image


def fit_image(image: np.ndarray, size: tuple[int, int], fit: str) -> np.ndarray:
    """Resize an (H, W, C) image to ``size`` (H, W) by ``fit`` ("stretch", "crop" or "pad"), area interpolation.

    Example:
        >>> fit_image(np.zeros((100, 200, 3), np.uint8), (50, 50), "crop").shape
        (50, 50, 3)
    """
    h, w = image.shape[:2]
    if fit == "crop":
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        image = image[top : top + side, left : left + side]
    elif fit == "pad":
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        padded = np.zeros((side, side, image.shape[2]), np.uint8)
        padded[top : top + h, left : left + w] = image
        image = padded
    elif fit != "stretch":
        raise BadImage(f"cannot fit an image by {fit!r}; expected one of {', '.join(FITS[1:])}")
    out = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return out.reshape(*size, image.shape[2])  # OpenCV drops a single channel axis


_CHANNEL_NAMES = {1: "grayscale", 2: "grayscale + alpha", 3: "RGB", 4: "RGBA"}


def _check_channels(image: np.ndarray, channels: int) -> None:
    """An exact-fit adapter stores files as they are: a file with other channels is refused, not converted."""
    have = 1 if image.ndim == 2 else image.shape[2]
    if have != channels:
        raise BadImage(
            f"wrong channels: expected {channels} ({_CHANNEL_NAMES.get(channels, '?')}), got {have} "
            f"({_CHANNEL_NAMES.get(have, '?')}); files are stored as they are (fit 'exact'), never converted"
        )


def _to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    if image.ndim == 2:
        image = image[:, :, None]
    have = image.shape[2]
    if have == 4:  # alpha carries no class information
        image, have = image[:, :, :3], 3
    if have == channels:
        return image
    if have == 1 and channels == 3:
        return np.repeat(image, 3, axis=2)
    if have == 3 and channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None]
    raise BadImage(f"wrong channels: expected {channels}, got {have}")


def _decode_with_opencv(data: bytes, spec: ImageSpec) -> np.ndarray:
    buffer = np.frombuffer(data, np.uint8)
    reduce = _jpeg_reduction(data, spec) if spec.fit != "exact" else 1
    if reduce > 1:
        gray = spec.shape[2] == 1
        flag = getattr(cv2, f"IMREAD_REDUCED_{'GRAYSCALE' if gray else 'COLOR'}_{reduce}")
        # EXIF orientation is ignored, as IMREAD_UNCHANGED does, so a file decodes the same either way
        image = cv2.imdecode(buffer, flag | cv2.IMREAD_IGNORE_ORIENTATION)
    else:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise BadImage(f"corrupt or truncated image: OpenCV could not decode its {len(data)} bytes")
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def _jpeg_reduction(data: bytes, spec: ImageSpec) -> int:
    """The largest libjpeg scale-down (1, 2, 4, 8) that still leaves the fitted region at least the stored size."""
    if data[:2] != b"\xff\xd8":
        return 1
    try:
        from PIL import Image  # reads only the header here; Pillow comes with matplotlib

        w, h = Image.open(io.BytesIO(data)).size
    except Exception:  # noqa: BLE001  an unreadable header: let OpenCV decode (and judge) the whole file
        return 1
    th, tw = spec.shape[:2]
    region = {"crop": (min(h, w),) * 2, "pad": (max(h, w),) * 2}.get(spec.fit, (h, w))
    room = min(region[0] / th, region[1] / tw)
    return next((r for r in (8, 4, 2, 1) if r <= room), 1)  # smaller than the stored side: decode it whole
