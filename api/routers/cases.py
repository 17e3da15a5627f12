"""Case workflow: detail, history, available actions, actions, and workflow definitions.

Every transition is ``POST /api/v1/cases/{id}/actions/{action}`` with English action names
(a stable contract for the field app and other clients); the body or an ``If-Match`` header
carries the version the client saw (optimistic concurrency: a stale version gets 409).
Coordinates are returned in CGCS2000 (EPSG:4490).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, Header, Response
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from api.deps import get_conn
from api.security.policy import require
from layers.cases import actions as engine
from layers.cases.history import list_history
from layers.cases.workflow import validate
from spatial.errors import (
    CityError,
    Conflict,
    FieldIssue,
    InvalidInput,
    NotFound,
    UnprocessableInput,
)
from spatial.security.principal import Principal

Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
Reader = Annotated[Principal, Depends(require("cases:read"))]
OrgManager = Annotated[Principal, Depends(require("org:manage"))]
MAX_BATCH = 200


class ActionBody(BaseModel):
    """The payload of one action; which fields are required depends on the action."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1, description="the version the client saw")
    opinion: str | None = Field(default=None, max_length=2000, description="意见")
    opinion_type: Literal["授权", "督办", "征求", "疑难确权"] | None = None
    reason: str | None = Field(default=None, max_length=2000, description="原因")
    department_code: str | None = Field(default=None, description="处置部门 (dispatch)")
    media: list[str] | None = Field(default=None, max_length=50, description="SHA-256 of uploads")
    result: bool | None = Field(default=None, description="核实/核查 result")
    minutes: int | None = Field(default=None, ge=1, description="延期 (working minutes)")
    days: int | None = Field(default=None, ge=1, le=365, description="督办天数")
    target_case_id: int | None = Field(default=None, description="合并到 (merge)")
    changes: dict[str, Any] | None = Field(default=None, description="立案修正 fields")
    force: bool | None = Field(default=None, description="强制派遣")
    inspector_user_id: int | None = Field(default=None, description="核实/补采 person")


class BatchBody(BaseModel):
    """Batch registration (批量立案)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[int] = Field(min_length=1, max_length=MAX_BATCH)
    opinion: str | None = Field(default=None, max_length=2000)


class WorkflowBody(BaseModel):
    """A workflow definition (工作流定义)."""

    name: str = Field(min_length=2, max_length=60)
    description: str | None = Field(default=None, max_length=2000)
    is_default: bool = False
    definition: dict[str, Any]


class CaseTypeLink(BaseModel):
    """Link a case type to a workflow (``workflow_code`` null removes the link)."""

    category: Literal["事件", "部件"]
    major_code: str | None = Field(default=None, pattern=r"^[0-9]{2}$")
    minor_code: str | None = Field(default=None, pattern=r"^[0-9]{2}$")
    workflow_code: str | None = None


async def _rows(conn: psycopg.AsyncConnection, query: Any, args: Any = ()) -> list[dict[str, Any]]:
    cur = await conn.execute(query, args)
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]


def _if_match(value: str | None) -> int | None:
    """The version in an ``If-Match`` header (``"3"``, ``W/"3"`` or ``3``)."""
    if value is None:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise InvalidInput("Bad If-Match header.", [FieldIssue("If-Match", "a case version")])
    return int(text)


def case_router() -> APIRouter:
    """Build the case workflow router."""
    router = APIRouter(prefix="/api/v1", tags=["案卷流程 (case workflow)"])
    add_case_routes(router)
    add_action_routes(router)
    add_workflow_routes(router)
    return router


DETAIL_SQL = """
SELECT c.id, c.case_no, c.source, s.name AS source_name, s.source_class, c.category,
       c.class_code, c.major_code, c.minor_code,
       coalesce(e.major_name, k.major_name) AS major_name,
       coalesce(e.minor_name, k.minor_name) AS minor_name,
       c.part_code, c.description, c.location_desc, c.road_name, c.level, c.safety_issue,
       c.self_handled, c.workflow_code, c.stage, c.status, c.version, c.on_hold, c.supervised,
       c.force_dispatched, c.rework_count, c.return_count, c.extension_count,
       c.extension_minutes, c.merged_into, c.grid_code, c.responsibility_grid_code,
       c.street_code, c.department_code, d.name AS department_name, c.assignee_user_id,
       c.reporter_name_mask, c.reporter_phone_mask, c.reported_at, c.accepted_at,
       c.registered_at, c.dispatched_at, c.handled_at, c.closed_at, c.stage_started_at,
       c.stage_deadline, c.handle_deadline, c.updated_at,
       ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, city.case_timer(c, now()) AS timer
FROM city.cases c
LEFT JOIN city.case_sources s ON s.code = c.source
LEFT JOIN city.departments d ON d.code = c.department_code
LEFT JOIN city.event_classes e
       ON c.category = '事件' AND e.major_code = c.major_code AND e.minor_code = c.minor_code
