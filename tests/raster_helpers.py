"""Helpers for the basemap and WMTS tests: decode PNGs and OWS exception reports."""

from __future__ import annotations

import warnings

import numpy as np
import rasterio
from lxml import etree
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile

OWS = "{http://www.opengis.net/ows/1.1}"
DAFENG_CENTRE = (120.48, 33.2)


def read_png(content: bytes) -> np.ndarray:
    """Decode a PNG into a ``(bands, height, width)`` array."""
    assert content[:8] == b"\x89PNG\r\n\x1a\n", content[:200]
    with warnings.catch_warnings(), rasterio.Env(), MemoryFile(content) as mem:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with mem.open() as src:
            return src.read()


def opaque_pixels(png: np.ndarray) -> int:
    """How many pixels are not fully transparent (all opaque when there is no alpha band)."""
    if png.shape[0] in (2, 4):
        return int((png[-1] > 0).sum())
    return png.shape[1] * png.shape[2]


def ows_exception(content: bytes) -> tuple[str, str | None]:
    """``(exceptionCode, locator)`` of an OWS ``ExceptionReport``."""
    root = etree.fromstring(content)
    assert root.tag == f"{OWS}ExceptionReport"
    exc = root.find(f"{OWS}Exception")
    assert exc is not None and exc.findtext(f"{OWS}ExceptionText")
    return exc.get("exceptionCode", ""), exc.get("locator")
