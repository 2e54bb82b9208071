"""What a stored image is: its shape, its file format and how other sizes are fitted to it.

Adapters declare it and the ingest stage decodes by it, so it lives here, upstream of both.

Example:
    >>> from kit.adapters.image_spec import ImageSpec
    >>> ImageSpec((96, 96, 3), "tiff").fit
    'exact'
"""

from __future__ import annotations

import dataclasses

__all__ = ["FITS", "ImageSpec"]

FITS = ("exact", "stretch", "crop", "pad")


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """What a stored image is: ``shape`` (H, W, C with C 1 or 3), the magic-checked ``image_format`` (or None)
    and how other sizes are handled (``fit``: one of ``FITS``, see ``kit.ingest.decode``)."""

    shape: tuple[int, int, int]
    image_format: str | None = None
    fit: str = "exact"
