"""Field app and intake (城管通 / 案件登记): reports, media, tasks, positions, messages.

Coordinates: reports and fixes may be sent in CGCS2000, WGS84, GCJ-02 or BD-09 (``crs``);
case locations are returned in CGCS2000 (storage) unless a ``crs`` parameter says otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, File, Header, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from psycopg import sql
from pydantic import BaseModel, Field

from api.deps import get_conn
from api.routers.crs import parse_crs
from api.security.policy import authenticated, require
from layers.cases import intake, media, notify, positions, tasks
from spatial.errors import (
    Conflict,
    FieldIssue,
    Forbidden,
    InvalidInput,
    NotFound,
    UnprocessableInput,
)
from spatial.security import audit
from spatial.security.principal import Principal
from spatial.security.scope import scope_condition

Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
Anyone = Annotated[Principal, Depends(authenticated)]
Telemetry = Annotated[Principal, Depends(require("telemetry:write"))]
CRS_HELP = "cgcs2000|wgs84|gcj02|bd09 (default cgcs2000)"
TERMINAL = ("closed", "rejected", "not_registered", "cancelled", "voided", "merged")
ATTACHERS = ("cases:report", "cases:handle", "cases:accept", "cases:dispatch")
MAX_TRACK_SPAN = timedelta(days=7)


class ReportOut(BaseModel):
    """The case as stored, and the prompts for the reporter (相似案件, 跨网格)."""

    case: dict[str, Any]
    replayed: bool = Field(description="true: this key was used before; the original case")
    similar: list[dict[str, Any]]
    cross_grid: dict[str, Any] | None


class Uploaded(BaseModel):
    """A stored file: reference it as ``{sha256, kind}`` in a report."""

    sha256: str
    mime: str
    size: int
    created: bool = Field(description="false when the same bytes were stored before")


class Attach(BaseModel):
    """Files to attach to a case at its current stage (补采, 处置反馈…)."""

    media: list[intake.MediaRef] = Field(min_length=1, max_length=30)


class PositionsOut(BaseModel):
    """Accepted and duplicate counts; rejected fixes by index with the reason."""

    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]


def _cases_scope(request: Request, principal: Principal, alias: str = "c") -> sql.Composable:
    """The data-scope condition on ``city.cases`` for ``principal`` (TRUE when unrestricted)."""
    if not principal.can("cases:read"):
        return sql.SQL("FALSE")
    spec = request.app.state.registry.find("cases")
    cond = scope_condition(spec, principal.scope, alias)
    return cond if cond is not None else sql.SQL("TRUE")


def _may_report(principal: Principal) -> None:
    if not (principal.can("cases:report") or principal.can("cases:accept")):
        raise Forbidden(f"{principal.name} may not report cases (needs cases:report).")


def _user(principal: Principal) -> int:
    if principal.kind != "user" or principal.id is None:
        raise Forbidden("This endpoint is for users of the field app, not for API keys.")
    return principal.id


def _watcher(principal: Principal, user_id: int | None = None) -> None:
    """Inspector positions: oneself, or the command centre (cases:read over everything)."""
    if user_id is not None and principal.kind == "user" and principal.id == user_id:
        return
    if not (principal.can("cases:read") and principal.scope.all):
        raise Forbidden(f"{principal.name} may not watch inspectors' positions.")


def case_intake_router() -> APIRouter:
    """Build the field-app router."""
    router = APIRouter(prefix="/api/v1", tags=["上报 (field app and intake)"])
    add_report_routes(router)
    add_media_routes(router)
    add_field_routes(router)
    return router


def add_report_routes(router: APIRouter) -> None:
    """Reports (问题上报, 自行处置, 案件登记) and the reporter's history."""

    @router.post(
        "/cases",
        response_model=ReportOut,
        status_code=201,
        operation_id="reportCase",
        responses={200: {"model": ReportOut, "description": "replayed: the original case"}},
    )
    async def report_case(
        request: Request,
        conn: Conn,
        body: intake.CaseReport,
        principal: Anyone,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", pattern=intake.KEY_PATTERN)
        ] = None,
    ) -> Any:
        """Report a case (201), or return the original for a repeated key (200, replayed)."""
        _may_report(principal)
        if idempotency_key and body.idempotency_key and idempotency_key != body.idempotency_key:
            raise InvalidInput(
                "The Idempotency-Key header and the body's idempotency_key differ.",
                [FieldIssue("idempotency_key", "differs from the Idempotency-Key header")],
            )
        result = await intake.report_case(
            conn,
            principal,
            body,
            keyring=request.app.state.accounts.keys.keyring,
            geocoder=getattr(request.app.state, "geocoder", None),
            idempotency_key=idempotency_key,
        )
        out = ReportOut(
            case=result.case,
            replayed=result.replayed,
            similar=result.similar,
            cross_grid=result.cross_grid,
        )
        return JSONResponse(out.model_dump(mode="json"), status_code=200 if out.replayed else 201)

    @router.get("/cases/mine", operation_id="myReports")
    async def my_reports(
        conn: Conn,
        principal: Anyone,
        since: datetime | None = None,
        stage: Annotated[str | None, Query(max_length=30)] = None,
        before_id: Annotated[int | None, Query(ge=1, description="page: ids below this")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> list[dict[str, Any]]:
        """The caller's own reports, newest first (历史记录); locations in CGCS2000."""
        return await intake.my_reports(
            conn, principal, since=since, stage=stage, limit=limit, before_id=before_id
        )


async def _may_see_media(
    request: Request, conn: psycopg.AsyncConnection, principal: Principal, sha256: str
) -> bool:
    """Uploaded by the caller, or used by a case inside the caller's data scope."""
    query = sql.SQL(
        "SELECT EXISTS (SELECT 1 FROM city.audit_log WHERE target_type = 'media'"
        " AND target_id = %(sha)s AND action = 'media.upload' AND actor_id = %(id)s"
        " AND actor_kind = %(kind)s)"
        " OR EXISTS (SELECT 1 FROM city.case_media m WHERE m.sha256 = %(sha)s"
        " AND m.uploaded_by = %(uid)s)"
        " OR EXISTS (SELECT 1 FROM city.case_media m JOIN city.cases c ON c.id = m.case_id"
        " WHERE m.sha256 = %(sha)s AND {})"
    ).format(_cases_scope(request, principal))
    uid = principal.id if principal.kind == "user" else None
    args = {"sha": sha256, "id": principal.id, "kind": principal.kind, "uid": uid}
    row = await (await conn.execute(query, args)).fetchone()
    return bool(row and row[0])


async def _read_upload(file: UploadFile) -> bytes:
    """The upload's bytes, refusing more than the largest per-kind limit early."""
    cap = max(media.SIZE_LIMITS.values())
    data = await file.read(cap + 1)
    if len(data) > cap:
        media.check_size(len(data), "video/mp4")
    return data


def add_media_routes(router: APIRouter) -> None:
    """Photos, recordings and videos (近景/远景/参照物, 录音, 录像)."""

    @router.post("/media", response_model=Uploaded, status_code=201, operation_id="uploadMedia")
    async def upload_media(
        request: Request,
        conn: Conn,
        principal: Anyone,
        file: Annotated[UploadFile, File(description="JPEG/PNG/WebP/HEIC, MP4/MOV/3GP, AMR…")],
    ) -> Uploaded:
        """Store a file by SHA-256 (photos/audio ≤ 8 MiB, video ≤ 10 MiB); same bytes, same id."""
        if not (principal.can("cases:report") or principal.can("cases:handle")):
            raise Forbidden(f"{principal.name} may not upload media (needs cases:report).")
        data = await _read_upload(file)
        store = media.media_store_of(request.app.state)
        async with conn.transaction():
            stored = await media.store_media(conn, store, data, file.content_type)
            event = audit.event_from_request(
                request,
                principal,
                "media.upload",
                target_type="media",
                target_id=stored.sha256,
                detail={"mime": stored.mime, "size": stored.size, "name": file.filename},
            )
            await audit.record(conn, event)
        return Uploaded(
            sha256=stored.sha256, mime=stored.mime, size=stored.size, created=stored.created
        )

    @router.get(
        "/media/{sha256}",
        operation_id="getMedia",
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}, "video/mp4": {}, "audio/amr": {}}}},
    )
    async def get_media(
        request: Request,
        conn: Conn,
        principal: Anyone,
        sha256: str,
    ) -> Response:
        """The file, if the caller uploaded it or may see a case using it."""
        if not _is_sha(sha256):
            raise InvalidInput("Not a SHA-256 digest.", [FieldIssue("sha256", "64 hex digits")])
        found = await media.blob(conn, sha256)
        if found is None or not await _may_see_media(request, conn, principal, sha256):
            raise NotFound("No such media (or not visible to you).")
        etag = f'"{sha256}"'
        headers = {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        try:
            data = media.media_store_of(request.app.state).open(sha256)
        except FileNotFoundError:
            raise NotFound("The file is recorded but missing from the media store.") from None
        return Response(data, media_type=found[0], headers=headers)

    @router.post(
        "/cases/{case_id:int}/media",
        operation_id="attachCaseMedia",
        status_code=201,
    )
    async def attach_media(
        request: Request, conn: Conn, case_id: int, body: Attach, principal: Anyone
    ) -> dict[str, Any]:
        """Attach uploaded files to a case at its current stage (补采, 处置反馈…)."""
        if not any(principal.can(p) for p in ATTACHERS):
            raise Forbidden(f"{principal.name} may not add media to cases.")
        async with conn.transaction():
            stage = await _visible_stage(request, conn, principal, case_id)
            if stage in TERMINAL:
                raise Conflict(f"Case {case_id} is {stage}; no more media can be added.")
            added = await _attach(conn, principal, case_id, stage, body)
        summary = await intake.case_summary(conn, case_id)
        return {"case_id": case_id, "added": added, "media": summary["media"]}


def _is_sha(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


async def _visible_stage(
    request: Request, conn: psycopg.AsyncConnection, principal: Principal, case_id: int
) -> str:
    uid = principal.id if principal.kind == "user" else None
    query = sql.SQL(
        "SELECT c.stage FROM city.cases c WHERE c.id = %s"
        " AND (c.reporter_user_id = %s OR {}) FOR UPDATE"
    ).format(_cases_scope(request, principal))
    row = await (await conn.execute(query, (case_id, uid))).fetchone()
    if row is None:
        raise NotFound(f"No case {case_id} (or not visible to you).")
    return str(row[0])


async def _attach(
    conn: psycopg.AsyncConnection, principal: Principal, case_id: int, stage: str, body: Attach
) -> int:
    cur = await conn.execute(
        "SELECT sha256, mime FROM city.media_blobs WHERE sha256 = ANY(%s)",
        ([m.sha256 for m in body.media],),
    )
    mimes = dict(await cur.fetchall())
    issues = []
    for i, m in enumerate(body.media):
        if m.sha256 not in mimes:
            issues.append(FieldIssue(f"media[{i}].sha256", "not uploaded"))
        elif not media.kind_accepts(m.kind, mimes[m.sha256]):
            issues.append(FieldIssue(f"media[{i}].kind", f"{m.kind} cannot hold {mimes[m.sha256]}"))
    if issues:
        raise UnprocessableInput("The media cannot be attached.", issues)
    added = 0
    uid = principal.id if principal.kind == "user" else None
    for m in body.media:
        cur = await conn.execute(
            "INSERT INTO city.case_media (case_id, sha256, kind, stage, file_name, uploaded_by)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
            (case_id, m.sha256, m.kind, stage, m.file_name, uid),
        )
        added += len(await cur.fetchall())
    return added


def add_field_routes(router: APIRouter) -> None:
    """Tasks, positions and messages of the field app."""

    @router.get("/tasks/mine", operation_id="myTasks")
    async def my_tasks(
        conn: Conn,
        principal: Anyone,
        crs: Annotated[str, Query(description=f"output {CRS_HELP}")] = "cgcs2000",
        limit: Annotated[int, Query(ge=1, le=500)] = 200,
    ) -> list[dict[str, Any]]:
        """Open 核实/核查/补采 tasks: assigned to me, or unassigned in my grids."""
        return await tasks.inspector_tasks(conn, _user(principal), parse_crs(crs), limit)

    @router.post(
        "/inspectors/positions", response_model=PositionsOut, operation_id="uploadPositions"
    )
    async def upload_positions(
        conn: Conn, body: positions.PositionBatch, principal: Telemetry
    ) -> PositionsOut:
        """Store a batch of fixes; bad fixes are named, the good ones of the batch kept."""
        result = await positions.upload_positions(conn, _user(principal), body)
        return PositionsOut(
            accepted=result.accepted, duplicates=result.duplicates, rejected=result.rejected
        )

    @router.get("/inspectors/{user_id:int}/track", operation_id="inspectorTrack")
    async def inspector_track(
        conn: Conn,
        user_id: int,
        principal: Anyone,
        from_: Annotated[datetime | None, Query(alias="from")] = None,
        to: datetime | None = None,
        crs: Annotated[str, Query(description=f"output {CRS_HELP}")] = "cgcs2000",
    ) -> dict[str, Any]:
        """The track as a GeoJSON LineString (default: the last 24 hours; at most 7 days)."""
        _watcher(principal, user_id)
        end = _aware(to, "to") or datetime.now(UTC)
        start = _aware(from_, "from") or end - timedelta(days=1)
        if start > end or end - start > MAX_TRACK_SPAN:
            raise InvalidInput(
                "from must precede to, at most 7 days apart.",
                [FieldIssue("from", "before 'to', span ≤ 7 days")],
            )
        return await positions.track(conn, user_id, start, end, parse_crs(crs))

    @router.get("/inspectors/online", operation_id="onlineInspectors")
    async def online_inspectors(
        conn: Conn,
        principal: Anyone,
        minutes: Annotated[int, Query(ge=1, le=1440)] = 10,
        crs: Annotated[str, Query(description=f"output {CRS_HELP}")] = "cgcs2000",
    ) -> dict[str, Any]:
        """Inspectors with a fix in the last ``minutes`` (GeoJSON points)."""
        _watcher(principal)
        return await positions.online(conn, minutes, parse_crs(crs))

    @router.get("/notifications/mine", operation_id="myNotifications")
    async def my_notifications(
        conn: Conn,
        principal: Anyone,
        before_id: Annotated[int | None, Query(ge=1)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> list[dict[str, Any]]:
        """My messages (今日提示, 任务通知, 超时提醒…), newest first."""
        return await notify.my_notifications(conn, _user(principal), limit, before_id)


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(f"{name} needs a UTC offset.", [FieldIssue(name, "e.g. +08:00")])
    return value
