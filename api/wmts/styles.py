"""How each registry layer is drawn when rendered to PNG tiles (WMTS style ``default``)."""

from __future__ import annotations

import colorsys
import hashlib
from dataclasses import dataclass

from layers.registry import LayerSpec

DEFAULT_STYLE = "default"
RGB = tuple[int, int, int]


@dataclass(frozen=True)
class VectorStyle:
    """Colour, polygon fill opacity, line width and point half-size, in pixels."""

    colour: RGB
    fill_alpha: int = 56
    line_px: int = 1
    point_radius_px: int = 2


LAYER_STYLES: dict[str, VectorStyle] = {
    "districts": VectorStyle((125, 102, 144), fill_alpha=0, line_px=3),
    "streets": VectorStyle((164, 100, 179), fill_alpha=24, line_px=2),
    "communities": VectorStyle((91, 124, 194), fill_alpha=32),
    "unit_grids": VectorStyle((60, 150, 110), fill_alpha=16),
    "responsibility_grids": VectorStyle((214, 120, 40), fill_alpha=24),
    "evaluation_grids": VectorStyle((190, 60, 90), fill_alpha=24, line_px=2),
    "roads": VectorStyle((225, 140, 20), line_px=3),
    "compounds": VectorStyle((150, 110, 70), fill_alpha=72),
    "buildings": VectorStyle((120, 100, 90), fill_alpha=140),
    "addresses": VectorStyle((40, 90, 200), point_radius_px=1),
    "pois": VectorStyle((220, 50, 120), point_radius_px=2),
    "parts": VectorStyle((20, 140, 160), point_radius_px=1),
    "cases": VectorStyle((230, 30, 30), point_radius_px=3),
}


def derived_colour(layer_id: str) -> RGB:
    """A stable, saturated colour for a layer without a declared style."""
    hue = int(hashlib.sha1(layer_id.encode()).hexdigest()[:4], 16) / 0xFFFF
    r, g, b = colorsys.hsv_to_rgb(hue, 0.7, 0.8)
    return (round(r * 255), round(g * 255), round(b * 255))


def style_for(spec: LayerSpec) -> VectorStyle:
    """The declared style of a layer, or a derived one."""
    return LAYER_STYLES.get(spec.id) or VectorStyle(derived_colour(spec.id))