LEFT JOIN city.component_classes k
       ON c.category = '部件' AND k.major_code = c.major_code AND k.minor_code = c.minor_code
WHERE c.id = %s
"""


async def _detail(conn: psycopg.AsyncConnection, principal: Principal, case_id: int) -> dict:
    await engine.load_visible_case(conn, principal, case_id)
    case = (await _rows(conn, DETAIL_SQL, (case_id,)))[0]
    case["crs"] = "EPSG:4490"
    case["tasks"] = await _rows(
        conn,
        "SELECT id, kind, state, assignee_user_id, grid_code, requirement, result, due_at,"
        " created_at, done_at FROM city.case_tasks WHERE case_id = %s ORDER BY id",
        (case_id,),
    )
    case["open_requests"] = await _rows(
        conn,
        "SELECT id, kind, state, minutes, reason, requested_by, created_at"
        " FROM city.case_requests WHERE case_id = %s AND state = 'pending' ORDER BY id",
        (case_id,),
    )
    case["supervisions"] = await _rows(
        conn,
        "SELECT id, days, reason, opinion, created_by, created_at, reply, replied_by, replied_at"
        " FROM city.supervisions WHERE case_id = %s ORDER BY id",
        (case_id,),
    )
    case["media"] = await _rows(
        conn,
        "SELECT m.id, m.sha256, m.kind, m.stage, m.file_name, b.mime, b.size_bytes, m.created_at"
        " FROM city.case_media m JOIN city.media_blobs b ON b.sha256 = m.sha256"
        " WHERE m.case_id = %s ORDER BY m.id",
        (case_id,),
    )
    case["history"] = await list_history(conn, case_id)
    return case


def add_case_routes(router: APIRouter) -> None:
    """Case detail (案件详情) and handling process (办理过程)."""

    @router.get("/cases/{case_id:int}", operation_id="getCase")
    async def case_detail(conn: Conn, case_id: int, principal: Reader) -> dict[str, Any]:
        """Case fields, timer colour, tasks, open requests, supervisions, media and history."""
        return await _detail(conn, principal, case_id)

    @router.get("/cases/{case_id:int}/history", operation_id="getCaseHistory")
    async def case_history(conn: Conn, case_id: int, principal: Reader) -> list[dict[str, Any]]:
        """The immutable handling process, oldest first."""
        await engine.load_visible_case(conn, principal, case_id)
        return await list_history(conn, case_id)


def add_action_routes(router: APIRouter) -> None:
    """Workflow actions: list what the caller may do now, do one, register several."""

    @router.get("/cases/{case_id:int}/actions", operation_id="listCaseActions")
    async def case_actions(conn: Conn, case_id: int, principal: Reader) -> list[dict[str, Any]]:
        """The actions the caller may take on the case now."""
        found = await engine.available_actions(conn, principal, case_id)
        return [
            {
                "action": a.action,
                "name": a.name,
                "to_stages": list(a.to_stages),
                "requires": list(a.requires),
                "opinion_type": a.opinion_type,
            }
            for a in found
        ]

    @router.post("/cases/actions/register", operation_id="registerCases")
    async def register_cases(conn: Conn, body: BatchBody, principal: Reader) -> dict[str, Any]:
        """Batch registration (批量立案): each case in its own transaction; failures named."""
        results: list[dict[str, Any]] = []
        for case_id in dict.fromkeys(body.ids):
            payload = {"opinion": body.opinion} if body.opinion else {}
            try:
                state = await engine.perform(
                    conn, principal, case_id, "register", payload, expected_version=None
                )
            except CityError as exc:
                results.append(
                    {"id": case_id, "ok": False, "status": exc.status, "detail": str(exc)}
                )
                continue
            results.append({"id": case_id, "ok": True, **state.as_dict()})
        ok = sum(1 for r in results if r["ok"])
        return {"registered": ok, "failed": len(results) - ok, "results": results}

    @router.post("/cases/{case_id:int}/actions/{action}", operation_id="performCaseAction")
    async def perform_action(
        conn: Conn,
        case_id: int,
        action: str,
        body: ActionBody,
        principal: Reader,
        response: Response,
        if_match: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        """Perform one workflow action; 409 names the current state when it is not allowed."""
        payload = body.model_dump(exclude_none=True)
        version = payload.pop("version", None)
        if version is None:
            version = _if_match(if_match)
        state = await engine.perform(
            conn, principal, case_id, action, payload, expected_version=version
        )
        response.headers["ETag"] = f'"{state.version}"'
        return state.as_dict()


WORKFLOW_LIST_SQL = """
SELECT code, name, description, is_default, updated_at,
       jsonb_array_length(coalesce(definition->'stages', '[]')) AS stages,
       jsonb_array_length(coalesce(definition->'transitions', '[]')) AS transitions
