"""Response models of the geocoding API, and the conversion of matches into them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from geocoder.forward import Match, Result
from geocoder.index import GeoIndex, Level, Place
from spatial.crs import ClientCRS, from_storage


class Point(BaseModel):
    """A point in the response's ``crs``."""

    lon: float
    lat: float


class Ref(BaseModel):
    """A coded, named area."""

    code: str
    name: str | None = None


class Candidate(BaseModel):
    """One ranked forward-geocoding result."""

    score: float = Field(description="0–1; 1 is an exact name and an existing plate")
    level: Level = Field(description="门牌/楼牌/兴趣点/街巷/区片/区域")
    kind: str = Field(description="door|building|poi|road|crossing|compound|district|street|…")
    method: str = Field(description="name|alias|old_name|code|pinyin|initials|homophone|typo|…")
    matched: str = Field(description="the name, alias (别名) or former name (曾用名) matched")
    code: str | None = Field(description="标识码; null for interpolated plates and crossings")
    name: str
    standard_address: str
    point: Point
    unit_grid: str | None = None
    community: Ref | None = None
    street: Ref | None = None
    interpolated: bool = False
    detail: str | None = Field(None, description="unit/floor/room below the plate: 2单元301室")
    relative: str | None = Field(None, description="relative description kept: 东门, 旁, 对面")
    note: str | None = None


class ParsedQuery(BaseModel):
    """The query as segmented by the parser (GB/T 30428.3 segments)."""

    normalized: str
    areas: list[str] = Field(description="codes of the district/street/community prefixes")
    base: str | None = None
    number: int | None = None
    sub_number: int | None = None
    suffix: str | None = None
    detail: str | None = None
    relative: str | None = None
    remainder: str | None = Field(None, description="补充说明 that matched nothing")


class GeocodeResponse(BaseModel):
    """Forward geocoding: ranked candidates; points in ``crs``."""

    query: str
    crs: ClientCRS
    parsed: ParsedQuery
    candidates: list[Candidate]


class Suggestion(BaseModel):
    """A type-ahead completion."""

    text: str
    level: Level
    kind: str
    code: str
    standard_address: str


class SuggestResponse(BaseModel):
    """Type-ahead completions."""

    query: str
    suggestions: list[Suggestion]


def point_out(lon: float, lat: float, crs: ClientCRS) -> Point:
    """A storage point converted to the client's CRS (8 decimals ≈ 1 mm)."""
    if crs not in (ClientCRS.CGCS2000, ClientCRS.WGS84):  # the others are identical here
        lon, lat = (float(v) for v in from_storage(lon, lat, crs))
    return Point(lon=round(lon, 8), lat=round(lat, 8))


def _ref(ix: GeoIndex, code: str | None) -> Ref | None:
    return Ref(code=code, name=ix.name_of(code)) if code else None


def synthetic(place: Place) -> bool:
    """Places made up by the geocoder (interpolated plates, crossings) have no code."""
    return "#" in place.code or place.kind == "crossing"


def candidate(ix: GeoIndex, m: Match, result: Result, crs: ClientCRS) -> Candidate:
    """Convert one match."""
    p = m.place
    return Candidate(
        score=m.score,
        level=p.level,
        kind=p.kind,
        method=m.method,
        matched=m.matched,
        code=None if synthetic(p) else p.code,
        name=p.name,
        standard_address=p.address,
        point=point_out(m.lon, m.lat, crs),
        unit_grid=p.grid,
        community=_ref(ix, p.community),
        street=_ref(ix, p.street),
        interpolated=m.interpolated,
        detail=result.parsed.detail if p.level in (Level.DOOR, Level.BUILDING) else None,
        relative=result.parsed.relative,
        note=m.note,
    )


def response(ix: GeoIndex, result: Result, crs: ClientCRS) -> GeocodeResponse:
    """Convert a forward result."""
    parsed = result.parsed
    return GeocodeResponse(
        query=result.query,
        crs=crs,
        parsed=ParsedQuery(
            normalized=parsed.normalized,
            areas=parsed.areas,
            base=parsed.base,
            number=parsed.number,
            sub_number=parsed.sub_number,
            suffix=parsed.suffix,
            detail=parsed.detail,
            relative=parsed.relative,
            remainder=parsed.remainder,
        ),
        candidates=[candidate(ix, m, result, crs) for m in result.matches],
    )
