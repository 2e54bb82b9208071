"""Read one image file into an (H, W, C) uint8 RGB array, or say precisely why it cannot be used.

Simple TIFFs go through kit.tiff's byte slicing; everything else through OpenCV (BGR converted to RGB).

Example:
    >>> read_image("missing.tif", (96, 96, 3), "tiff")
    Traceback (most recent call last):
    kit.decode.BadImage: unreadable file: No such file or directory
"""
from __future__ import annotations

import cv2
import numpy as np

from kit import tiff

__all__ = ["BadImage", "read_image", "decode_image"]


class BadImage(Exception):
    """The file cannot become a stored image; the message is the quarantine reason."""


def read_image(path, shape: tuple[int, ...], image_format: str | None) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise BadImage(f"unreadable file: {e.strerror or e}") from None
    return decode_image(data, shape, image_format)


def decode_image(data: bytes, shape: tuple[int, ...], image_format: str | None) -> np.ndarray:
    """Decode file bytes and check them against the expected shape (uint8 always)."""
    if not data:
        raise BadImage("empty file (0 bytes)")
    if image_format == "tiff" and not tiff.is_tiff(data):
        raise BadImage(f"not a TIFF file (first bytes {data[:4]!r}, expected b'II*\\x00' or b'MM\\x00*')")
    try:
        image = tiff.decode_simple(data)
    except ValueError as e:
        raise BadImage(str(e)) from None
    if image is None:
        image = _decode_with_opencv(data)
    if image.dtype != np.uint8 or image.shape != tuple(shape):
        raise BadImage(f"wrong shape or dtype: expected {tuple(shape)} uint8, got {image.shape} {image.dtype}")
    return image


def _decode_with_opencv(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise BadImage(f"corrupt or truncated image: OpenCV could not decode its {len(data)} bytes")
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image
