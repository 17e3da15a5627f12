"""The case workflow engine: perform one action on one case, list the actions available.

``perform`` runs one transition as one transaction: it reads the case within the caller's
data scope, picks the transition of the case's workflow definition, checks permission,
state and conditions, applies an optimistic ``UPDATE … WHERE id = … AND version = …``
(a concurrent change → 409), runs the effects and appends the history row. Called inside
an outer transaction it becomes a savepoint of it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import cache
from typing import Any

import psycopg
from psycopg import sql

from layers.cases import history
from layers.cases.definitions import DEFAULT_CODE, OPINION_TYPES, TRANSITIONS
from layers.cases.dispatch import automatic_department
from layers.cases.workflow import Definition, Transition, load
from layers.cases.workflow_conditions import Step, first_refusal
from layers.cases.workflow_effects import APPLY, ENGINE, PREPARE
from layers.registry import LayerSpec
from spatial.errors import CityError, Conflict, FieldIssue, Forbidden, NotFound, UnprocessableInput
from spatial.security.permissions import PERMISSIONS
from spatial.security.principal import EVERYTHING, Principal
from spatial.security.scope import scope_condition

log = logging.getLogger(__name__)

SYSTEM_ROBOT = Principal(
    kind="user",
    id=None,
    name="system",
    display_name="系统机器人",
    positions=("system_robot",),
    permissions=frozenset(p for p in PERMISSIONS if p.startswith("cases:")),
    department_code=None,
    scope=EVERYTHING,
    via="system",
)
"""The system robot (系统机器人): automatic dispatch, alarms turned into cases, intake."""

DETAIL_KEYS = ("department_code", "media", "result", "minutes", "days", "target_case_id")
DETAIL_KEYS += ("force", "rule_id", "inspector_user_id")
KNOWN_ACTIONS = frozenset(t["action"] for t in TRANSITIONS)
STATE_COLUMNS = (
    "id, case_no, workflow_code, stage, status, version, on_hold, supervised, department_code,"
    " stage_started_at, stage_deadline, handle_deadline, rework_count, return_count,"
    " extension_count, extension_minutes, merged_into"
)


@dataclass(frozen=True)
class CaseState:
    """A case's workflow state after an action."""

    id: int
    case_no: str
    workflow_code: str
    stage: str
    status: str
    version: int
    on_hold: bool
    supervised: bool
    department_code: str | None
    stage_started_at: datetime
    stage_deadline: datetime | None
    handle_deadline: datetime | None
    rework_count: int
    return_count: int
    extension_count: int
    extension_minutes: int
    merged_into: int | None
    steps: tuple[str, ...] = ()  # actions performed, e.g. ("register", "dispatch")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass(frozen=True)
class ActionInfo:
    """An action the caller may take now."""

    action: str
    name: str
    to_stages: tuple[str | None, ...]  # None: the stage stays
    requires: tuple[str, ...]
    opinion_type: str | None = None


def is_robot(principal: Principal) -> bool:
    """True for the system robot."""
    return principal.via == "system" and principal.id is None


@cache
def _cases_spec() -> LayerSpec:
    from layers.base import default_registry  # noqa: PLC0415 - the registry imports modules

    spec = default_registry().find("cases")
    assert spec is not None  # noqa: S101 - a base layer
    return spec


async def load_visible_case(
    conn: psycopg.AsyncConnection, principal: Principal, case_id: int
) -> dict[str, Any]:
    """The case row (with ``db_now``), if the principal's data scope shows it."""
    where = sql.SQL("c.id = %s")
    condition = scope_condition(_cases_spec(), principal.scope, "c")
    if condition is not None:
        where = sql.SQL("{} AND {}").format(where, condition)
    query = sql.SQL(
        "SELECT c.*, now() AS db_now, w.updated_at AS workflow_updated_at FROM city.cases c"
        " LEFT JOIN city.workflow_definitions w ON w.code = c.workflow_code WHERE {}"
    ).format(where)
    cur = await conn.execute(query, (case_id,))
    names = [c.name for c in cur.description or []]
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"No case {case_id}.")
    case = {n: v for n, v in zip(names, row, strict=True) if n != "geom"}
    case["workflow_code"] = case["workflow_code"] or DEFAULT_CODE
    return case


def _stale(case: dict[str, Any], definition: Definition | None = None) -> Conflict:
    status = definition.status_of(case["stage"]) if definition else case["status"]
    return Conflict(
        f"案卷 {case['case_no']} 已被他人处理：当前状态为 {status} ({case['stage']})，"
        f"版本 {case['version']}。请刷新后重试。",
        [FieldIssue("version", f"current version is {case['version']}")],
    )


def _illegal(case: dict[str, Any], definition: Definition, name: str) -> Conflict:
    status = definition.status_of(case["stage"])
    return Conflict(f"案卷 {case['case_no']} 当前状态为 {status} ({case['stage']})，不能 {name}。")


# --- payload ------------------------------------------------------------------------------

