"""Basemap rasters served by titiler under ``/raster/{basemap}``."""

from api.raster.router import raster_router

__all__ = ["raster_router"]
