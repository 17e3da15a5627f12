"""The registered basemaps: raster ids served by titiler (``/raster``) and WMTS (``/wmts``).

A basemap is a Cloud-Optimized GeoTIFF in EPSG:4490 rendered from the base layers by
``cityops samples basemaps`` into the basemap directory (``CITY_BASEMAP_DIR``). Clients only
ever name a basemap by its id; paths are never taken from a request.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from spatial.errors import NotFound

BasemapStyle = Literal["light", "dark"]


@dataclass(frozen=True)
class BasemapSpec:
    """One published basemap: id, palette style and titles."""

    id: str
    style: BasemapStyle
    title: str
    description: str = ""

    def path(self, directory: Path) -> Path:
        """The COG of this basemap inside ``directory``."""
        return directory / f"{self.id}.tif"


BASEMAPS: tuple[BasemapSpec, ...] = (
    BasemapSpec(
        id="dafeng-light",
        style="light",
        title="大丰区底图（浅色） Dafeng basemap, light",
        description="Districts, streets, communities, roads by grade, compounds and buildings; "
        "CGCS2000 (EPSG:4490).",
    ),
    BasemapSpec(
        id="dafeng-dark",
        style="dark",
        title="大丰区底图（深色） Dafeng basemap, dark",
        description="The same base layers in a dark palette; CGCS2000 (EPSG:4490).",
    ),
)


def basemap_ids() -> list[str]:
    """The registered basemap ids in order."""
    return [b.id for b in BASEMAPS]


def get_basemap(basemap_id: str) -> BasemapSpec:
    """Return a basemap or raise ``NotFound`` naming the known ids."""
    for spec in BASEMAPS:
        if spec.id == basemap_id:
            return spec
    raise NotFound(f"Unknown basemap '{basemap_id}'; known basemaps: {', '.join(basemap_ids())}")
