"""Render 256×256 PNG tiles: basemaps from their COGs (rio-tiler), vector layers by rasterizing."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import morecantile
import numpy as np
import shapely
from rasterio.features import rasterize
from rasterio.transform import from_origin
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.utils import render

from api.wmts.features import MARGIN_PX, TileWindow
from api.wmts.reader import BasemapReader
from api.wmts.styles import VectorStyle
from layers.registry import GeometryType

TILE_SIZE = 256
PNG_MEDIA_TYPE = "image/png"


def encode_png(rgb: np.ndarray, alpha: np.ndarray) -> bytes:
    """Encode a ``(3, h, w)`` RGB array and an ``(h, w)`` alpha mask as PNG."""
    return render(rgb, mask=alpha, img_format="PNG")


@cache
def empty_png(size: int = TILE_SIZE) -> bytes:
    """A fully transparent tile."""
    return encode_png(np.zeros((3, size, size), np.uint8), np.zeros((size, size), np.uint8))


def basemap_png(path: Path, tms: morecantile.TileMatrixSet, z: int, x: int, y: int) -> bytes:
    """A basemap tile read from its COG; transparent outside the raster."""
    with BasemapReader(str(path), tms=tms) as src:
        try:
            image = src.tile(x, y, z, tilesize=TILE_SIZE)
        except TileOutsideBounds:
            return empty_png()
    return image.render(img_format="PNG", add_mask=True)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a boolean mask by ``radius`` pixels (a square structuring element)."""
    if radius <= 0:
        return mask
    h, w = mask.shape
    padded = np.pad(mask, radius)
    out = np.zeros_like(mask)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out |= padded[dy : dy + h, dx : dx + w]
    return out


def _burn(
    geoms: np.ndarray, shape: tuple[int, int], window: TileWindow, touched: bool
) -> np.ndarray:
    """Rasterize geometries (in the window's CRS) onto the padded canvas as a boolean mask."""
    transform = from_origin(
        window.left - MARGIN_PX * window.pixel,
        window.top + MARGIN_PX * window.pixel,
        window.pixel,
        (window.top - window.bottom) / window.size,
    )
    valid = [g for g in geoms if g is not None and not g.is_empty]
    if not valid:
        return np.zeros(shape, dtype=bool)
    burnt = rasterize(valid, out_shape=shape, transform=transform, all_touched=touched)
    return burnt.astype(bool)


def _points(geoms: np.ndarray, shape: tuple[int, int], window: TileWindow) -> np.ndarray:
    """Mark the pixels holding points on the padded canvas (numpy, no per-point rasterize)."""
    xy = shapely.get_coordinates(geoms)
    cols = np.floor((xy[:, 0] - window.left) / window.pixel).astype(np.int64) + MARGIN_PX
    rows = np.floor((window.top - xy[:, 1]) / window.pixel).astype(np.int64) + MARGIN_PX
    inside = (cols >= 0) & (cols < shape[1]) & (rows >= 0) & (rows < shape[0])
    mask = np.zeros(shape, dtype=bool)
    mask[rows[inside], cols[inside]] = True
    return mask


def vector_png(
    wkbs: list[bytes], geometry_type: GeometryType, style: VectorStyle, window: TileWindow
) -> bytes:
    """Draw features in ``style``: polygon fill and outline, lines, or point squares."""
    if not wkbs:
        return empty_png(window.size)
    geoms = shapely.from_wkb(wkbs)
    shape = (window.size + 2 * MARGIN_PX, window.size + 2 * MARGIN_PX)
    alpha = np.zeros(shape, dtype=np.uint8)
    if "POLYGON" in geometry_type:
        fill = _burn(geoms, shape, window, touched=False)
        edge = _dilate(_burn(shapely.boundary(geoms), shape, window, True), style.line_px // 2)
        alpha[fill] = style.fill_alpha
        alpha[edge] = 255
    elif "LINESTRING" in geometry_type:
        alpha[_dilate(_burn(geoms, shape, window, True), style.line_px // 2)] = 255
    else:
        alpha[_dilate(_points(geoms, shape, window), style.point_radius_px)] = 255
    core = alpha[MARGIN_PX:-MARGIN_PX, MARGIN_PX:-MARGIN_PX]
    rgb = np.empty((3, window.size, window.size), dtype=np.uint8)
    rgb[:] = np.array(style.colour, dtype=np.uint8)[:, None, None]
    return encode_png(rgb, np.ascontiguousarray(core))
