"""Pure, seeded generation of case timelines (案卷办理过程) for the sample history.

Every case gets a fate (自行处置, 不受理, 不立案, 销案, 合并, 作废 or the full 立案 → 结案 flow
with optional 核实, 回退, 返工, 延期, 督办, 挂账) and a timeline of steps; steps after the
snapshot instant ``end`` are cut, so recent cases stay open in the stage they would be in.
The most recent cases are forced into every open stage and every terminal stage, so each
analysis state is present whatever the size. Nothing here touches the database.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from layers.cases.definitions import LIVE

STATUS = {
    "reported": "待受理",
    "accepted": "待立案",
    "verifying": "待立案",
    "registered": "待派遣",
    "returned": "待派遣",
    "dispatched": "处置中",
    "handled": "待核查",
    "checked": "待结案",
    "closed": "结案",
    "rejected": "不受理",
    "not_registered": "不立案",
    "cancelled": "销案",
    "voided": "作废",
    "merged": "已合并",
}
OPEN_STAGES = LIVE
TERMINAL_STAGES = ("rejected", "not_registered", "cancelled", "voided", "merged")
ACTION_NAMES = {  # the default workflow's actions (layers/cases/definitions.py)
    "report": "上报",
    "accept": "受理",
    "reject": "不受理",
    "verify": "核实",
    "verify-result": "核实反馈",
    "register": "立案",
    "not-register": "不立案",
    "cancel": "销案",
    "merge": "合并",
    "dispatch": "派遣",
    "return": "回退",
    "feedback": "处置反馈",
    "check": "核查",
    "rework": "返工",
    "close": "结案",
    "request-extension": "申请延期",
    "approve-extension": "同意延期",
    "request-return": "申请回退",
    "request-void": "申请作废",
    "approve-void": "同意作废",
    "supervise": "督办",
    "reply-supervision": "答复督办",
    "hold": "挂账",
}
# Fallback stage limits (minutes, natural time) when city.case_stage_deadline is missing.
FALLBACK_LIMITS = {
    "reported": 60,
    "accepted": 120,
    "verifying": 240,
    "registered": 60,
    "returned": 120,
    "handled": 240,
    "checked": 120,
}
REGISTERED_PER_YEAR = 5_389  # tender: 系统上报案件5389件，立案率100% (the old 数字城管)
CASES_PER_DAY = 100  # tender: 每日产生的事案件业务数据约100条
NON_REGISTERED_FATES = (  # what happens to the cases that never reach 立案, with weights
    ("self_handled", 0.88),
    ("rejected", 0.06),
    ("not_registered", 0.02),
    ("cancelled", 0.02),
    ("merged", 0.02),
)
FLOW_SOURCES = (
    ("inspector", 0.68),
    ("public", 0.09),
    ("hotline_12345", 0.10),
    ("video_ai", 0.05),
    ("vehicle_ai", 0.01),
    ("special_check", 0.02),
    ("higher_platform", 0.02),
    ("leader", 0.01),
    ("other_bureau", 0.02),
)
SCREENED_SOURCES = (("inspector", 0.45), ("public", 0.25), ("hotline_12345", 0.1))
SCREENED_SOURCES += (("video_ai", 0.2),)
HOURS = [0.2] * 6 + [1, 3, 8, 10, 10, 8, 4, 6, 9, 9, 8, 6, 3, 1.5, 1, 0.6, 0.4, 0.3]


@dataclass(frozen=True)
class Place:
    """Where a case happens: a door plate (事件) or a component (部件)."""

    grid_code: str
    responsibility_grid_code: str | None
    street_code: str
    lon: float
    lat: float
    h3: int
    location_desc: str
    road_name: str | None
    part_code: str | None = None
    part_class: str | None = None


@dataclass(frozen=True)
class CaseClass:
    """A catalogue class with its department (city.departments code) and disposal hours."""

    category: str
    class_code: str
    name: str
    department_code: str
    disposal_hours: int


@dataclass(frozen=True)
class Actor:
    """Who performs a step."""

    user_id: int | None
    name: str
    position: str
    department_code: str | None


@dataclass
class World:
    """What the generator draws from (read from the loaded core sample)."""

    events: list[Place]
    parts: list[Place]
    event_classes: list[CaseClass]
    component_classes: dict[str, CaseClass]  # class_code → class
    inspectors: dict[str, tuple[str, int | None]]  # resp. grid → (inspector name, user id)
    staff: dict[str, Actor]  # acceptor, dispatcher, shift_leader, leader, handler:<dept>
    citizen_id: int | None


@dataclass
class Step:
    """One history row."""

    action: str
    from_stage: str | None
    to_stage: str
    at: datetime
    actor: Actor
    opinion: str | None = None
    reason: str | None = None
    details: dict[str, Any] | None = None
    opinion_type: str | None = None


@dataclass
class Request:
    """A 延期/回退/作废 request."""

    kind: str
    state: str
    reason: str
    at: datetime
    requested_by: int | None = None
    minutes: int | None = None
    decided_at: datetime | None = None
    decided_by: int | None = None


@dataclass
class Supervision:
    """A leader's 督办 and its reply."""

    at: datetime
    days: int
    reason: str
    by: int | None
    reply: str | None = None
    replied_at: datetime | None = None
    replied_by: int | None = None


