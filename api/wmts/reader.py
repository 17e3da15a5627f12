"""A rio-tiler ``Reader`` for the CGCS2000 basemap COGs, tuned for tiles.

Two work-arounds, both for tiles only (``info``, bounds and statistics read the COG as is):

* PROJ transforms CGCS2000 (EPSG:4490) to WGS 84 with a *ballpark* (null) operation, but it
  searches its database for that operation whenever a transformer is created: ~150 ms per Web
  Mercator tile. The datums agree to centimetres and PROJ's answer is the identity, so tiles in
  a TMS on another datum read the COG through GDAL's ``vrt://`` alias labelled EPSG:4326: the
  same pixels without the search.
* A decimated *boundless* read (a tile over the raster's edge, same CRS) of a multi-band
  dataset can pick source pixels differently per band in GDAL's VRT path, mixing colours along
  lines. Reading every tile through a ``WarpedVRT`` (``vrt_options``) keeps the bands aligned.
"""

from __future__ import annotations

from typing import Any

import attr
from rio_tiler.io import Reader
from rio_tiler.models import ImageData

CGCS2000_EPSG = 4490
WARPED = {"add_alpha": True}


@attr.s
class BasemapReader(Reader):
    """``Reader`` whose tiles are read warped, through a WGS 84 alias off the CGCS2000 datum."""

    def _alias(self) -> str | None:
        if self.input is None or self.crs is None or self.crs.to_epsg() != CGCS2000_EPSG:
            return None
        if self.tms.rasterio_geographic_crs.to_epsg() == CGCS2000_EPSG:
            return None
        return f"vrt://{self.input}?a_srs=EPSG:4326"

    def tile(self, tile_x: int, tile_y: int, tile_z: int, **kwargs: Any) -> ImageData:
        """Read a tile through a ``WarpedVRT``; in a WGS 84-based TMS, through the alias."""
        kwargs.setdefault("vrt_options", WARPED)
        alias = self._alias()
        if alias is None:
            return super().tile(tile_x, tile_y, tile_z, **kwargs)
        with Reader(alias, tms=self.tms, options=self.options) as src:
            return src.tile(tile_x, tile_y, tile_z, **kwargs)