PAYLOAD_TYPES: dict[str, tuple[type, ...]] = {
    "opinion": (str,),
    "opinion_type": (str,),
    "reason": (str,),
    "department_code": (str,),
    "media": (list,),
    "result": (bool,),
    "minutes": (int,),
    "days": (int,),
    "target_case_id": (int,),
    "changes": (dict,),
    "force": (bool,),
    "inspector_user_id": (int,),
}


def _check_payload(payload: dict[str, Any]) -> None:
    """Types of the known payload fields (422 naming each bad field)."""
    issues: list[FieldIssue] = []
    for key, types in PAYLOAD_TYPES.items():
        value = payload.get(key)
        if value is None:
            continue
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            issues.append(FieldIssue(key, f"must be of type {types[0].__name__}"))
        elif key in ("minutes", "days") and not 0 < value <= 60 * 24 * 365:
            issues.append(FieldIssue(key, "must be a positive number"))
        elif isinstance(value, str) and len(value) > 2000:
            issues.append(FieldIssue(key, "at most 2000 characters"))
    opinion_type = payload.get("opinion_type")
    if isinstance(opinion_type, str) and opinion_type not in OPINION_TYPES:
        issues.append(FieldIssue("opinion_type", f"one of {', '.join(OPINION_TYPES)}"))
    for i, sha in enumerate(payload.get("media") or []):
        if not (
            isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)
        ):
            issues.append(FieldIssue(f"media[{i}]", "must be a lower-case SHA-256 hex digest"))
    if issues:
        raise UnprocessableInput("Invalid action payload.", issues)


def _missing(transition: Transition, payload: dict[str, Any]) -> list[FieldIssue]:
    return [
        FieldIssue(f, "required for this action")
        for f in transition.requires
        if payload.get(f) is None or payload.get(f) == "" or payload.get(f) == []
    ]


async def _check_media(conn: psycopg.AsyncConnection, payload: dict[str, Any]) -> None:
    media = payload.get("media") or []
    if not media:
        return
    cur = await conn.execute(
        "SELECT sha256 FROM city.media_blobs WHERE sha256 = ANY(%s)", (list(media),)
    )
    known = {r[0] for r in await cur.fetchall()}
    issues = [
        FieldIssue(f"media[{i}]", "unknown media: upload it first")
        for i, sha in enumerate(media)
        if sha not in known
    ]
    if issues:
        raise UnprocessableInput("Unknown media.", issues)


# --- choosing the transition --------------------------------------------------------------


async def _choose(step: Step, action: str) -> Transition:
    """The transition to take, or the error refusing the action."""
    definition, case, principal = step.definition, step.case, step.principal
    every = [t for t in definition.transitions if t.action == action]
    if not every:
        if action in KNOWN_ACTIONS:
            raise _illegal(case, definition, action)
        raise NotFound(f"No action {action} in workflow {definition.code}.")
    if not any(t.permitted(principal.permissions, principal.positions) for t in every):
        raise Forbidden(f"{principal.name} may not {every[0].name} ({action}).")
    here = definition.candidates(action, case["stage"])
    if not here:
        raise _illegal(case, definition, every[0].name)
    allowed = [t for t in here if t.permitted(principal.permissions, principal.positions)]
    if not allowed:
        raise Forbidden(f"{principal.name} may not {here[0].name} ({action}) now.")
    refusal: CityError | None = None
    for transition in allowed:
        missing = _missing(transition, step.payload)
        if missing and not step.probe:
            raise UnprocessableInput(f"{transition.name} needs more input.", missing)
        refusal = await first_refusal(step, transition.conditions)
        if refusal is None:
            return transition
    assert refusal is not None  # noqa: S101 - at least one candidate was tried
    raise refusal


# --- performing ---------------------------------------------------------------------------


def _deadline(step: Step, to_stage: str) -> sql.Composable:
    """The new stage's deadline (city.case_stage_deadline, migration 0007) as a SET expression.

    ``c`` is the row before the update; a department set by this step is the one the
    dispatched stage's limit is looked up for.
    """
    row: sql.Composable = sql.SQL("c")
    if "department_code" in step.sets:
        row = sql.SQL("jsonb_populate_record(c, jsonb_build_object('department_code', {}))")
        row = row.format(step.sets["department_code"])
    return sql.SQL("city.case_stage_deadline({}, {}, now())").format(row, sql.Literal(to_stage))


