"""WMTS 1.0.0 at ``/wmts``: the basemaps and every registry layer rendered to PNG."""

from api.wmts.routes import wmts_router

__all__ = ["wmts_router"]
