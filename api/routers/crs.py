"""``/api/v1/crs``: convert a client coordinate (WGS84, GCJ-02, BD-09, CGCS2000) for field apps."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.security.policy import public
from spatial.crs import ClientCRS, from_storage, parse_client_crs, to_storage
from spatial.errors import FieldIssue, InvalidInput


class ConvertedPoint(BaseModel):
    """A point and the coordinate system it is expressed in."""

    lon: float
    lat: float
    crs: ClientCRS


class Conversion(BaseModel):
    """Input and output of a conversion; ``storage`` is always CGCS2000 (EPSG:4490)."""

    input: ConvertedPoint
    output: ConvertedPoint
    storage: ConvertedPoint


def parse_crs(value: str, field: str = "crs") -> ClientCRS:
    """A client CRS, or a 400 naming ``field``."""
    try:
        return parse_client_crs(value)
    except ValueError as exc:
        raise InvalidInput(
            f"Unsupported coordinate system '{value}'", [FieldIssue(field, str(exc))]
        ) from None


def crs_router() -> APIRouter:
    """Build the conversion router."""
    router = APIRouter(
        prefix="/api/v1/crs", tags=["坐标 (coordinates)"], dependencies=[Depends(public)]
    )

    @router.get(
        "/convert",
        response_model=Conversion,
        operation_id="convertPoint",
        summary="Convert a point between CGCS2000, WGS84, GCJ-02 and BD-09",
    )
    async def convert(
        lon: Annotated[float, Query(ge=-180, le=180, description="longitude")],
        lat: Annotated[float, Query(ge=-90, le=90, description="latitude")],
        from_: Annotated[str, Query(alias="from", description="wgs84|gcj02|bd09|cgcs2000")],
        to: Annotated[str, Query(description="wgs84|gcj02|bd09|cgcs2000")] = "cgcs2000",
    ) -> Conversion:
        src, dst = parse_crs(from_, "from"), parse_crs(to, "to")
        slon, slat = to_storage(lon, lat, src)
        olon, olat = from_storage(slon, slat, dst)
        return Conversion(
            input=ConvertedPoint(lon=lon, lat=lat, crs=src),
            output=ConvertedPoint(lon=round(olon, 8), lat=round(olat, 8), crs=dst),
            storage=ConvertedPoint(lon=round(slon, 8), lat=round(slat, 8), crs=ClientCRS.CGCS2000),
        )

    return router
