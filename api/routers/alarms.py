"""Geofences, alarms and manifests (电子围栏、报警、电子联单).

Fences: read with ``alarms:read``, change with ``layers:write`` (GeoJSON in the ``crs`` the
client names; stored and returned in CGCS2000, EPSG:4490). Alarms: list/read, acknowledge and
close with ``alarms:read`` (within the caller's data scope); ``POST /alarms/{id}/case`` turns one
into a case and also needs ``cases:report`` or ``cases:accept``; ``GET /alarms/stream`` is a
Server-Sent Events stream of new alarms (and, with ``vehicles:read``, positions). Manifests need
``vehicles:read``, their statistics ``stats:read``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from psycopg import sql
from pydantic import BaseModel, Field

from api.deps import get_conn
from api.routers.crs import parse_crs
from api.security.policy import require
from layers.fleet import alarms, manifests
from layers.fleet.live import StreamOptions, stream
from layers.fleet.registry import geojson_to_storage
from spatial.crs import crs_uri
from spatial.db import libpq_url
from spatial.errors import FieldIssue, Forbidden, InvalidInput, NotFound
from spatial.geofence import store
from spatial.models.geofence import ALARM_KINDS, ALARM_STATES, FENCE_KINDS, MANIFEST_STATES
from spatial.security.principal import Principal
from spatial.security.scope import scope_condition

Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
AlarmReader = Annotated[Principal, Depends(require("alarms:read"))]
FenceWriter = Annotated[Principal, Depends(require("layers:write"))]
VehicleReader = Annotated[Principal, Depends(require("vehicles:read"))]
StatsReader = Annotated[Principal, Depends(require("stats:read"))]
OptFrom = Annotated[datetime | None, Query(alias="from", description="ISO 8601 with offset")]
OptTo = Annotated[datetime | None, Query(alias="to", description="ISO 8601 with offset")]
From = Annotated[datetime, Query(alias="from", description="ISO 8601 with offset")]
Lasting = Annotated[bool | None, Query(description="true: still lasting, false: ended")]
Positions = Annotated[bool, Query(description="also latest positions (needs vehicles:read)")]
CGCS2000 = {"Content-Crs": f"<{crs_uri(4490)}>"}
FenceKind = Literal["polygon", "circle", "corridor", "forbidden_road", "forbidden_zone", "site"]
assert set(FenceKind.__args__) == set(FENCE_KINDS)  # type: ignore[attr-defined]


class FenceIn(BaseModel):
    """A fence: geometry by kind (see ``spatial.geofence.store``), rule, schedule, vehicles."""

    name: str = Field(min_length=1, max_length=100)
    kind: FenceKind
    rule: Literal["none", "enter", "exit", "inside_max", "outside"] = "enter"
    geometry: dict[str, Any] = Field(description="GeoJSON geometry in ``crs``")
    crs: str = Field(default="cgcs2000", description="cgcs2000, wgs84, gcj02 or bd09")
    radius_m: float | None = Field(default=None, gt=0, le=50_000)
    width_m: float | None = Field(default=None, gt=0, le=5_000)
    inside_max_minutes: int | None = Field(default=None, gt=0, le=100_000)
    speed_limit_kmh: float | None = Field(default=None, gt=0, le=200)
    hysteresis_m: float = Field(default=15.0, ge=0, le=500)
    dwell_s: int = Field(default=0, ge=0, le=86_400)
    schedule: dict[str, Any] = Field(
        default_factory=dict,
        description='{"windows": [{"days": [1,2,3,4,5], "start": "07:00", "end": "09:00"}]}',
    )
    applicability: dict[str, Any] = Field(
        default_factory=dict,
        description='{"vehicle_kinds": ["渣土车"], "vehicle_ids": [1], "company_ids": [2]}',
    )
    active: bool = True

    def document(self) -> dict[str, Any]:
        """The stored document (geometry converted to CGCS2000)."""
        crs = parse_crs(self.crs)
        doc = self.model_dump(exclude={"crs"})
        doc["geometry"] = geojson_to_storage(self.geometry, crs, "geometry")
        return doc


class AlarmAction(BaseModel):
    """A note for acknowledge/close."""

    note: str | None = Field(default=None, max_length=500)


class CaseRequest(BaseModel):
    """Optional overrides for the case made from an alarm."""

    class_code: str | None = Field(default=None, pattern=r"^[0-9]{10}$")
    description: str | None = Field(default=None, min_length=1, max_length=2000)


def _scope(request: Request, principal: Principal) -> sql.Composable | None:
    spec = request.app.state.registry.get("alarms")
    return scope_condition(spec, principal.scope, "a")


async def _visible(
    conn: psycopg.AsyncConnection, request: Request, principal: Principal, alarm_id: int
) -> dict[str, Any]:
    scope = _scope(request, principal)
    where = sql.SQL(" AND {}").format(scope) if scope is not None else sql.SQL("")
    query = sql.SQL("SELECT {} FROM city.alarms a WHERE a.id = %s{}").format(
        sql.SQL(alarms.ALARM_COLUMNS), where
    )
    found = await alarms.rows(conn, query, (alarm_id,))  # type: ignore[arg-type]
    if not found:
        raise NotFound(f"No alarm {alarm_id}.")
    return found[0]


def alarms_router() -> APIRouter:
    """Build the router."""
    router = APIRouter(prefix="/api/v1", tags=["电子围栏与报警 (geofences, alarms)"])
    _fence_routes(router)
    _alarm_routes(router)
    _stream_route(router)
    _manifest_routes(router)
    return router


def _fence_routes(router: APIRouter) -> None:
    @router.get("/geofences", operation_id="listGeofences", summary="电子围栏列表")
    async def list_fences(
        conn: Conn,
        _: AlarmReader,
        response: Response,
        kind: FenceKind | None = None,
        active: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        response.headers.update(CGCS2000)
        return await store.list_fences(conn, kind, active, limit, offset)

    @router.get("/geofences/{fence_id:int}", operation_id="getGeofence", summary="电子围栏")
    async def get_fence(conn: Conn, _: AlarmReader, fence_id: int, response: Response) -> dict:
        response.headers.update(CGCS2000)
        return await store.get_fence(conn, fence_id)

    @router.post(
        "/geofences", operation_id="createGeofence", summary="新建电子围栏", status_code=201
    )
    async def create_fence(
        conn: Conn, _: FenceWriter, body: FenceIn, response: Response
    ) -> dict[str, Any]:
        response.headers.update(CGCS2000)
        return await store.create_fence(conn, body.document())

    @router.put("/geofences/{fence_id:int}", operation_id="replaceGeofence", summary="修改电子围栏")
    async def replace_fence(
        conn: Conn, _: FenceWriter, fence_id: int, body: FenceIn, response: Response
    ) -> dict[str, Any]:
        response.headers.update(CGCS2000)
        return await store.replace_fence(conn, fence_id, body.document())

    @router.delete(
        "/geofences/{fence_id:int}",
        operation_id="deleteGeofence",
        summary="删除电子围栏",
        status_code=204,
    )
    async def delete_fence(conn: Conn, _: FenceWriter, fence_id: int) -> Response:
        await store.delete_fence(conn, fence_id)
        return Response(status_code=204)


def _alarm_filters(
    kind: str | None,
    state: str | None,
    vehicle_id: int | None,
    plate: str | None,
    fence_id: int | None,
    active: bool | None,
    start: datetime | None,
    end: datetime | None,
) -> tuple[list[sql.Composable], dict[str, Any]]:
    if kind is not None and kind not in ALARM_KINDS:
        raise InvalidInput("Unknown alarm kind.", [FieldIssue("kind", f"one of {ALARM_KINDS}")])
    if state is not None and state not in ALARM_STATES:
        raise InvalidInput("Unknown state.", [FieldIssue("state", f"one of {ALARM_STATES}")])
    parts: list[sql.Composable] = []
    args: dict[str, Any] = {}
    for column, value in (
        ("kind", kind),
        ("state", state),
        ("vehicle_id", vehicle_id),
        ("plate", plate),
        ("fence_id", fence_id),
    ):
        if value is not None:
            parts.append(
                sql.SQL("a.{} = {}").format(sql.Identifier(column), sql.Placeholder(column))
            )
            args[column] = value
    if active is not None:
        parts.append(sql.SQL("a.ended_at IS NULL" if active else "a.ended_at IS NOT NULL"))
    if start is not None:
        parts.append(sql.SQL("a.started_at >= %(start)s"))
        args["start"] = start
    if end is not None:
        parts.append(sql.SQL("a.started_at < %(end)s"))
        args["end"] = end
    return parts, args


def _alarm_routes(router: APIRouter) -> None:
    @router.get("/alarms", operation_id="listAlarms", summary="报警列表")
    async def list_alarms(
        conn: Conn,
        principal: AlarmReader,
        request: Request,
        kind: str | None = None,
        state: str | None = None,
        vehicle_id: int | None = None,
        plate: str | None = None,
        fence_id: int | None = None,
        active: Lasting = None,
        start: OptFrom = None,
        end: OptTo = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 200,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        parts, args = _alarm_filters(kind, state, vehicle_id, plate, fence_id, active, start, end)
        scope = _scope(request, principal)
        if scope is not None:
            parts.append(scope)
        where = sql.SQL(" AND ").join(parts) if parts else sql.SQL("TRUE")
        query = sql.SQL(
            "SELECT {} FROM city.alarms a WHERE {} ORDER BY a.started_at DESC, a.id DESC "
            "LIMIT %(limit)s OFFSET %(offset)s"
        ).format(sql.SQL(alarms.ALARM_COLUMNS), where)
        items = await alarms.rows(conn, query, {**args, "limit": limit, "offset": offset})  # type: ignore[arg-type]
        return {"items": items, "limit": limit, "offset": offset, "crs": crs_uri(4490)}

    @router.get("/alarms/{alarm_id:int}", operation_id="getAlarm", summary="报警详情")
    async def get_alarm(
        conn: Conn, principal: AlarmReader, request: Request, alarm_id: int
    ) -> dict[str, Any]:
        return await _visible(conn, request, principal, alarm_id)

    @router.post(
        "/alarms/{alarm_id:int}/acknowledge", operation_id="acknowledgeAlarm", summary="确认报警"
    )
    async def acknowledge(
        conn: Conn,
        principal: AlarmReader,
        request: Request,
        alarm_id: int,
        body: AlarmAction | None = None,
    ) -> dict[str, Any]:
        await _visible(conn, request, principal, alarm_id)
        note = body.note if body else None
        return await alarms.acknowledge(conn, alarm_id, _user(principal), note)

    @router.post("/alarms/{alarm_id:int}/close", operation_id="closeAlarm", summary="关闭报警")
    async def close(
        conn: Conn,
        principal: AlarmReader,
        request: Request,
        alarm_id: int,
        body: AlarmAction | None = None,
    ) -> dict[str, Any]:
        await _visible(conn, request, principal, alarm_id)
        note = body.note if body else None
        return await alarms.close(conn, alarm_id, _user(principal), note)

    @router.post(
        "/alarms/{alarm_id:int}/case",
        operation_id="alarmToCase",
        summary="报警转案卷",
        status_code=201,
    )
    async def to_case(
        conn: Conn,
        principal: AlarmReader,
        request: Request,
        response: Response,
        alarm_id: int,
        body: CaseRequest | None = None,
    ) -> dict[str, Any]:
        if not (principal.can("cases:report") or principal.can("cases:accept")):
            raise Forbidden(
                f"{principal.name} may not create cases (needs cases:report or cases:accept)."
            )
        await _visible(conn, request, principal, alarm_id)
        body = body or CaseRequest()
        out = await alarms.to_case(
            conn, alarm_id, principal, class_code=body.class_code, description=body.description
        )
        if not out["created"]:
            response.status_code = 200
        return out


def _user(principal: Principal) -> int | None:
    return principal.id if principal.kind == "user" else None


def _stream_route(router: APIRouter) -> None:
    @router.get(
        "/alarms/stream",
        operation_id="streamAlarms",
        summary="报警实时推送 (SSE)",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def alarm_stream(
        principal: AlarmReader,
        request: Request,
        positions: Positions = False,
        heartbeat: Annotated[float, Query(ge=0.2, le=120)] = 15.0,
        limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
        max_seconds: Annotated[float | None, Query(gt=0, le=86_400)] = None,
        last_event_id: Annotated[int | None, Header(alias="Last-Event-ID")] = None,
        since_id: Annotated[int | None, Query(ge=0, description="replay after this id")] = None,
    ) -> StreamingResponse:
        if positions and not principal.can("vehicles:read"):
            raise Forbidden(f"{principal.name} may not follow positions (needs vehicles:read).")
        options = StreamOptions(
            last_id=since_id if since_id is not None else last_event_id,
            positions=positions,
            heartbeat_s=heartbeat,
            limit=limit,
            max_seconds=max_seconds,
        )
        conninfo = libpq_url(str(request.app.state.settings.db.url))
        body = stream(conninfo, _scope(request, principal), options, request.is_disconnected)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **CGCS2000}
        return StreamingResponse(body, media_type="text/event-stream", headers=headers)


def _manifest_routes(router: APIRouter) -> None:
    @router.get("/manifests", operation_id="listManifests", summary="电子联单")
    async def list_manifests(
        conn: Conn,
        _: VehicleReader,
        state: str | None = None,
        vehicle_id: int | None = None,
        company_id: int | None = None,
        start: OptFrom = None,
        end: OptTo = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 200,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        if state is not None and state not in MANIFEST_STATES:
            raise InvalidInput(
                "Unknown manifest state.", [FieldIssue("state", f"one of {MANIFEST_STATES}")]
            )
        items = await manifests.list_manifests(
            conn,
            state=state,
            vehicle_id=vehicle_id,
            company_id=company_id,
            start=start,
            end=end,
            limit=limit,
            offset=offset,
        )
        return {"items": items, "limit": limit, "offset": offset}

    @router.get("/manifests/stats", operation_id="manifestStats", summary="运输趟数与消纳量占比")
    async def stats(
        conn: Conn,
        _: StatsReader,
        start: From,
        end: OptTo = None,
    ) -> dict[str, Any]:
        end = end or start + timedelta(days=1)
        if end <= start or end - start > timedelta(days=366):
            raise InvalidInput(
                "The window must be positive and at most a year.",
                [FieldIssue("to", "after from, within 366 days")],
            )
        return {"from": start, "to": end, **await manifests.stats(conn, start, end)}
