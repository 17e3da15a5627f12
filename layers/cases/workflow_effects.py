"""Named effects of workflow transitions, run inside the transition's transaction.

``PREPARE`` effects validate input and add column assignments to the case's optimistic
UPDATE (``step.sets``); ``APPLY`` effects run after it (tasks, requests, supervisions,
media, merges, notifications) and may add to ``step.details`` (kept in the history row).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg import sql

from layers.cases import history, notify
from layers.cases.workflow_conditions import TASK_NAMES, Step
from spatial.errors import Conflict, FieldIssue, NotFound, UnprocessableInput

log = logging.getLogger(__name__)
Effect = Callable[[Step, str], Awaitable[None]]
NOW = sql.SQL("now()")
DEPARTMENT_KINDS = ("处置部门", "街道", "社区", "第三方运营公司")


def _arg(name: str) -> str:
    return name.split(":", 1)[1]


# --- prepare: column assignments -------------------------------------------------------


async def _stamp(step: Step, name: str) -> None:
    column = _arg(name)
    keep_first = column in ("accepted_at", "registered_at")
    value = sql.SQL("coalesce({}, now())").format(sql.Identifier(column)) if keep_first else NOW
    step.sets[column] = value


async def _set_department(step: Step, _: str) -> None:
    code = step.payload.get("department_code")
    found = await step.rows(
        "SELECT code, name, kind FROM city.departments WHERE code = %s", (code,)
    )
    if not found or found[0]["kind"] not in DEPARTMENT_KINDS:
        raise UnprocessableInput(
            f"No handling department {code}.", [FieldIssue("department_code", "unknown department")]
        )
    step.sets["department_code"] = sql.Literal(code)
    step.sets["assignee_user_id"] = sql.NULL
    step.details["department_name"] = found[0]["name"]
    step.memo["set_department"] = True


async def _clear_department(step: Step, _: str) -> None:
    step.details["previous_department"] = step.case["department_code"]
    step.sets["department_code"] = sql.NULL
    step.sets["handle_deadline"] = sql.NULL


async def _force(step: Step, _: str) -> None:
    step.sets["force_dispatched"] = sql.Literal(bool(step.payload.get("force", False)))


def _increment(column: str) -> Effect:
    async def run(step: Step, _: str) -> None:
        step.sets[column] = sql.SQL("{} + 1").format(sql.Identifier(column))

    return run


def _set(column: str, value: bool) -> Effect:
    async def run(step: Step, _: str) -> None:
        step.sets[column] = sql.Literal(value)

    return run


async def _approve_extension(step: Step, _: str) -> None:
    request = await step.pending("extension")
    assert request is not None  # noqa: S101 - the condition pending:extension held
    minutes = int(request["minutes"] or 0)

    def later(expr: str) -> sql.Composable:  # working time (city.work_add, migration 0007)
        return sql.SQL("city.work_add({}, {})").format(sql.SQL(expr), sql.Literal(minutes))

    step.sets["extension_count"] = sql.SQL("extension_count + 1")
    step.sets["extension_minutes"] = sql.SQL("extension_minutes + {}").format(sql.Literal(minutes))
    step.sets["stage_deadline"] = later("coalesce(stage_deadline, now())")
    step.sets["handle_deadline"] = later("coalesce(handle_deadline, stage_deadline, now())")
    step.details["minutes"] = minutes


async def _merge_target(step: Step, _: str) -> None:
    target_id = step.payload.get("target_case_id")
    issue = [FieldIssue("target_case_id", "must be another open case you can see")]
    if target_id == step.case_id:
        raise UnprocessableInput("A case cannot be merged into itself.", issue)
    found = await step.rows("SELECT id, case_no, stage FROM city.cases WHERE id = %s", (target_id,))
    if not found:
        raise UnprocessableInput(f"No case {target_id}.", issue)
    target = found[0]
    stage = step.definition.stage(target["stage"])
    if stage is None or stage.terminal:
        raise Conflict(
            f"案卷 {target['case_no']} 已{stage.name if stage else '终结'}，不能合并到该案卷。"
        )
    step.sets["merged_into"] = sql.Literal(target_id)
    step.details["merged_into_case_no"] = target["case_no"]
    step.memo["merge_target"] = target


CORRECT_TYPES: dict[str, type | tuple[type, ...]] = {
    "category": str,
    "class_code": str,
    "part_code": (str, type(None)),
    "description": str,
    "location_desc": (str, type(None)),
    "road_name": (str, type(None)),
    "level": str,
    "safety_issue": bool,
}


async def _correct(step: Step, _: str) -> None:
    changes = step.payload.get("changes")
    allowed = step.definition.rule("correctable_fields") or []
    if not isinstance(changes, dict) or not changes:
        raise UnprocessableInput("Nothing to correct.", [FieldIssue("changes", "name fields")])
    issues = [
        FieldIssue(f"changes.{k}", "not correctable" if k in CORRECT_TYPES else "unknown field")
        for k in changes
        if k not in allowed or k not in CORRECT_TYPES
    ]
    issues += [
        FieldIssue(f"changes.{k}", "wrong type")
        for k, v in changes.items()
        if k in CORRECT_TYPES and not isinstance(v, CORRECT_TYPES[k])
    ]
    if issues:
        raise UnprocessableInput("Invalid correction.", issues)
    await _check_class(step, {**step.case, **changes})
    step.details["before"] = {k: step.case.get(k) for k in changes}
    step.details["after"] = changes
    for key, value in changes.items():
        step.sets[key] = sql.Literal(value)


async def _check_class(step: Step, merged: dict[str, Any]) -> None:
    """The (category, class_code) pair names a catalogue class; part_code exists."""
    category, code = merged["category"], merged["class_code"]
    if category not in ("事件", "部件"):
        raise UnprocessableInput("Bad category.", [FieldIssue("changes.category", "事件 or 部件")])
    table = "event_classes" if category == "事件" else "component_classes"
    ok = isinstance(code, str) and len(code) == 10 and code.isdigit()
    if ok:
        found = await step.rows(
            sql.SQL("SELECT 1 FROM city.{} WHERE major_code = %s AND minor_code = %s").format(
                sql.Identifier(table)
            ),
            (code[6:8], code[8:10]),
        )
        ok = bool(found)
    if not ok:
        raise UnprocessableInput(
            f"No {category} class {code}.", [FieldIssue("changes.class_code", "unknown class")]
        )
    part = merged.get("part_code")
    if part is not None and not await step.rows(
        "SELECT 1 FROM city.parts WHERE code = %s", (part,)
    ):
        raise UnprocessableInput("Unknown part.", [FieldIssue("changes.part_code", "unknown part")])


PREPARE: dict[str, Effect] = {
    **{f"stamp:{c}": _stamp for c in ("accepted_at", "registered_at", "dispatched_at")},
    **{f"stamp:{c}": _stamp for c in ("handled_at", "closed_at")},
    "set_department": _set_department,
    "clear_department": _clear_department,
    "force_dispatch": _force,
    "count_rework": _increment("rework_count"),
    "count_return": _increment("return_count"),
    "hold": _set("on_hold", True),
    "unhold": _set("on_hold", False),
    "supervise": _set("supervised", True),
    "reply_supervision": _set("supervised", False),
    "approve:extension": _approve_extension,
    "merge": _merge_target,
    "correct": _correct,
}


# --- apply: rows in other tables --------------------------------------------------------


async def _create_task(step: Step, name: str) -> None:
    kind = _arg(name)
    assignee = step.payload.get("inspector_user_id")
    if assignee is None:
        found = await step.rows(
            "SELECT user_id FROM city.inspector_grids WHERE grid_code = %s"
            " ORDER BY user_id LIMIT 1",
            (step.case["responsibility_grid_code"],),
        )
        assignee = found[0]["user_id"] if found else None
    await step.conn.execute(
        "UPDATE city.case_tasks SET state = 'cancelled', done_at = now()"
        " WHERE case_id = %s AND kind = %s AND state = 'open'",
        (step.case_id, kind),
    )
    found = await step.rows(
        "INSERT INTO city.case_tasks (case_id, kind, state, assignee_user_id, grid_code,"
        " requirement, due_at) VALUES (%s, %s, 'open', %s, %s, %s, %s) RETURNING id",
        (
            step.case_id,
            kind,
            assignee,
            step.case["responsibility_grid_code"],
            step.payload.get("opinion") or f"请{TASK_NAMES[kind]}",
            step.new.get("stage_deadline"),
        ),
    )
    step.details[f"{kind}_task_id"] = found[0]["id"]
    step.details[f"{kind}_assignee_user_id"] = assignee
    step.memo["task"] = (kind, found[0]["id"], assignee)


async def _complete_task(step: Step, name: str) -> None:
    kind = _arg(name)
    tasks = await step.open_tasks(kind)
    mine = [t for t in tasks if step.robot or t["assignee_user_id"] == step.principal.id]
    result = step.payload.get("result")
    text = {True: "通过", False: "不通过"}.get(result) if isinstance(result, bool) else None
    for task in mine[:1]:
        await step.conn.execute(
            "UPDATE city.case_tasks SET state = 'done', done_at = now(), result = %s WHERE id = %s",
            (text or step.payload.get("opinion") or "已完成", task["id"]),
        )
        step.details[f"{kind}_task_id"] = task["id"]


async def _cancel_tasks(step: Step, _: str) -> None:
    await step.conn.execute(
        "UPDATE city.case_tasks SET state = 'cancelled', done_at = now()"
        " WHERE case_id = %s AND state = 'open'",
        (step.case_id,),
    )


async def _request(step: Step, name: str) -> None:
    kind = _arg(name)
    found = await step.rows(
        "INSERT INTO city.case_requests (case_id, kind, state, minutes, reason, requested_by)"
        " VALUES (%s, %s, 'pending', %s, %s, %s) RETURNING id",
        (
            step.case_id,
            kind,
            step.payload.get("minutes") if kind == "extension" else None,
            step.payload.get("reason") or "",
            history.actor_user_id(step.principal),
        ),
    )
    step.details["request_id"] = found[0]["id"]


def _decide(state: str) -> Effect:
    async def run(step: Step, name: str) -> None:
        request = await step.pending(_arg(name))
        assert request is not None  # noqa: S101 - the condition pending:<kind> held
        await step.conn.execute(
            "UPDATE city.case_requests SET state = %s, decided_by = %s, opinion = %s,"
            " decided_at = now() WHERE id = %s",
            (
                state,
                history.actor_user_id(step.principal),
                step.payload.get("opinion"),
                request["id"],
            ),
        )
        step.details["request_id"] = request["id"]

    return run


async def _supervision(step: Step, _: str) -> None:
    found = await step.rows(
        "INSERT INTO city.supervisions (case_id, days, reason, opinion, created_by)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (
            step.case_id,
            step.payload["days"],
            step.payload["reason"],
            step.payload.get("opinion"),
            history.actor_user_id(step.principal),
        ),
    )
    step.details["supervision_id"] = found[0]["id"]


async def _reply(step: Step, _: str) -> None:
    found = await step.rows(
        "UPDATE city.supervisions SET reply = %s, replied_by = %s, replied_at = now()"
        " WHERE id = (SELECT id FROM city.supervisions WHERE case_id = %s AND reply IS NULL"
        " ORDER BY id DESC LIMIT 1) RETURNING id",
        (step.payload.get("opinion"), history.actor_user_id(step.principal), step.case_id),
    )
    if found:
        step.details["supervision_id"] = found[0]["id"]


async def _attach(step: Step, name: str) -> None:
    kind = _arg(name)
    for sha in step.payload.get("media") or []:
        await step.conn.execute(
            "INSERT INTO city.case_media (case_id, sha256, kind, stage, uploaded_by)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (case_id, sha256, kind)"
            " DO NOTHING",
            (step.case_id, sha, kind, step.new.get("stage"), history.actor_user_id(step.principal)),
        )


async def _merge_history(step: Step, _: str) -> None:
    """The target case gets a history row (合并) and a new version."""
    target = step.memo["merge_target"]
    found = await step.rows(
        "UPDATE city.cases SET version = version + 1, updated_at = now() WHERE id = %s"
        " RETURNING version, stage",
        (target["id"],),
    )
    if not found:
        raise NotFound(f"No case {target['id']}.")
    await history.record(
        step.conn,
        step.principal,
        case_id=target["id"],
        action="merge",
        action_name="合并",
        from_stage=found[0]["stage"],
        to_stage=found[0]["stage"],
        version=found[0]["version"],
        opinion=step.payload.get("opinion"),
        details={"merged_case_id": step.case_id, "merged_case_no": step.case["case_no"]},
    )


async def _notify(step: Step, name: str) -> None:
    """Queue messages through the outbox (layers.cases.notify)."""
    who, case_no = _arg(name), step.case["case_no"]
    messages: list[tuple[int | None, str, str]] = []
    if who == "inspector" and step.memo.get("task"):
        kind, task_id, assignee = step.memo["task"]
        body = f"案卷{case_no}有新的{TASK_NAMES[kind]}任务，请及时处理。"
        messages.append((assignee, body, f"task:{task_id}"))
    elif who == "department":
        for row in await step.rows(
            "SELECT u.id FROM city.users u JOIN city.user_positions p ON p.user_id = u.id"
            " WHERE u.department_code = %s AND p.position_code IN ('handler', 'enforcer')"
            " AND u.status = 'active' ORDER BY u.id",
            (step.new.get("department_code") or step.case["department_code"],),
        ):
            body = f"案卷{case_no}（{step.transition.name if step.transition else ''}）请及时办理。"
            messages.append(
                (row["id"], body, f"{name}:{step.case_id}:{step.new['version']}:{row['id']}")
            )
    elif who == "reporter":
        sources = step.definition.rule("notify_reporter_sources") or []
        if step.case["source"] in sources and step.case["reporter_user_id"]:
            body = f"您反映的问题（{case_no}）已办结，感谢您的参与。"
            messages.append((step.case["reporter_user_id"], body, f"closed:{step.case_id}"))
    for recipient, body, key in messages:
        if recipient is None:
            continue
        await notify.enqueue(
            step.conn,
            kind="task"
            if who == "inspector"
            else ("arrival" if who == "department" else "progress"),
            body=body,
            case_id=step.case_id,
            recipient_user_id=recipient,
            dedupe_key=key,
        )


APPLY: dict[str, Effect] = {
    **{f"create_task:{k}": _create_task for k in TASK_NAMES},
    **{f"complete_task:{k}": _complete_task for k in TASK_NAMES},
    "cancel_tasks": _cancel_tasks,
    **{f"request:{k}": _request for k in ("extension", "return", "void")},
    **{f"approve:{k}": _decide("approved") for k in ("extension", "return", "void")},
    **{f"refuse:{k}": _decide("refused") for k in ("extension", "return", "void")},
    "supervise": _supervision,
    "reply_supervision": _reply,
    "attach_media:feedback": _attach,
    "attach_media:supplement": _attach,
    "merge": _merge_history,
    **{f"notify:{w}": _notify for w in ("inspector", "department", "reporter")},
}
# Effects handled by the engine itself (after the history row).
ENGINE = frozenset({"auto_dispatch"})
