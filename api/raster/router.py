"""``/raster``: titiler's ``TilerFactory`` over the registered basemaps (ids, never URLs).

Following titiler's ``tiler_with_layers`` pattern, the dataset is chosen by a path parameter
naming a registered basemap; titiler's default ``url=`` dependency is not mounted, nor its
map viewer (which loads CDN assets): the HTML pages use local templates only. Basemaps are
public map data (公开地图数据): every route carries the ``public`` policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel
from rasterio.errors import RasterioError
from rio_tiler.errors import (
    InvalidColorFormat,
    InvalidExpression,
    InvalidFormat,
    MissingBands,
    PointOutsideBounds,
    RioTilerError,
    TileOutsideBounds,
)
from starlette.templating import Jinja2Templates
from titiler.core.factory import TilerFactory

from api.security.policy import public
from api.wmts.reader import BasemapReader
from api.wmts.routes import capabilities_response
from api.wmts.tms import supported_tms
from layers.basemaps import BASEMAPS, basemap_ids, get_basemap
from spatial.errors import CityError, ConfigurationError, InvalidInput, NotFound

PREFIX = "/raster/{basemap}"
TEMPLATES = Jinja2Templates(directory=FilePath(__file__).parent / "templates")
BAD_REQUEST = (InvalidColorFormat, InvalidExpression, InvalidFormat, MissingBands)


def basemap_path(
    request: Request,
    basemap: Annotated[str, Path(description=f"Registered basemap id: {', '.join(basemap_ids())}")],
) -> str:
    """Map a registered basemap id to its COG; unknown ids are 404, unbuilt ones 503."""
    path = get_basemap(basemap).path(request.app.state.settings.basemap.dir)
    if not path.is_file():
        raise ConfigurationError(f"Basemap {basemap} is not built; run `cityops samples basemaps`.")
    return str(path)


def raster_errors() -> Iterator[None]:
    """Turn rio-tiler and rasterio errors into the platform's problem responses."""
    try:
        yield
    except (TileOutsideBounds, PointOutsideBounds) as exc:
        raise NotFound(str(exc)) from exc
    except BAD_REQUEST as exc:
        raise InvalidInput(str(exc)) from exc
    except (RioTilerError, RasterioError) as exc:
        raise CityError("The raster could not be read.") from exc


class BasemapInfo(BaseModel):
    """A registered basemap and where to get it."""

    id: str
    title: str
    style: str
    built: bool
    tiles: str
    wmts: str


def raster_router() -> APIRouter:
    """Build the ``/raster`` router: basemap list, titiler endpoints, per-basemap WMTS."""
    factory = TilerFactory(
        router_prefix=PREFIX,
        reader=BasemapReader,
        path_dependency=basemap_path,
        supported_tms=supported_tms(),
        add_viewer=False,
        add_part=False,
        templates=TEMPLATES,
        name="raster",
    )
    router = APIRouter(
        tags=["底图 (basemaps)"], dependencies=[Depends(raster_errors), Depends(public)]
    )

    @router.get("/raster", response_model=list[BasemapInfo], operation_id="raster.listBasemaps")
    async def list_basemaps(request: Request) -> list[BasemapInfo]:
        base = str(request.base_url).rstrip("/")
        directory = request.app.state.settings.basemap.dir
        return [
            BasemapInfo(
                id=b.id,
                title=b.title,
                style=b.style,
                built=b.path(directory).is_file(),
                tiles=f"{base}/raster/{b.id}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}.png",
                wmts=f"{base}/raster/{b.id}/WMTSCapabilities.xml",
            )
            for b in BASEMAPS
        ]

    @router.get(
        f"{PREFIX}/WMTSCapabilities.xml",
        operation_id="raster.getWMTSCapabilities",
        summary="WMTS 1.0.0 Capabilities listing this basemap only (tiles served by /wmts)",
        response_class=Response,
        responses={200: {"content": {"application/xml": {}}}},
        dependencies=[Depends(basemap_path)],
    )
    async def basemap_wmts(request: Request, basemap: str) -> Response:
        return await capabilities_response(request, get_basemap(basemap))

    router.include_router(factory.router, prefix=PREFIX)
    return router