@dataclass
class CaseRow:
    """A generated case with its steps."""

    index: int
    case_no: str
    source: str
    klass: CaseClass
    place: Place
    description: str
    reported_at: datetime
    reporter_user_id: int | None
    reporter_name_mask: str | None
    reporter_phone_mask: str | None
    steps: list[Step] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    supervisions: list[Supervision] = field(default_factory=list)
    department_code: str | None = None
    merged_into: int | None = None
    on_hold: bool = False
    rework_count: int = 0
    return_count: int = 0
    extension_count: int = 0
    extension_minutes: int = 0
    force_dispatched: bool = False

    @property
    def stage(self) -> str:
        """The stage after the last step."""
        return self.steps[-1].to_stage

    def first(self, action: str) -> datetime | None:
        """When ``action`` first happened."""
        return next((s.at for s in self.steps if s.action == action), None)

    def last(self, action: str) -> datetime | None:
        """When ``action`` last happened."""
        return next((s.at for s in reversed(self.steps) if s.action == action), None)


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in table], [w for _, w in table])[0]


def _minutes(rng: random.Random, lo: float, hi: float) -> timedelta:
    """A duration between lo and hi minutes, skewed short (log-uniform)."""
    return timedelta(minutes=lo * (hi / lo) ** rng.random())


@dataclass
class Plan:
    """How many cases over how many days, ending at ``end`` (the snapshot)."""

    cases: int
    days: int
    end: datetime
    tail_per_stage: int = 4

    @property
    def registered(self) -> int:
        """Cases destined for 立案: the tender's 5,389 a year, scaled to this plan."""
        return round(self.cases * REGISTERED_PER_YEAR / (CASES_PER_DAY * 365))


