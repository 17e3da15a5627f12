"""``/api/v1/geocode`` and ``/api/v1/reverse``: the geocoder (GB/T 30428.3) over HTTP."""

from __future__ import annotations

import contextlib
import math
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from api.deps import get_conn
from api.routers.crs import parse_crs
from api.security.policy import public, require
from geocoder import batch
from geocoder.forward import geocode
from geocoder.index import GeoIndex
from geocoder.normalize import validate_query
from geocoder.reverse import ReverseResponse, assemble, found_in_memory, found_in_postgis
from geocoder.schemas import GeocodeResponse, Point, Suggestion, SuggestResponse, response
from geocoder.service import GeocoderService
from geocoder.suggest import suggest
from spatial.crs import ClientCRS, out_of_china, to_storage
from spatial.errors import FieldIssue, InvalidInput

CRS_HELP = "wgs84|gcj02|bd09|cgcs2000 (default cgcs2000)"
Q_HELP = "free-text address, place name, pinyin initials or 标识码 (at most 200 characters)"


class IndexInfo(BaseModel):
    """What the in-memory index holds."""

    built_at: str
    build_seconds: float
    counts: dict[str, int]


def as_json(model: BaseModel) -> Response:
    """Serialise with pydantic-core directly (the route's response_model still documents it)."""
    return Response(model.model_dump_json(), media_type="application/json")


def get_geocoder(request: Request) -> GeocoderService:
    """The app's geocoder service."""
    return request.app.state.geocoder


async def get_index(request: Request) -> GeoIndex:
    """The in-memory index (awaits the first build)."""
    return await get_geocoder(request).index()


def check_point(lon: float, lat: float) -> None:
    """Reject non-finite, out-of-range, swapped or outside-China coordinates (400)."""
    for name, v in (("lon", lon), ("lat", lat)):
        if not math.isfinite(v):
            raise InvalidInput(f"{name} is not a number.", [FieldIssue(name, "must be finite")])
    valid = -180 <= lon <= 180 and -90 <= lat <= 90
    if valid and not out_of_china(lon, lat):
        return
    if -90 <= lon <= 90 and not out_of_china(lat, lon):
        raise InvalidInput(
            f"lon and lat look swapped: ({lon}, {lat}) is outside China but ({lat}, {lon}) is "
            f"inside; send lon={lat}&lat={lon}.",
            [
                FieldIssue("lon", f"{lon} looks like a latitude"),
                FieldIssue("lat", f"{lat} looks like a longitude"),
            ],
        )
    if not valid:
        issues = [FieldIssue("lon", "must be within -180..180")] if abs(lon) > 180 else []
        issues += [FieldIssue("lat", "must be within -90..90")] if abs(lat) > 90 else []
        raise InvalidInput("The coordinates are out of range.", issues)
    raise InvalidInput(
        f"({lon}, {lat}) is outside China; this service covers 大丰区, Jiangsu.",
        [
            FieldIssue("lon", "outside China (72–138 E)"),
            FieldIssue("lat", "outside China (1–56 N)"),
        ],
    )


Index = Annotated[GeoIndex, Depends(get_index)]
Service = Annotated[GeocoderService, Depends(get_geocoder)]