async def _update(step: Step, to_stage: str, expected: int) -> dict[str, Any]:
    moved = to_stage != step.case["stage"]
    sets: dict[str, sql.Composable] = {
        "version": sql.SQL("version + 1"),
        "updated_at": sql.SQL("now()"),
        "stage": sql.Literal(to_stage),
        "status": sql.Literal(step.definition.status_of(to_stage)),
    }
    if moved:
        sets["stage_started_at"] = sql.SQL("now()")
        sets["stage_deadline"] = _deadline(step, to_stage)
        if step.memo.get("set_department"):  # 处置截止时间 = the dispatched stage's deadline
            sets["handle_deadline"] = sets["stage_deadline"]
    sets |= step.sets
    update = "UPDATE city.cases c SET {} WHERE id = %s AND version = %s RETURNING {}"
    query = sql.SQL(update).format(
        sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(k), v) for k, v in sets.items()
        ),
        sql.SQL(STATE_COLUMNS),
    )
    rows = await step.rows(query, (step.case_id, expected))
    if not rows:
        current = await step.rows(
            "SELECT case_no, stage, status, version FROM city.cases WHERE id = %s",
            (step.case_id,),
        )
        raise _stale(current[0] if current else step.case, step.definition)
    new = rows[0]
    if step.memo.get("set_department") and not moved:
        new = (
            await step.rows(
                "UPDATE city.cases SET handle_deadline = stage_deadline"
                f" WHERE id = %s RETURNING {STATE_COLUMNS}",
                (step.case_id,),
            )
        )[0]
    return new


async def _run(step: Step, action: str, expected_version: int | None) -> CaseState:
    case = step.case
    if expected_version is not None and expected_version != case["version"]:
        raise _stale(case, step.definition)
    transition = await _choose(step, action)
    step.transition = transition
    await _check_media(step.conn, step.payload)
    for name in transition.effects:
        if name in PREPARE:
            await PREPARE[name](step, name)
    to_stage = transition.to or case["stage"]
    step.new = await _update(step, to_stage, case["version"])
    for name in transition.effects:
        if name in APPLY:
            await APPLY[name](step, name)
    details = {k: step.payload[k] for k in (*DETAIL_KEYS,) if step.payload.get(k) is not None}
    await history.record(
        step.conn,
        step.principal,
        case_id=step.case_id,
        action=transition.action,
        action_name=transition.name,
        from_stage=case["stage"],
        to_stage=to_stage,
        version=step.new["version"],
        opinion=step.payload.get("opinion"),
        opinion_type=step.payload.get("opinion_type") or transition.opinion_type,
        reason=step.payload.get("reason"),
        details={**details, **step.details} or None,
    )
    state = CaseState(**step.new, steps=(transition.action,))
    if "auto_dispatch" in transition.effects and "auto_dispatch" in ENGINE:
        state = await _auto_dispatch(step.conn, state)
    return state


async def _auto_dispatch(conn: psycopg.AsyncConnection, state: CaseState) -> CaseState:
    """Dispatch by the command manual (自动派遣), as the system robot; failures are logged."""
    recommendation = await automatic_department(conn, state.id)
    if recommendation is None:
        return state
    payload = {
        "department_code": recommendation.department_code,
        "opinion": "按监督指挥手册自动派遣",
        "rule_id": getattr(recommendation, "rule_id", None),
    }
    try:
        done = await perform(
            conn, SYSTEM_ROBOT, state.id, "dispatch", payload, expected_version=state.version
        )
    except CityError as exc:
        log.warning("automatic dispatch of case %s refused: %s", state.id, exc)
        return state
    return CaseState(**{**done.as_dict(), "steps": (*state.steps, *done.steps)})


async def perform(
    conn: psycopg.AsyncConnection,
    principal: Principal,
    case_id: int,
    action: str,
    payload: dict[str, Any],
    *,
    expected_version: int | None,
) -> CaseState:
    """Perform ``action`` on the case as ``principal``: one transaction with its history row.

    Raises NotFound (no such case in the caller's scope, unknown action), Forbidden
    (permission, department, task), Conflict (stale version, illegal in the current state,
    a condition) or UnprocessableInput (payload).
    """
    _check_payload(payload)
    try:
        async with conn.transaction():
            case = await load_visible_case(conn, principal, case_id)
            definition = await load(conn, case["workflow_code"], case["workflow_updated_at"])
            step = Step(conn, principal, case, definition, dict(payload), robot=is_robot(principal))
            return await _run(step, action, expected_version)
    except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
        raise Conflict(f"案卷 {case_id} 正被他人同时处理，请刷新后重试。") from exc


async def available_actions(
    conn: psycopg.AsyncConnection, principal: Principal, case_id: int
) -> list[ActionInfo]:
    """The actions ``principal`` may take on the case now (payload-dependent checks aside)."""
    case = await load_visible_case(conn, principal, case_id)
    definition = await load(conn, case["workflow_code"], case["workflow_updated_at"])
    out: list[ActionInfo] = []
    for action in definition.actions:
        step = Step(conn, principal, case, definition, {}, robot=is_robot(principal), probe=True)
        targets: list[str | None] = []
        first: Transition | None = None
        for transition in definition.candidates(action, case["stage"]):
            if not transition.permitted(principal.permissions, principal.positions):
                continue
            if await first_refusal(step, transition.conditions) is None:
                targets.append(transition.to)
                first = first or transition
        if first is not None:
            out.append(
                ActionInfo(action, first.name, tuple(targets), first.requires, first.opinion_type)
            )
    return out
