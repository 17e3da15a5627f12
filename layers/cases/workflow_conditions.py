"""Named conditions of workflow transitions, evaluated against one step of one case.

A condition returns None when it holds, or the error refusing the step: 409 for the case's
state, 403 for the actor (``own_department``, ``own_task:*``; the system robot passes
these), 422 for the payload. ``Step`` is the context the engine and the effects share.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from layers.cases.workflow import Definition, Transition
from spatial.errors import CityError, Conflict, FieldIssue, Forbidden, UnprocessableInput
from spatial.security.principal import Principal

TASK_NAMES = {"verify": "核实", "check": "核查", "supplement": "补采"}
REQUEST_NAMES = {"extension": "延期", "return": "回退", "void": "作废"}
FLAG_NAMES = {
    "overdue": "超期案件",
    "reworked": "返工案件",
    "extended": "延期过的案件",
    "force_dispatched": "强制派遣案件",
}


@dataclass
class Step:
    """One transition being performed (or probed by ``available_actions``)."""

    conn: psycopg.AsyncConnection
    principal: Principal
    case: dict[str, Any]
    definition: Definition
    payload: dict[str, Any]
    robot: bool = False
    probe: bool = False  # listing available actions: payload-dependent conditions hold
    transition: Transition | None = None
    sets: dict[str, sql.Composable] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)
    new: dict[str, Any] = field(default_factory=dict)

    @property
    def case_id(self) -> int:
        """The case id."""
        return int(self.case["id"])

    @property
    def label(self) -> str:
        """``案卷 <case_no>`` for messages."""
        return f"案卷 {self.case['case_no']}"

    async def rows(self, query: Any, args: Any = ()) -> list[dict[str, Any]]:
        """Rows of a query as dicts."""
        cur = await self.conn.execute(query, args)
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]

    async def pending(self, kind: str) -> dict[str, Any] | None:
        """The pending request of ``kind`` (延期/回退/作废), memoised."""
        key = f"pending:{kind}"
        if key not in self.memo:
            found = await self.rows(
                "SELECT * FROM city.case_requests WHERE case_id = %s AND kind = %s"
                " AND state = 'pending' ORDER BY id DESC LIMIT 1",
                (self.case_id, kind),
            )
            self.memo[key] = found[0] if found else None
        return self.memo[key]

    async def open_tasks(self, kind: str) -> list[dict[str, Any]]:
        """Open tasks of ``kind`` on the case, memoised."""
        key = f"tasks:{kind}"
        if key not in self.memo:
            self.memo[key] = await self.rows(
                "SELECT * FROM city.case_tasks WHERE case_id = %s AND kind = %s"
                " AND state = 'open' ORDER BY id",
                (self.case_id, kind),
            )
        return self.memo[key]


Check = Callable[[Step, str], Awaitable[CityError | None]]


def return_flags(case: dict[str, Any], forbidden_when: list[str]) -> list[str]:
    """Which configured flags forbid a direct return (超期/返工/延期过/强制派遣)."""
    now = case["db_now"]
    overdue = any(
        d is not None and d < now for d in (case["stage_deadline"], case["handle_deadline"])
    )
    flags = {
        "overdue": overdue,
        "reworked": case["rework_count"] > 0,
        "extended": case["extension_count"] > 0,
        "force_dispatched": bool(case["force_dispatched"]),
    }
    return [f for f in forbidden_when if flags.get(f)]


async def _flag(step: Step, name: str) -> CityError | None:
    case = step.case
    expected = {
        "self_handled": (case["self_handled"], "仅适用于自行处置案卷"),
        "not_self_handled": (not case["self_handled"], "自行处置案卷由受理员直接结案归档 (close)"),
        "on_hold": (case["on_hold"], "案卷未挂账"),
        "not_on_hold": (not case["on_hold"], "案卷已挂账"),
        "supervised": (case["supervised"], "案卷不在督办中"),
        "not_supervised": (not case["supervised"], "案卷已在督办中"),
    }
    ok, message = expected[name]
    return None if ok else Conflict(f"{step.label}：{message}。")


async def _return_allowed(step: Step, _: str) -> CityError | None:
    flags = return_flags(step.case, step.definition.rule("return_forbidden_when") or [])
    if not flags:
        return None
    why = "、".join(FLAG_NAMES[f] for f in flags)
    return Conflict(
        f"{step.label} 为{why}，不能直接回退；可以 申请回退 (request-return)。",
        [FieldIssue("action", "use request-return (申请回退)")],
    )


async def _return_forbidden(step: Step, _: str) -> CityError | None:
    if return_flags(step.case, step.definition.rule("return_forbidden_when") or []):
        return None
    return Conflict(f"{step.label} 可以直接回退 (return)，无需申请。")


async def _pending(step: Step, name: str) -> CityError | None:
    negate, kind = name.startswith("no_"), name.split(":", 1)[1]
    found = await step.pending(kind)
    if negate and found is not None:
        return Conflict(f"{step.label} 已有待审批的{REQUEST_NAMES[kind]}申请。")
    if not negate and found is None:
        return Conflict(f"{step.label} 没有待审批的{REQUEST_NAMES[kind]}申请。")
    return None


TIME_LIMIT_SQL = """
SELECT max_extensions, extendable FROM city.stage_time_limits
WHERE stage = %(stage)s AND (category IS NULL OR category = %(category)s)
  AND (major_code IS NULL OR major_code = %(major)s)
  AND (minor_code IS NULL OR minor_code = %(minor)s)