def geocode_router() -> APIRouter:
    """Build the geocoding router."""
    router = APIRouter(prefix="/api/v1", tags=["地理编码 (geocoding)"])

    @router.get(
        "/geocode",
        response_model=GeocodeResponse,
        operation_id="geocode",
        summary="Forward geocoding: an address or place name → ranked candidates",
        dependencies=[Depends(public)],
    )
    async def forward(
        ix: Index,
        q: Annotated[str, Query(description=Q_HELP)],
        limit: Annotated[int, Query(ge=1, le=50)] = 5,
        crs: Annotated[str, Query(description=f"output {CRS_HELP}")] = "cgcs2000",
    ) -> Response:
        out_crs = parse_crs(crs)
        result = geocode(ix, validate_query(q), limit)
        return as_json(response(ix, result, out_crs))

    @router.get(
        "/geocode/suggest",
        response_model=SuggestResponse,
        operation_id="geocodeSuggest",
        summary="Type-ahead suggestions (name prefix, pinyin, initials, plate numbers)",
        dependencies=[Depends(public)],
    )
    async def type_ahead(
        ix: Index,
        q: Annotated[str, Query(description=Q_HELP)],
        limit: Annotated[int, Query(ge=1, le=20)] = 10,
    ) -> Response:
        places = suggest(ix, validate_query(q), limit)
        items = [
            Suggestion(
                text=p.name, level=p.level, kind=p.kind, code=p.code, standard_address=p.address
            )
            for p in places
        ]
        return as_json(SuggestResponse(query=q, suggestions=items))

    @router.post(
        "/geocode/batch",
        response_model=batch.BatchResponse,
        operation_id="geocodeBatch",
        summary="Batch geocoding of up to 10,000 rows (JSON or CSV); rows fail individually",
        openapi_extra={"requestBody": _BATCH_BODY},
        dependencies=[Depends(require("geocode:batch"))],
    )
    async def geocode_batch(
        request: Request,
        ix: Index,
        crs: Annotated[str, Query(description=f"output {CRS_HELP}")] = "cgcs2000",
        format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
    ) -> Any:
        out_crs = parse_crs(crs)
        body = await request.body()
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
        rows = batch.parse_csv(body) if kind in _CSV_TYPES else batch.parse_json(body)
        done = await anyio.to_thread.run_sync(batch.run, ix, rows)
        resp = batch.response(ix, done, out_crs)
        if format == "csv":
            return Response(batch.to_csv(resp), media_type="text/csv; charset=utf-8")
        return as_json(resp)

    @router.get(
        "/reverse",
        response_model=ReverseResponse,
        operation_id="reverseGeocode",
        summary="Reverse geocoding: a point → plate, POI, road, grids, community, street",
        dependencies=[Depends(public)],
    )
    async def reverse_geocode(
        request: Request,
        ix: Index,
        lon: Annotated[float, Query(allow_inf_nan=True, description="longitude")],
        lat: Annotated[float, Query(allow_inf_nan=True, description="latitude")],
        crs: Annotated[str, Query(description=f"input and output {CRS_HELP}")] = "cgcs2000",
        radius: Annotated[float, Query(gt=0, le=5000, description="search radius, m")] = 500,
        source: Annotated[
            Literal["memory", "postgis"],
            Query(description="memory: the in-memory index (fast); postgis: one SQL round trip"),
        ] = "memory",
    ) -> Response:
        client_crs = parse_crs(crs)
        check_point(lon, lat)
        x, y = (lon, lat) if client_crs in _SAME_AS_STORAGE else to_storage(lon, lat, client_crs)
        slon, slat = float(x), float(y)
        if source == "postgis":
            async with _pooled(request) as conn:
                found = await found_in_postgis(conn, slon, slat, radius)
        else:
            found = found_in_memory(ix, slon, slat, radius)
        out = assemble(found, slon, slat, Point(lon=lon, lat=lat), client_crs, client_crs)
        return as_json(out)

    @router.get(
        "/geocode/index",
        response_model=IndexInfo,
        operation_id="geocodeIndexInfo",
        dependencies=[Depends(public)],
    )
    async def index_info(ix: Index) -> IndexInfo:
        """What the in-memory geocoding index holds and when it was built."""
        return _info(ix)

    @router.post(
        "/geocode/index",
        response_model=IndexInfo,
        operation_id="geocodeIndexRebuild",
        dependencies=[Depends(require("layers:write"))],
    )
    async def index_rebuild(service: Service) -> IndexInfo:
        """Rebuild the index from the database (after an import of roads, plates or POIs)."""
        return _info(await service.rebuild())

    return router


def _info(ix: GeoIndex) -> IndexInfo:
    return IndexInfo(
        built_at=ix.built_at.isoformat(), build_seconds=ix.build_seconds, counts=ix.counts()
    )


_pooled = contextlib.asynccontextmanager(get_conn)  # a connection only when one is needed
_CSV_TYPES = {"text/csv", "application/csv", "text/plain"}
_SAME_AS_STORAGE = (ClientCRS.CGCS2000, ClientCRS.WGS84)  # CGCS2000 ≈ WGS84 (spatial.crs)
_BATCH_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"type": "array", "items": {"type": "string"}, "maxItems": 10000},
                    {
                        "type": "array",
                        "maxItems": 10000,
                        "items": {
                            "type": "object",
                            "properties": {"id": {"type": "string"}, "q": {"type": "string"}},
                        },
                    },
                ]
            },
            "example": [{"id": "1", "q": "幸福路23号"}, {"id": "2", "q": "莱茵城5栋"}],
        },
        "text/csv": {
            "schema": {"type": "string"},
            "example": "id,q\n1,幸福路23号\n2,莱茵城5栋\n",
        },
    },
}