FROM city.workflow_definitions ORDER BY code
"""


async def _put_workflow(
    conn: psycopg.AsyncConnection, code: str, body: WorkflowBody
) -> dict[str, Any]:
    positions = {r["code"] for r in await _rows(conn, "SELECT code FROM city.positions")}
    definition = validate(code, body.name, body.definition, positions=positions)
    async with conn.transaction():
        used = await _rows(
            conn,
            "SELECT DISTINCT stage FROM city.cases WHERE workflow_code = %s",
            (code,),
        )
        lost = sorted(r["stage"] for r in used if r["stage"] not in definition.stages)
        if lost:
            raise Conflict(
                f"Cases of workflow {code} are in stages the new definition drops.",
                [FieldIssue("definition.stages", f"still in use: {', '.join(lost)}")],
            )
        if not body.is_default:
            others = await _rows(
                conn,
                "SELECT code FROM city.workflow_definitions WHERE is_default AND code <> %s",
                (code,),
            )
            if not others:
                raise Conflict(
                    "One workflow must stay the default.",
                    [FieldIssue("is_default", "no other default workflow")],
                )
        else:
            await conn.execute(
                "UPDATE city.workflow_definitions SET is_default = false WHERE code <> %s",
                (code,),
            )
        await conn.execute(
            "INSERT INTO city.workflow_definitions (code, name, description, definition,"
            " is_default, updated_at) VALUES (%s, %s, %s, %s, %s, clock_timestamp())"
            " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
            " description = EXCLUDED.description, definition = EXCLUDED.definition,"
            " is_default = EXCLUDED.is_default, updated_at = EXCLUDED.updated_at",
            (code, body.name, body.description, Jsonb(body.definition), body.is_default),
        )
    return await _get_workflow(conn, code)


async def _get_workflow(conn: psycopg.AsyncConnection, code: str) -> dict[str, Any]:
    found = await _rows(
        conn,
        "SELECT code, name, description, is_default, updated_at, definition"
        " FROM city.workflow_definitions WHERE code = %s",
        (code,),
    )
    if not found:
        raise NotFound(f"No workflow definition {code}.")
    return found[0]


async def _link(conn: psycopg.AsyncConnection, body: CaseTypeLink) -> dict[str, Any]:
    if body.minor_code is not None and body.major_code is None:
        raise UnprocessableInput(
            "A minor class needs its major class.", [FieldIssue("major_code", "required")]
        )
    key = (body.category, body.major_code, body.minor_code)
    async with conn.transaction():
        if body.workflow_code is not None:
            found = await _rows(
                conn,
                "SELECT 1 FROM city.workflow_definitions WHERE code = %s",
                (body.workflow_code,),
            )
            if not found:
                raise UnprocessableInput(
                    f"No workflow definition {body.workflow_code}.",
                    [FieldIssue("workflow_code", "unknown workflow")],
                )
        await conn.execute(
            "DELETE FROM city.case_type_workflows WHERE category = %s"
            " AND major_code IS NOT DISTINCT FROM %s AND minor_code IS NOT DISTINCT FROM %s",
            key,
        )
        if body.workflow_code is not None:
            await conn.execute(
                "INSERT INTO city.case_type_workflows (category, major_code, minor_code,"
                " workflow_code) VALUES (%s, %s, %s, %s)",
                (*key, body.workflow_code),
            )
    return body.model_dump()


def add_workflow_routes(router: APIRouter) -> None:
    """Workflow definitions (工作流定义) and their case types."""

    @router.get("/workflows", operation_id="listWorkflows")
    async def workflows(conn: Conn, _: Reader) -> list[dict[str, Any]]:
        """The stored definitions (summary)."""
        return await _rows(conn, WORKFLOW_LIST_SQL)

    @router.get("/workflows/{code}", operation_id="getWorkflow")
    async def workflow(conn: Conn, code: str, _: Reader) -> dict[str, Any]:
        """One definition with its document."""
        return await _get_workflow(conn, code)

    @router.put("/workflows/{code}", operation_id="putWorkflow")
    async def put_workflow(
        conn: Conn, code: str, body: WorkflowBody, _: OrgManager
    ) -> dict[str, Any]:
        """Create or replace a definition (validated: unknown stages/permissions → 422)."""
        if not code.replace("_", "").isalnum() or len(code) > 40:
            raise InvalidInput("Bad workflow code.", [FieldIssue("code", "[A-Za-z0-9_]{1,40}")])
        return await _put_workflow(conn, code, body)

    @router.get("/case-type-workflows", operation_id="listCaseTypeWorkflows")
    async def links(conn: Conn, _: Reader) -> list[dict[str, Any]]:
        """Which case types follow which definition (others: the default)."""
        return await _rows(
            conn,
            "SELECT category, major_code, minor_code, workflow_code FROM city.case_type_workflows"
            " ORDER BY category, major_code NULLS FIRST, minor_code NULLS FIRST",
        )

    @router.put("/case-type-workflows", operation_id="putCaseTypeWorkflow")
    async def put_link(conn: Conn, body: CaseTypeLink, _: OrgManager) -> dict[str, Any]:
        """Link a case type to a definition; new cases of the type follow it."""
        return await _link(conn, body)
