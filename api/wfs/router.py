"""``/wfs``: a WFS 2.0 endpoint (KVP GET) over the same PostGIS layers as OGC API Features.

The route is public; access is checked per requested type name: GetCapabilities and an
unqualified DescribeFeatureType list only the layers the caller may read, and naming a layer
it may not read answers an ``ExceptionReport`` (401 + Basic challenge, or 403). GetFeature
on a scoped layer (案卷) returns, and counts, only the rows in the caller's data scope.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.deps import get_conn, get_registry
from api.ows_errors import OwsRoute
from api.security.policy import PER_CALLER_HEADERS, principal_of, public
from api.wfs import documents, encode, query
from api.wfs.errors import layer_refusal, readable, wfs_error
from api.wfs.params import (
    DEFAULT_COUNT,
    MAX_COUNT,
    PREFIX,
    feature_type,
    kvp,
    output_format,
    parse_bbox,
    parse_int,
    parse_srs,
)
from layers.registry import LayerRegistry, LayerSpec
from spatial.security.principal import Principal

XML = "application/xml"
GML = "application/gml+xml; version=3.2"
Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
Registry = Annotated[LayerRegistry, Depends(get_registry)]


def _service_url(request: Request) -> str:
    return str(request.url_for("wfs"))


def _readable(registry: LayerRegistry, principal: Principal) -> list[LayerSpec]:
    return [spec for spec in registry if readable(spec, principal)]


def _refused(specs: list[LayerSpec], principal: Principal) -> Response | None:
    """The refusal for the first requested layer ``principal`` may not read, if any."""
    for spec in specs:
        if not readable(spec, principal):
            return layer_refusal(spec, principal, "TYPENAMES")
    return None


async def get_capabilities(request: Request, conn: Conn, registry: Registry) -> Response:
    """List every registry layer the caller may read as a feature type."""
    specs = _readable(registry, principal_of(request))
    layers = [(spec, await query.extent(conn, spec)) for spec in specs]
    title = request.app.state.settings.title + " WFS"
    return Response(
        documents.capabilities(_service_url(request), title, layers),
        media_type=XML,
        headers=PER_CALLER_HEADERS,
    )


async def describe_feature_type(
    request: Request, params: dict[str, str], conn: Conn, registry: Registry
) -> Response:
    """The application schema of the requested (or all readable) feature types."""
    principal = principal_of(request)
    names = params.get("TYPENAMES") or params.get("TYPENAME")
    if names:
        specs = [feature_type(registry, n) for n in names.split(",")]
        if (refusal := _refused(specs, principal)) is not None:
            return refusal
    else:
        specs = _readable(registry, principal)
    pairs = [(spec, await query.layer_columns(conn, spec)) for spec in specs]
    return Response(documents.describe_feature_type(pairs), media_type="application/gml+xml")


async def get_feature(
    request: Request, params: dict[str, str], conn: Conn, registry: Registry
) -> Response:
    """A page of features by BBOX with COUNT/STARTINDEX paging, as GML 3.2 or GeoJSON."""
    principal = principal_of(request)
    spec = feature_type(registry, params.get("TYPENAMES") or params.get("TYPENAME"))
    if (refusal := _refused([spec], principal)) is not None:
        return refusal
    srs = parse_srs(params.get("SRSNAME"))
    bbox = parse_bbox(params.get("BBOX"), parse_srs(None))
    fmt = output_format(params.get("OUTPUTFORMAT"))
    count = parse_int(
        params.get("COUNT") or params.get("MAXFEATURES"), "COUNT", DEFAULT_COUNT, 0, MAX_COUNT
    )
    start = parse_int(params.get("STARTINDEX"), "STARTINDEX", 0, 0, 10**9)
    matched = await query.number_matched(conn, spec, bbox, principal.scope)
    if params.get("RESULTTYPE", "").lower() == "hits":
        count = 0
    columns = await query.layer_columns(conn, spec)
    sql_text, args = query.features_sql(
        spec, columns, bbox, srs, fmt, count, start, principal.scope
    )
    rows = await (await conn.execute(sql_text, args)).fetchall() if count else []
    if fmt == "geojson":
        body = encode.geojson_collection(spec, columns, rows, matched, srs.srid)
        return Response(body, media_type="application/json")
    next_url = _next_url(request, params, start, count, len(rows), matched)
    describe = f"{_service_url(request)}?" + urlencode(
        {
            "SERVICE": "WFS",
            "VERSION": "2.0.0",
            "REQUEST": "DescribeFeatureType",
            "TYPENAMES": f"{PREFIX}:{spec.id}",
        }
    )
    return Response(
        encode.gml_collection(spec, columns, rows, matched, describe, next_url), media_type=GML
    )


def _next_url(
    request: Request,
    params: dict[str, str],
    start: int,
    count: int,
    returned: int,
    matched: int | None,
) -> str | None:
    if returned < count or (matched is not None and start + returned >= matched):
        return None
    nxt = {k: v for k, v in params.items() if k != "STARTINDEX"}
    nxt["STARTINDEX"] = str(start + returned)
    return f"{_service_url(request)}?{urlencode(nxt)}"


def wfs_router() -> APIRouter:
    """Build the WFS router (one KVP endpoint dispatching on REQUEST)."""
    router = APIRouter(tags=["OGC WFS 2.0"], route_class=OwsRoute)

    @router.get(
        "/wfs",
        name="wfs",
        operation_id="wfs",
        summary="WFS 2.0 (KVP)",
        response_class=Response,
        dependencies=[Depends(public)],  # each requested type name is checked inside
    )
    async def wfs(request: Request, conn: Conn, registry: Registry) -> Response:
        params = kvp(request.query_params)
        service = params.get("SERVICE", "WFS").upper()
        if service != "WFS":
            raise wfs_error("InvalidParameterValue", "SERVICE", "SERVICE must be WFS")
        version = params.get("VERSION") or params.get("ACCEPTVERSIONS") or "2.0.0"
        if not version.startswith("2.0"):
            raise wfs_error("InvalidParameterValue", "VERSION", "only WFS 2.0.0 is served")
        req = params.get("REQUEST", "").lower()
        if req == "getcapabilities":
            return await get_capabilities(request, conn, registry)
        if req == "describefeaturetype":
            return await describe_feature_type(request, params, conn, registry)
        if req == "getfeature":
            return await get_feature(request, params, conn, registry)
        if not req:
            raise wfs_error("MissingParameterValue", "REQUEST", "REQUEST is required")
        raise wfs_error("OperationNotSupported", "REQUEST", f"{req} is not supported")

    return router
