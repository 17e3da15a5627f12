"""Fleet registry, telemetry ingest, gate events and tracks (车辆监管, 渣土全链条).

Registry reads need ``vehicles:read``; changes ``layers:write``; batch import ``data:import``.
Terminals post fixes with an API key holding ``telemetry:write``. Geometries are GeoJSON;
``crs`` says which system the client sends (stored and returned in CGCS2000, EPSG:4490), and
track/stop output is in the ``crs`` asked for.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
import psycopg
from fastapi import APIRouter, Body, Depends, File, Query, Response, UploadFile
from pydantic import BaseModel, Field, ValidationError

from api.deps import get_conn
from api.routers.crs import parse_crs
from api.security.policy import require
from layers.fleet import imports, registry, tracks, violations
from layers.fleet.ingest import ingest
from layers.fleet.telemetry import parse_many
from spatial.crs import ClientCRS
from spatial.errors import FieldIssue, InvalidInput, PayloadTooLarge, UnprocessableInput
from spatial.security.principal import Principal

Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
Reader = Annotated[Principal, Depends(require("vehicles:read"))]
Writer = Annotated[Principal, Depends(require("layers:write"))]
Importer = Annotated[Principal, Depends(require("data:import"))]
Terminal = Annotated[Principal, Depends(require("telemetry:write"))]
CrsParam = Annotated[str, Query(description="cgcs2000 (default), wgs84, gcj02 or bd09")]
From = Annotated[datetime, Query(alias="from", description="ISO 8601 with offset")]
To = Annotated[datetime, Query(alias="to", description="ISO 8601 with offset")]
MAX_FIXES = 20_000
MAX_UPLOAD = 20 * 1024 * 1024


class Company(BaseModel):
    """A transport or sanitation company."""

    code: str = Field(min_length=1, max_length=30)
    name: str = Field(min_length=2, max_length=100)
    credit_code: str | None = Field(default=None, max_length=18)
    kind: str = Field(default="运输企业", max_length=10)
    contact: str | None = Field(default=None, max_length=30)
    phone: str | None = Field(default=None, max_length=30)
    address: str | None = Field(default=None, max_length=200)


class Site(BaseModel):
    """A 工地/消纳场/中转场/停车场 with its polygon (GeoJSON) and optional gate point."""

    code: str = Field(min_length=1, max_length=30)
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["工地", "消纳场", "中转场", "停车场"]
    address: str | None = Field(default=None, max_length=200)
    street_code: str | None = Field(default=None, pattern=r"^[0-9]{9}$")
    company_id: int | None = None
    contact: str | None = Field(default=None, max_length=30)
    phone: str | None = Field(default=None, max_length=30)
    active: bool = True
    geom: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon")
    gate: dict[str, Any] | None = Field(default=None, description="GeoJSON Point")


class Vehicle(BaseModel):
    """A supervised vehicle."""

    plate: str = Field(min_length=5, max_length=16)
    kind: Literal["渣土车", "垃圾车", "环卫车", "其他"]
    company_id: int | None = None
    sealed_capable: bool = False
    speed_limit_kmh: int = Field(default=60, ge=5, le=150)
    load_capacity_kg: float | None = Field(default=None, ge=0)
    active: bool = True


class Driver(BaseModel):
    """A driver."""

    name: str = Field(min_length=1, max_length=30)
    license_no: str = Field(min_length=4, max_length=30)
    phone: str | None = Field(default=None, max_length=30)
    company_id: int | None = None
    vehicle_id: int | None = None


class TerminalIn(BaseModel):
    """An on-board terminal."""

    terminal_id: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.:-]+$")
    vehicle_id: int | None = None
    sim: str | None = Field(default=None, max_length=20)
    model: str | None = Field(default=None, max_length=40)
    active: bool = True
    installed_at: date | None = None


class Permit(BaseModel):
    """出土许可 (site), 运输许可 (vehicle or company) or 处置许可 (disposal site)."""

    permit_no: str = Field(min_length=1, max_length=40)
    kind: Literal["出土许可", "运输许可", "处置许可"]
    site_id: int | None = None
    company_id: int | None = None
    vehicle_id: int | None = None
    valid_from: date
    valid_to: date
    issued_by: str | None = Field(default=None, max_length=60)
    note: str | None = Field(default=None, max_length=200)


class Route(BaseModel):
    """An approved route (GeoJSON LineString or MultiLineString) with its corridor."""

    code: str = Field(min_length=1, max_length=30)
    name: str = Field(min_length=1, max_length=100)
    corridor_m: float = Field(default=100.0, gt=0, le=5000)
    geom: dict[str, Any]


class Binding(BaseModel):
    """工地 ↔ 企业 ↔ 车辆 ↔ 消纳场 ↔ 路线, valid from/to."""

    site_id: int
    company_id: int
    vehicle_id: int
    disposal_site_id: int
    route_id: int | None = None
    valid_from: date
    valid_to: date
    note: str | None = Field(default=None, max_length=200)


MODELS: dict[str, type[BaseModel]] = {
    "companies": Company,
    "sites": Site,
    "vehicles": Vehicle,
    "drivers": Driver,
    "terminals": TerminalIn,
    "permits": Permit,
    "routes": Route,
    "bindings": Binding,
}


class GateEventIn(BaseModel):
    """A plate-recognition or weighbridge event at a site gate."""

    site_id: int
    plate: str = Field(min_length=5, max_length=16)
    direction: Literal["in", "out"]
    source: Literal["plate", "weighbridge"] = "plate"
    weight_kg: float | None = Field(default=None, ge=0, le=200_000)
    at: datetime


def _validate(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """Validate a body against the entity model; errors name the fields (422)."""
    try:
        return model.model_validate(data).model_dump()
    except ValidationError as exc:
        issues = [
            FieldIssue(".".join(str(p) for p in err["loc"]) or "body", err["msg"])
            for err in exc.errors()
        ]
        raise UnprocessableInput("Invalid record.", issues) from None


def _crs(value: str) -> ClientCRS:
    return parse_crs(value)


def _with_geometries(e: registry.Entity, values: dict[str, Any], crs: ClientCRS) -> dict[str, Any]:
    out = dict(values)
    for column in e.geometry_columns:
        if out.get(column) is not None:
            out[column] = registry.geojson_to_storage(out[column], crs, column)
    return out


def fleet_router() -> APIRouter:
    """Build the fleet router."""
    router = APIRouter(prefix="/api/v1", tags=["车辆监管 (fleet)"])
    add_telemetry_routes(router)
    add_whitelist_routes(router)
    add_track_routes(router)
    for name in registry.ENTITIES:
        add_entity_routes(router, name)
    return router


def add_entity_routes(router: APIRouter, name: str) -> None:
    """List, read, create, change, delete, import and export one registry entity."""
    e = registry.entity(name)
    model = MODELS[name]
    base = f"/fleet/{name}"
    item = f"{base}/{{key:int}}" if e.key == "id" else f"{base}/{{key}}"
    suffix = name.capitalize()

    @router.get(base, operation_id=f"listFleet{suffix}", summary=f"{e.title}列表")
    async def list_(
        conn: Conn,
        _: Reader,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[dict[str, Any]]:
        return await registry.list_rows(conn, e, None, limit, offset)

    @router.get(f"{base}/export", operation_id=f"exportFleet{suffix}", summary=f"导出{e.title}")
    async def export(conn: Conn, _: Reader, format: Literal["csv", "xlsx"] = "csv") -> Response:
        header, rows = await imports.export_rows(conn, name)
        if format == "xlsx":
            data = imports.to_xlsx(name, header, rows)
            media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        else:
            data, media = imports.to_csv(header, rows), "text/csv; charset=utf-8"
        disposition = f'attachment; filename="fleet_{name}.{format}"'
        return Response(data, media_type=media, headers={"Content-Disposition": disposition})

    @router.post(f"{base}/import", operation_id=f"importFleet{suffix}", summary=f"导入{e.title}")
    async def import_(
        conn: Conn,
        _: Importer,
        file: Annotated[UploadFile, File(description="CSV (UTF-8/GBK) or XLSX")],
        crs: CrsParam = "cgcs2000",
    ) -> dict[str, Any]:
        data = await file.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            raise PayloadTooLarge("File larger than 20 MB.")
        rows = imports.read_table(data, file.filename or "upload.csv")
        report = await imports.import_rows(conn, name, rows, _crs(crs))
        return report.as_dict()

    @router.get(item, operation_id=f"getFleet{suffix}", summary=f"{e.title}详情")
    async def get(conn: Conn, _: Reader, key: Any) -> dict[str, Any]:
        return await registry.get_row(conn, e, key)

    @router.post(base, status_code=201, operation_id=f"createFleet{suffix}")
    async def create(
        conn: Conn, _: Writer, body: Annotated[dict[str, Any], Body()], crs: CrsParam = "cgcs2000"
    ) -> dict[str, Any]:
        values = _validate(model, body)
        return await registry.create_row(conn, e, _with_geometries(e, values, _crs(crs)))

    @router.patch(item, operation_id=f"updateFleet{suffix}")
    async def update(
        conn: Conn,
        _: Writer,
        key: Any,
        body: Annotated[dict[str, Any], Body()],
        crs: CrsParam = "cgcs2000",
    ) -> dict[str, Any]:
        current = await registry.get_row(conn, e, key)
        merged = _validate(model, {**current, **body})
        changed = {k: merged[k] for k in body if k in merged}
        return await registry.update_row(conn, e, key, _with_geometries(e, changed, _crs(crs)))

    @router.delete(item, status_code=204, operation_id=f"deleteFleet{suffix}")
    async def delete(conn: Conn, _: Writer, key: Any) -> Response:
        await registry.delete_row(conn, e, key)
        return Response(status_code=204)


def add_whitelist_routes(router: APIRouter) -> None:
    """White lists and gate events."""

    @router.get("/fleet/whitelist", operation_id="fleetWhitelist", summary="场地白名单")
    async def whitelist(
        conn: Conn,
        _: Reader,
        site_id: int | None = None,
        role: Literal["load", "unload"] | None = None,
        day: date | None = None,
    ) -> list[dict[str, Any]]:
        """Vehicles that may load at a site / unload at a disposal site on ``day`` (today)."""
        return await registry.whitelist(conn, day, site_id, role)

    @router.post(
        "/fleet/gate-events", status_code=201, operation_id="fleetGateEvent", summary="进出场事件"
    )
    async def gate_event(conn: Conn, _: Terminal, body: GateEventIn) -> dict[str, Any]:
        """Plate recognition / weighbridge; ``vehicle_id`` null = unregistered (黑车).

        The gate checks (黑车, 无准运) run at once, not only in the periodic scan.
        """
        row = await registry.record_gate_event(conn, **body.model_dump())
        await violations.check_gates(conn, since=row["at"] - timedelta(minutes=1))
        return row


def add_telemetry_routes(router: APIRouter) -> None:
    """HTTP batch ingest."""

    @router.post("/telemetry", operation_id="postTelemetry", summary="上传定位数据（批量）")
    async def telemetry(
        conn: Conn,
        _: Terminal,
        body: Annotated[Any, Body(description="a fix object, a list of fixes or {fixes: [...]}")],
    ) -> dict[str, Any]:
        """Store fixes; bad ones are quarantined with a reason, the others kept."""
        items = body.get("fixes") if isinstance(body, dict) and "fixes" in body else body
        items = items if isinstance(items, list) else [items]
        if len(items) > MAX_FIXES:
            raise PayloadTooLarge(f"At most {MAX_FIXES} fixes per request.")
        fixes, rejected = parse_many(items)
        result = await ingest(conn, fixes, rejected=rejected, source="http")
        return result.as_dict()


def _period(start: datetime, end: datetime) -> None:
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise InvalidInput("Times need a UTC offset.", [FieldIssue(name, "add +08:00 or Z")])
    tracks.check_period(start, end)


def add_track_routes(router: APIRouter) -> None:
    """Track, stops and planned-vs-actual for one vehicle."""
    base = "/fleet/vehicles/{vehicle_id:int}"

    @router.get(f"{base}/track", operation_id="fleetVehicleTrack", summary="轨迹回放")
    async def track(
        conn: Conn,
        _: Reader,
        vehicle_id: int,
        start: From,
        end: To,
        zoom: Annotated[float | None, Query(ge=0, le=24)] = None,
        crs: CrsParam = "cgcs2000",
    ) -> Response:
        """GeoJSON Feature (simplified for ``zoom``) with playback times and mileage."""
        _period(start, end)
        feature = await tracks.track(conn, vehicle_id, start, end, zoom, _crs(crs))
        return Response(orjson.dumps(feature), media_type="application/geo+json")

    @router.get(f"{base}/stops", operation_id="fleetVehicleStops", summary="停留点")
    async def stops(
        conn: Conn,
        _: Reader,
        vehicle_id: int,
        start: From,
        end: To,
        min_minutes: Annotated[int, Query(ge=1, le=1440)] = 5,
        radius_m: Annotated[float, Query(gt=0, le=1000)] = 50.0,
        crs: CrsParam = "cgcs2000",
    ) -> list[dict[str, Any]]:
        """Dwell of at least ``min_minutes`` within ``radius_m``."""
        _period(start, end)
        return await tracks.stops(
            conn,
            vehicle_id,
            start,
            end,
            min_minutes=min_minutes,
            radius_m=radius_m,
            crs=_crs(crs),
        )

    @router.get(f"{base}/route-compare", operation_id="fleetRouteCompare", summary="线路比对")
    async def route_compare(
        conn: Conn,
        _: Reader,
        vehicle_id: int,
        start: From,
        end: To,
        route_id: int | None = None,
    ) -> dict[str, Any]:
        """Share of fixes inside the approved route corridor and the largest deviation."""
        _period(start, end)
        return await tracks.route_compare(conn, vehicle_id, start, end, route_id)