class Generator:
    """Generate ``plan.cases`` cases over ``world``, deterministically from ``seed``."""

    def __init__(self, world: World, plan: Plan, seed: int) -> None:
        self.world, self.plan = world, plan
        self.rng = random.Random(seed)
        self.extras = 0  # forced 处置中 cases seen so far (open_extras cycles through kinds)
        weights = [1 / (k + 1) ** 0.9 for k in range(len(world.event_classes))]
        self.rng.shuffle(weights)
        self.event_weights = weights

    def times(self) -> list[datetime]:
        """Sorted report instants over the plan's days, busier in working hours."""
        start = self.plan.end - timedelta(days=self.plan.days)
        out = []
        for _ in range(self.plan.cases):
            day = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
                days=self.rng.randrange(self.plan.days + 1)
            )
            hour = self.rng.choices(range(24), HOURS)[0]
            t = day + timedelta(hours=hour, seconds=self.rng.randrange(3600))
            out.append(min(max(t, start), self.plan.end - timedelta(minutes=5)))
        return sorted(out)

    def fates(self) -> list[str]:
        """One fate per case: 'flow' for the registered share, else a non-registered fate."""
        n = self.plan.cases
        flow = set(self.rng.sample(range(n), min(n, self.plan.registered)))
        return ["flow" if i in flow else _pick(self.rng, NON_REGISTERED_FATES) for i in range(n)]

    def build(self) -> list[CaseRow]:
        """Every case, in report order (index = position)."""
        times, fates = self.times(), self.fates()
        n = len(times)
        tail = [(s, "flow") for s in OPEN_STAGES for _ in range(self.plan.tail_per_stage)]
        tail += [("voided", "flow"), ("rejected", "rejected"), ("not_registered", "not_registered")]
        tail += [("cancelled", "cancelled"), ("merged", "merged")]
        forced: dict[int, str] = {}
        for k, (stage, fate) in enumerate(reversed(tail)):
            if n - 1 - k >= 0:
                forced[n - 1 - k] = stage
                fates[n - 1 - k] = fate
        cases = []
        for i, (at, fate) in enumerate(zip(times, fates, strict=True)):
            if i in forced:
                at = self.plan.end - timedelta(hours=2 + self.rng.random() * 72)
            case = self.case(i, at, fate)
            self.timeline(case, fate, forced.get(i), cases)
            cases.append(case)
        cases.sort(key=lambda c: (c.reported_at, c.index))
        remap = {c.index: k for k, c in enumerate(cases)}
        daily: dict[str, int] = {}
        for k, c in enumerate(cases):
            c.index = k
            c.merged_into = remap[c.merged_into] if c.merged_into is not None else None
            day = f"{c.reported_at.astimezone(self.plan.end.tzinfo):%Y%m%d}"
            daily[day] = daily.get(day, 0) + 1
            c.case_no = f"{day}{daily[day]:06d}"  # 任务号: Beijing date + daily sequence
        return cases

    # --- one case -------------------------------------------------------------------------

    def case(self, index: int, at: datetime, fate: str) -> CaseRow:
        """The case's own fields (class, place, source, reporter)."""
        rng, w = self.rng, self.world
        if rng.random() < 0.4:
            place = rng.choice(w.parts)
            klass = w.component_classes[str(place.part_class)]
        else:
            place = rng.choice(w.events)
            klass = rng.choices(w.event_classes, self.event_weights)[0]
        if fate == "self_handled":
            source = "self_handled"
        elif fate == "flow":
            source = _pick(rng, FLOW_SOURCES)
        else:
            source = _pick(rng, SCREENED_SOURCES)
        reporter, name_mask, phone_mask = None, None, None
        if source in ("inspector", "self_handled", "special_check"):
            name, reporter = w.inspectors.get(
                place.responsibility_grid_code or "", ("监督员", None)
            )
            name_mask = name[0] + "*" * (len(name) - 1)
        elif source in ("public", "hotline_12345"):
            surname = rng.choice("张王李赵陈刘杨黄吴周徐孙")
            name_mask = surname + "*" * rng.choice((1, 2))
            phone_mask = f"1{rng.choice('35789')}{rng.randrange(10)}****{rng.randrange(10000):04d}"
            if source == "public" and w.citizen_id and rng.random() < 0.15:
                reporter = w.citizen_id
        text = f"{klass.name}：{rng.choice(DESCRIPTIONS[klass.category])}"
        return CaseRow(
            index=index,
            case_no="",
            source=source,
            klass=klass,
            place=place,
            description=text,
            reported_at=at,
            reporter_user_id=reporter,
            reporter_name_mask=name_mask,
            reporter_phone_mask=phone_mask,
        )

    def reporter(self, case: CaseRow) -> Actor:
        """The actor of the report step."""
        if case.source in ("inspector", "self_handled", "special_check"):
            grid = case.place.responsibility_grid_code or ""
            name, uid = self.world.inspectors.get(grid, ("监督员", None))
            return Actor(uid, name, "inspector", "T003")
        if case.source in ("video_ai", "vehicle_ai"):
            return Actor(None, "系统机器人", "system", None)
        if case.reporter_user_id is not None:
            return Actor(case.reporter_user_id, str(case.reporter_name_mask), "public", None)
        return self.world.staff["acceptor"]

    def handler(self, department: str) -> Actor:
        """A department's handler (the demo user for its department, else a named post)."""
        return self.world.staff.get(
            f"handler:{department}", Actor(None, "处置人员", "handler", department)
        )

    def timeline(
        self, case: CaseRow, fate: str, forced: str | None, earlier: list[CaseRow]
    ) -> None:
        """Fill the case's steps, cutting at ``forced`` (a stage) or at the snapshot."""
        steps = Script(self, case)
        steps.add("report", None, "reported", timedelta(0), self.reporter(case))
        if fate == "self_handled":
            steps.add(
                "close", "reported", "closed", _minutes(self.rng, 10, 600), opinion="自行处置"
            )
        elif fate in ("rejected", "merged"):
            self.screened(steps, fate, earlier)
        else:
            self.flow(steps, fate, forced)
        steps.finish(self.plan.end, forced)

    def screened(self, steps: Script, fate: str, earlier: list[CaseRow]) -> None:
        """不受理 or 合并 (duplicate of an earlier case) at intake."""
        staff = self.world.staff["acceptor"]
        if fate == "rejected":
            reason = self.rng.choice(REJECT_REASONS)
            steps.add("reject", "reported", "rejected", _minutes(self.rng, 5, 120), staff)
            steps.last.reason, steps.last.opinion = reason, "不予受理"
            return
        target = next(
            (c for c in reversed(earlier[-200:]) if c.klass == steps.case.klass), None
        ) or (earlier[-1] if earlier else None)
        if target is None:
            steps.add("reject", "reported", "rejected", _minutes(self.rng, 5, 60), staff)
            steps.last.reason = "重复上报"
            return
        steps.case.merged_into = target.index
        steps.add("merge", "reported", "merged", _minutes(self.rng, 5, 120), staff)
        steps.last.details = {"merged_into": target.case_no or None}
        steps.last.reason = "重复案件"

    def flow(self, steps: Script, fate: str, forced: str | None) -> None:
        """受理 → (核实) → 立案/不立案/销案 → 派遣 → 处置 → 核查 → 结案 (or 作废)."""
        rng, staff, case = self.rng, self.world.staff, steps.case
        steps.add("accept", "reported", "accepted", _minutes(rng, 3, 90), staff["acceptor"])
        verify = fate == "cancelled" or forced == "verifying" or rng.random() < 0.12
        if verify:
            steps.add("verify", "accepted", "verifying", _minutes(rng, 5, 60), staff["acceptor"])
            inspector = self.reporter(case) if case.source == "inspector" else None
            checker = inspector or Actor(None, "监督员", "inspector", "T003")
            truth = fate != "cancelled"
            to = "accepted" if truth else "cancelled"
            steps.add("verify-result", "verifying", to, _minutes(rng, 30, 300), checker)
            steps.last.details = {"result": truth}
            if not truth:
                steps.last.reason = "核实不属实"
                return
        if fate == "not_registered":
            steps.add(
                "not-register",
                "accepted",
                "not_registered",
                _minutes(rng, 10, 90),
                staff["acceptor"],
            )
            steps.last.reason = rng.choice(NOT_REGISTERED_REASONS)
            return
        steps.add("register", "accepted", "registered", _minutes(rng, 5, 60), staff["acceptor"])
        department = case.klass.department_code
        case.department_code = department
        dispatcher = staff["dispatcher"]
        steps.add("dispatch", "registered", "dispatched", _minutes(rng, 5, 60), dispatcher)
        steps.last.details = {"department_code": department}
        if forced == "returned" or (forced is None and rng.random() < 0.04):
            steps.add(
                "return", "dispatched", "returned", _minutes(rng, 30, 480), self.handler(department)
            )
            steps.last.reason = "不属于本部门职责"
            steps.add(
                "dispatch", "returned", "dispatched", _minutes(rng, 20, 240), staff["shift_leader"]
            )
            steps.last.details = {"department_code": department}
        if forced == "voided" or (forced is None and rng.random() < 0.01):
            self.void(steps)
            return
        self.handle(steps)

    def void(self, steps: Script) -> None:
        """An approved 作废 request."""
        case, staff = steps.case, self.world.staff
        at = steps.now + _minutes(self.rng, 60, 600)
        by = self.handler(str(case.department_code))
        decided = at + _minutes(self.rng, 30, 300)
        request = Request("void", "approved", "现场已不存在该问题", at, by.user_id)
        request.decided_at, request.decided_by = decided, staff["shift_leader"].user_id
        case.requests.append(request)
        steps.add("request-void", "dispatched", "dispatched", at - steps.now, by)
        steps.last.reason = request.reason
        leader = staff["shift_leader"]
        steps.add("approve-void", "dispatched", "voided", decided - steps.now, leader)
        steps.last.opinion = "同意作废"

    def handle(self, steps: Script) -> None:
        """处置 (with extensions, supervision, hold), 反馈, 核查 (rework on failure), 结案."""
        rng, case, staff = self.rng, steps.case, self.world.staff
        limit = case.klass.disposal_hours * 60
        handler = self.handler(str(case.department_code))
        inspector = self.reporter(case) if case.source == "inspector" else None
        for round_ in range(3):
            late = rng.random() < 0.07
            spend = timedelta(
                minutes=limit * (rng.uniform(1.0, 2.5) if late else rng.uniform(0.1, 0.95))
            )
            if round_ == 0 and rng.random() < 0.05:
                ext = int(limit * rng.uniform(0.5, 1.0)) + 60
                leader = staff["shift_leader"]
                steps.add("request-extension", "dispatched", "dispatched", spend / 4, handler)
                steps.last.details, steps.last.reason = {"minutes": ext}, "需协调施工，申请延期"
                asked = steps.now
                steps.add("approve-extension", "dispatched", "dispatched", spend / 12, leader)
                steps.last.details = {"minutes": ext}
                request = Request("extension", "approved", "需协调施工，申请延期", asked)
                request.requested_by, request.minutes = handler.user_id, ext
                request.decided_at, request.decided_by = steps.now, leader.user_id
                case.requests.append(request)
                spend = spend * 2 / 3
            if round_ == 0 and rng.random() < 0.03:
                steps.add("supervise", "dispatched", "dispatched", spend / 4, staff["leader"])
                steps.last.opinion_type, steps.last.opinion = "督办", "请尽快处置"
                sup = Supervision(
                    steps.now, rng.choice((1, 2, 3)), "群众反映强烈", staff["leader"].user_id
                )
                sup.reply, sup.replied_by = "已安排人员处置", handler.user_id
                sup.replied_at = steps.now + _minutes(rng, 30, 600)
                case.supervisions.append(sup)
                spend = spend * 3 / 4
            steps.add("feedback", "dispatched", "handled", spend, handler)
            steps.last.opinion = "已处置完毕"
            checker = inspector or Actor(None, "监督员", "inspector", "T003")
            passed = rng.random() < 0.9 or round_ == 2
            steps.add("check", "handled", "checked", _minutes(rng, 30, 300), checker)
            steps.last.details = {"result": "pass" if passed else "fail"}
            if passed:
                break
            leader = staff["shift_leader"]
            steps.add("rework", "checked", "registered", _minutes(rng, 5, 60), leader)
            steps.last.reason = "核查未通过"
            steps.add("dispatch", "registered", "dispatched", _minutes(rng, 5, 60), leader)
            steps.last.details = {"department_code": case.department_code}
        steps.add("close", "checked", "closed", _minutes(rng, 5, 90), staff["acceptor"])
        steps.last.opinion = "同意结案"


