"""``/wmts``: WMTS 1.0.0 GetCapabilities and GetTile, KVP and RESTful.

The routes are public; the Capabilities list only the layers the caller may read, and a tile
of a layer it may not read answers an ``ExceptionReport`` (401 + Basic challenge, or 403). A
scoped layer (案卷) is drawn with only the rows in the caller's data scope (数据范围).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import get_conn
from api.ows_errors import XML_MEDIA_TYPE, OwsError, OwsRoute, invalid
from api.security.policy import PER_CALLER_HEADERS, principal_of, public
from api.wfs.errors import layer_refusal, readable
from api.wmts.capabilities import capabilities_xml
from api.wmts.catalogue import basemap_layers, layer_extents, vector_layers
from api.wmts.features import TileWindow, fetch_tile_features
from api.wmts.render import PNG_MEDIA_TYPE, basemap_png, vector_png
from api.wmts.request import GET_TILE_PARAMS, TileTarget, kvp_params, require, resolve_tile
from api.wmts.styles import style_for
from api.wmts.tms import TMS_INFO
from layers.basemaps import BASEMAPS, BasemapSpec

connection = asynccontextmanager(get_conn)
KVP_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
    for name in ("SERVICE", "REQUEST", "VERSION", *(p.upper() for p in GET_TILE_PARAMS))
]


def wmts_base(request: Request) -> str:
    """The service's absolute base URL (``…/wmts``)."""
    return str(request.base_url).rstrip("/") + "/wmts"


async def capabilities_response(request: Request, only: BasemapSpec | None = None) -> Response:
    """The Capabilities document: every layer, or just the basemap ``only``."""
    settings = request.app.state.settings
    layers = basemap_layers(settings.basemap.dir, (only,) if only else BASEMAPS)
    if only is None:
        principal = principal_of(request)
        specs = [s for s in request.app.state.registry if readable(s, principal)]
        async with connection(request) as conn:
            extents = await layer_extents(conn, specs)
        layers += vector_layers(specs, extents)
    body = await run_in_threadpool(capabilities_xml, layers, wmts_base(request), settings.title)
    headers = PER_CALLER_HEADERS if only is None else None
    return Response(body, media_type=XML_MEDIA_TYPE, headers=headers)


async def tile_response(request: Request, target: TileTarget) -> Response:
    """Render one validated tile as PNG."""
    if target.basemap is not None:
        path = target.basemap.path(request.app.state.settings.basemap.dir)
        if not path.is_file():
            text = f"Basemap {target.basemap.id} is not built; run `cityops samples basemaps`."
            raise OwsError("NoApplicableCode", text, "layer", 503)
        png = await run_in_threadpool(
            basemap_png, path, target.tms, target.z, target.col, target.row
        )
        return Response(png, media_type=PNG_MEDIA_TYPE, headers={"Cache-Control": "max-age=3600"})
    spec = target.spec
    assert spec is not None  # noqa: S101 - resolve_tile returns a basemap or a spec
    principal = principal_of(request)
    if not readable(spec, principal):
        return layer_refusal(spec, principal, "layer")
    b = target.tms.xy_bounds(target.col, target.row, target.z)
    window = TileWindow(b.left, b.bottom, b.right, b.top, TMS_INFO[target.tms_id].epsg)
    async with connection(request) as conn:
        wkbs = await fetch_tile_features(conn, spec, window, principal.scope)
    png = await run_in_threadpool(vector_png, wkbs, spec.geometry_type, style_for(spec), window)
    cache = "max-age=60" if spec.public else "private, max-age=60"
    return Response(png, media_type=PNG_MEDIA_TYPE, headers={"Cache-Control": cache})


def wmts_router() -> APIRouter:
    """Build the WMTS router; every error answers an OWS ``ExceptionReport``."""
    router = APIRouter(prefix="/wmts", tags=["WMTS"], route_class=OwsRoute)

    @router.get(
        "",
        operation_id="wmts.kvp",
        summary="WMTS 1.0.0 KVP: SERVICE=WMTS&REQUEST=GetCapabilities|GetTile",
        response_class=Response,
        openapi_extra={"parameters": KVP_PARAMETERS},
        dependencies=[Depends(public)],  # layers are checked inside (OWS exception reports)
    )
    async def kvp(request: Request) -> Response:
        params = kvp_params(request)
        if require(params, "service").upper() != "WMTS":
            raise invalid("service", "SERVICE must be WMTS.")
        operation = require(params, "request")
        if operation.lower() == "getcapabilities":
            return await capabilities_response(request)
        if operation.lower() != "gettile":
            text = f"Operation '{operation}' is not supported; use GetCapabilities or GetTile."
            raise OwsError("OperationNotSupported", text, "request", 501)
        if require(params, "version") != "1.0.0":
            raise invalid("version", "VERSION must be 1.0.0.")
        values = {name: require(params, name) for name in GET_TILE_PARAMS}
        target = resolve_tile(
            request.app.state.registry,
            layer=values["layer"],
            style=values["style"],
            fmt=values["format"],
            tms_id=values["tilematrixset"],
            matrix=values["tilematrix"],
            row=values["tilerow"],
            col=values["tilecol"],
        )
        return await tile_response(request, target)

    @router.get(
        "/1.0.0/WMTSCapabilities.xml",
        operation_id="wmts.getCapabilities",
        summary="WMTS 1.0.0 Capabilities (RESTful)",
        response_class=Response,
        dependencies=[Depends(public)],
    )
    async def rest_capabilities(request: Request) -> Response:
        return await capabilities_response(request)

    @router.get(
        "/1.0.0/{layer}/{style}/{tile_matrix_set}/{tile_matrix}/{tile_row}/{tile_col}",
        operation_id="wmts.getTile",
        summary="WMTS 1.0.0 GetTile (RESTful); the last segment is `{TileCol}.png`",
        response_class=Response,
        responses={200: {"content": {PNG_MEDIA_TYPE: {}}}},
        dependencies=[Depends(public)],  # the layer is checked inside (OWS exception report)
    )
    async def rest_tile(
        request: Request,
        layer: str,
        style: str,
        tile_matrix_set: str,
        tile_matrix: str,
        tile_row: str,
        tile_col: str,
    ) -> Response:
        col, dot, ext = tile_col.partition(".")
        if not dot or ext != "png":
            raise invalid("format", "Only .png tiles are offered.", 404)
        target = resolve_tile(
            request.app.state.registry,
            layer=layer,
            style=style,
            fmt="image/png",
            tms_id=tile_matrix_set,
            matrix=tile_matrix,
            row=tile_row,
            col=col,
            status=404,
        )
        return await tile_response(request, target)

    return router