ORDER BY (minor_code IS NULL), (major_code IS NULL), (category IS NULL) LIMIT 1
"""


async def _extension_allowed(step: Step, _: str) -> CityError | None:
    case = step.case
    found = await step.rows(
        TIME_LIMIT_SQL,
        {
            "stage": "dispatched",
            "category": case["category"],
            "major": case["major_code"],
            "minor": case["minor_code"],
        },
    )
    limit, extendable = (found[0]["max_extensions"], found[0]["extendable"]) if found else (1, True)
    if not extendable:
        return Conflict(f"{step.label}：本类案卷不可延期。")
    if case["extension_count"] >= limit:
        return Conflict(
            f"{step.label} 已延期 {case['extension_count']} 次，达到最多延期次数 {limit}。"
        )
    return None


RATIO_SQL = """
SELECT
  (SELECT count(*) FROM city.cases WHERE department_code = %(dept)s
     AND dispatched_at > now() - make_interval(days => %(days)s)) AS dispatched,
  (SELECT count(*) FROM city.case_requests r JOIN city.cases c ON c.id = r.case_id
   WHERE r.kind = 'extension' AND r.state = 'approved' AND c.department_code = %(dept)s
     AND r.decided_at > now() - make_interval(days => %(days)s)) AS approved
"""


async def _extension_ratio(step: Step, _: str) -> CityError | None:
    """Approved extensions of the department within the window stay under the ratio cap."""
    dept = step.case["department_code"]
    if dept is None:
        return None
    cap = float(step.definition.rule("extension_ratio_cap"))
    days = int(step.definition.rule("extension_ratio_window_days"))
    floor_ = int(step.definition.rule("extension_ratio_min_allowed"))
    row = (await step.rows(RATIO_SQL, {"dept": dept, "days": days}))[0]
    allowed = max(floor_, math.floor(cap * row["dispatched"]))
    if row["approved"] < allowed:
        return None
    return Conflict(
        f"部门 {dept} 近 {days} 天已批准延期 {row['approved']} 件，"
        f"达到延期比例上限 {cap:.0%}（{allowed} 件）。"
    )


async def _check_passed(step: Step, _: str) -> CityError | None:
    found = await step.rows(
        "SELECT action, to_stage, details FROM city.case_history WHERE case_id = %s"
        " AND action IN ('check', 'feedback', 'rework') ORDER BY id DESC LIMIT 1",
        (step.case_id,),
    )
    if found:
        last = found[0]
        if last["action"] == "feedback" and last["to_stage"] == step.case["stage"]:
            return None  # feedback with photos went straight to 待结案 (rule)
        if last["action"] == "check" and (last["details"] or {}).get("result") is True:
            return None
    return Conflict(f"{step.label} 核查未通过，不能结案；请 返工 (rework)。")


async def _payload(step: Step, name: str) -> CityError | None:
    if step.probe:
        return None
    payload = step.payload
    if name == "result_true":
        return None if payload.get("result") is True else Conflict("结果不是“是”。")
    if name == "result_false":
        return None if payload.get("result") is False else Conflict("结果不是“否”。")
    if name == "has_media":
        return None if payload.get("media") else Conflict("没有附照片。")
    if step.definition.rule("feedback_requires_media") and not payload.get("media"):
        return UnprocessableInput(
            "处置反馈须附处置后照片。", [FieldIssue("media", "at least one photo is required")]
        )
    return None


async def _rule(step: Step, name: str) -> CityError | None:
    rule = name.split(":", 1)[1]
    return None if step.definition.rule(rule) else Conflict(f"规则 {rule} 未启用。")


async def _own_department(step: Step, _: str) -> CityError | None:
    if step.robot:
        return None
    dept = step.case["department_code"]
    mine = {step.principal.department_code, *step.principal.scope.departments} - {None}
    if dept is not None and dept in mine:
        return None
    return Forbidden(f"{step.label} 不是您所在部门的处置案卷。")


async def _own_task(step: Step, name: str) -> CityError | None:
    kind = name.split(":", 1)[1]
    tasks = await step.open_tasks(kind)
    if not tasks:
        return Conflict(f"{step.label} 没有待办的{TASK_NAMES[kind]}任务。")
    if step.robot or any(t["assignee_user_id"] == step.principal.id for t in tasks):
        return None
    return Forbidden(f"{step.label} 的{TASK_NAMES[kind]}任务没有分派给您。")


CHECKS: dict[str, Check] = {
    **dict.fromkeys(
        ("self_handled", "not_self_handled", "on_hold", "not_on_hold", "supervised"), _flag
    ),
    "not_supervised": _flag,
    "return_allowed": _return_allowed,
    "return_forbidden": _return_forbidden,
    **{f"{p}:{k}": _pending for p in ("pending", "no_pending") for k in REQUEST_NAMES},
    "extension_allowed": _extension_allowed,
    "extension_ratio": _extension_ratio,
    "check_passed": _check_passed,
    **dict.fromkeys(("result_true", "result_false", "has_media", "media_if_required"), _payload),
    "rule:close_without_check_when_feedback_has_photos": _rule,
    "own_department": _own_department,
    **{f"own_task:{k}": _own_task for k in TASK_NAMES},
}


async def first_refusal(step: Step, conditions: tuple[str, ...]) -> CityError | None:
    """The first failing condition's error, or None when all hold."""
    for name in conditions:
        check = CHECKS.get(name)
        if check is None:
            return Conflict(f"Unknown workflow condition {name}.")
        refusal = await check(step, name)
        if refusal is not None:
            return refusal
    return None