class Script:
    """Appends steps with increasing instants; ``finish`` cuts them at the snapshot."""

    def __init__(self, gen: Generator, case: CaseRow) -> None:
        self.gen, self.case = gen, case
        self.now = case.reported_at

    @property
    def last(self) -> Step:
        """The latest step."""
        return self.case.steps[-1]

    def add(
        self,
        action: str,
        from_stage: str | None,
        to_stage: str,
        after: timedelta,
        actor: Actor | None = None,
        opinion: str | None = None,
    ) -> None:
        """Append a step ``after`` the previous one."""
        self.now += max(after, timedelta(seconds=1)) if self.case.steps else after
        who = actor or self.gen.world.staff["acceptor"]
        self.case.steps.append(Step(action, from_stage, to_stage, self.now, who, opinion))

    def finish(self, end: datetime, forced: str | None) -> None:
        """Cut at ``forced`` (squeezed before ``end``) or drop the steps after ``end``."""
        steps = self.case.steps
        if forced is not None:
            keep = next((k for k, s in enumerate(steps) if s.to_stage == forced), len(steps) - 1)
            del steps[keep + 1 :]
            span = steps[-1].at - self.case.reported_at
            room = end - timedelta(minutes=10) - self.case.reported_at
            if span > room:
                scale = room / span
                for s in steps:
                    s.at = self.case.reported_at + (s.at - self.case.reported_at) * scale
        else:
            while len(steps) > 1 and steps[-1].at > end:
                steps.pop()
        self.case.requests = [r for r in self.case.requests if r.at <= steps[-1].at]
        for r in self.case.requests:
            if r.decided_at and r.decided_at > steps[-1].at and r.state == "approved":
                r.state, r.decided_at, r.decided_by = "pending", None, None
        self.case.supervisions = [s for s in self.case.supervisions if s.at <= steps[-1].at]
        for s in self.case.supervisions:
            if s.replied_at and s.replied_at > steps[-1].at:
                s.reply = s.replied_at = s.replied_by = None
        if forced == "dispatched":
            self.open_extras(end)
        self.counters()

    def counters(self) -> None:
        """Counters and flags from the steps that remain."""
        case, steps = self.case, self.case.steps
        case.return_count = sum(s.action == "return" for s in steps)
        case.rework_count = sum(s.action == "rework" for s in steps)
        extends = [s for s in steps if s.action == "approve-extension"]
        case.extension_count = len(extends)
        case.extension_minutes = sum(int((s.details or {})["minutes"]) for s in extends)
        case.on_hold = case.stage == "dispatched" and any(s.action == "hold" for s in steps)
        if case.stage != "merged":
            case.merged_into = None
        if case.stage in ("reported", "accepted", "verifying", "registered", "returned"):
            case.department_code = None

    def open_extras(self, end: datetime) -> None:
        """Forced 处置中 cases get, in turn: pending 延期/回退/作废 requests, 挂账, 督办."""
        kind = ("extension", "return", "void", "hold", "supervise")[self.gen.extras % 5]
        self.gen.extras += 1
        case, staff = self.case, self.gen.world.staff
        self.now = case.steps[-1].at
        at = self.now + (end - self.now) / 2
        handler = self.gen.handler(str(case.department_code))
        if kind in ("extension", "return", "void"):
            minutes = 24 * 60 if kind == "extension" else None
            reason = {
                "extension": "材料未到，申请延期",
                "return": "不属于本部门职责",
                "void": "问题已由其他部门处理",
            }[kind]
            request = Request(kind, "pending", reason, at, handler.user_id, minutes)
            case.requests.append(request)
            self.add(f"request-{kind}", "dispatched", "dispatched", at - self.now, handler)
            self.last.reason = reason
        elif kind == "hold":
            self.add("hold", "dispatched", "dispatched", at - self.now, staff["shift_leader"])
            self.last.reason = "涉及规划调整，暂时挂账"
            case.on_hold = True
        else:
            self.add("supervise", "dispatched", "dispatched", at - self.now, staff["leader"])
            self.last.opinion_type, self.last.opinion = "督办", "请加快处置"
            case.supervisions.append(Supervision(at, 2, "超期未处置", staff["leader"].user_id))


DESCRIPTIONS = {
    "事件": (
        "路边发现，影响市容",
        "群众反映多次，需尽快处理",
        "位于人行道上，影响通行",
        "现场较严重，请相关部门处置",
        "巡查发现，面积约2平方米",
    ),
    "部件": (
        "破损，存在安全隐患",
        "缺失，需尽快补装",
        "松动移位，影响通行",
        "污损，影响美观",
        "倾斜，需扶正加固",
    ),
}
REJECT_REASONS = ("描述不清，无法定位", "不属于城市管理范围", "照片与问题不符", "重复上报")
NOT_REGISTERED_REASONS = ("不符合立案条件", "问题已自行消失", "不属于本平台受理范围")
