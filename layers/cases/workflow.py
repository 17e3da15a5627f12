"""Workflow definitions (工作流定义): load, validate, cache, and resolve by case type.

A definition is data (see layers/cases/definitions.py for its shape and the default
GB/T 30428.8 one). ``validate`` turns a JSON document into a ``Definition`` or raises 422
naming the offending field; ``load`` reads one from ``city.workflow_definitions`` and caches
it by code and ``updated_at``; ``workflow_for`` picks the definition of a case type:
(category, major, minor) > (category, major) > (category) > the default definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import psycopg

from layers.cases.definitions import (
    CONDITIONS,
    DEFAULT_CODE,
    EFFECTS,
    OPINION_TYPES,
    PAYLOAD_FIELDS,
    RETURN_FORBIDDEN_FLAGS,
    RULE_DEFAULTS,
)
from spatial.errors import FieldIssue, NotFound, UnprocessableInput
from spatial.security.permissions import PERMISSIONS

WORKFLOW_SQL: Final = """
SELECT coalesce(
    (SELECT t.workflow_code FROM city.case_type_workflows t
     WHERE t.category = %(category)s
       AND (t.major_code IS NULL OR t.major_code = substr(%(class_code)s, 7, 2))
       AND (t.minor_code IS NULL OR t.minor_code = substr(%(class_code)s, 9, 2))
     ORDER BY (t.major_code IS NULL), (t.minor_code IS NULL) LIMIT 1),
    (SELECT code FROM city.workflow_definitions WHERE is_default ORDER BY code LIMIT 1),
    'gbt30428_8')
"""
"""The workflow code of a case type (named parameters ``category``, ``class_code``)."""


@dataclass(frozen=True)
class Stage:
    """A workflow stage (环节) and who works on it."""

    code: str
    name: str
    status: str
    participants: tuple[str, ...] = ()
    timed: bool = False
    terminal: bool = False
    restorable: bool = False


@dataclass(frozen=True)
class Transition:
    """An allowed move (操作动作) from some stages to one stage, or staying (``to`` None)."""

    action: str
    name: str
    sources: tuple[str, ...]
    to: str | None
    permission: tuple[str, ...] = ()  # alternatives; "a+b" needs both
    positions: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    effects: tuple[str, ...] = ()
    opinion_type: str | None = None

    def permitted(self, permissions: frozenset[str], positions: tuple[str, ...]) -> bool:
        """True when the permissions or the posts grant this transition."""
        if any(p in self.positions for p in positions):
            return True
        if not self.permission:
            return False
        return any(all(p in permissions for p in alt.split("+")) for alt in self.permission)


@dataclass(frozen=True)
class Definition:
    """A validated workflow definition."""

    code: str
    name: str
    initial_stage: str
    stages: dict[str, Stage]
    transitions: tuple[Transition, ...]
    rules: dict[str, Any] = field(default_factory=dict)
    document: dict[str, Any] = field(default_factory=dict)

    @property
    def actions(self) -> dict[str, str]:
        """English action name → Chinese name, in definition order."""
        out: dict[str, str] = {}
        for t in self.transitions:
            out.setdefault(t.action, t.name)
        return out

    def candidates(self, action: str, stage: str) -> list[Transition]:
        """The transitions of ``action`` leaving ``stage``, in order."""
        return [t for t in self.transitions if t.action == action and stage in t.sources]

    def stage(self, code: str) -> Stage | None:
        """A stage by code."""
        return self.stages.get(code)

    def status_of(self, stage: str) -> str:
        """The analysis status of a stage."""
        found = self.stages.get(stage)
        return found.status if found else stage

    def rule(self, name: str) -> Any:
        """A rule value (the default definition's value when absent)."""
        return self.rules.get(name, RULE_DEFAULTS.get(name))


class _Issues:
    """Collects field issues while validating."""

    def __init__(self) -> None:
        self.items: list[FieldIssue] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(FieldIssue(where, message))


def _strs(value: Any, where: str, issues: _Issues) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        issues.add(where, "must be a list of strings")
        return ()
    return tuple(value)


def _stage(i: int, raw: Any, issues: _Issues, positions: set[str] | None) -> Stage | None:
    where = f"definition.stages[{i}]"
    if not isinstance(raw, dict):
        issues.add(where, "must be an object")
        return None
    code, name, status = raw.get("code"), raw.get("name"), raw.get("status")
    for key, value, size in (("code", code, 30), ("name", name, 20), ("status", status, 10)):
        if not isinstance(value, str) or not value or len(value) > size:
            issues.add(f"{where}.{key}", f"must be a non-empty string of at most {size} chars")
    participants = _strs(raw.get("participants"), f"{where}.participants", issues)
    for p in participants:
        if positions is not None and p not in positions:
            issues.add(f"{where}.participants", f"unknown position {p!r}")
    if not isinstance(code, str) or not isinstance(name, str) or not isinstance(status, str):
        return None
    return Stage(
        code=code,
        name=name,
        status=status,
        participants=participants,
        timed=bool(raw.get("timed", False)),
        terminal=bool(raw.get("terminal", False)),
        restorable=bool(raw.get("restorable", False)),
    )


def _check_names(names: tuple[str, ...], known: dict[str, str], where: str, issues: _Issues):
    for name in names:
        if name not in known:
            issues.add(where, f"unknown {where.rsplit('.', 1)[-1][:-1]} {name!r}")


def _transition(
    i: int, raw: Any, stages: set[str], issues: _Issues, positions: set[str] | None
) -> Transition | None:
    where = f"definition.transitions[{i}]"
    if not isinstance(raw, dict):
        issues.add(where, "must be an object")
        return None
    action, name, to = raw.get("action"), raw.get("name"), raw.get("to")
    if not isinstance(action, str) or not action or len(action) > 30:
        issues.add(f"{where}.action", "must be a non-empty string of at most 30 chars")
    if not isinstance(name, str) or not name or len(name) > 20:
        issues.add(f"{where}.name", "must be a non-empty string of at most 20 chars")
    sources = _strs(raw.get("from"), f"{where}.from", issues)
    if not sources:
        issues.add(f"{where}.from", "must name at least one stage")
    for s in sources:
        if s not in stages:
            issues.add(f"{where}.from", f"unknown stage {s!r}")
    if to is not None and (not isinstance(to, str) or to not in stages):
        issues.add(f"{where}.to", f"unknown stage {to!r}")
    permission = _strs(raw.get("permission"), f"{where}.permission", issues)
    for alt in permission:
        for p in alt.split("+"):
            if p not in PERMISSIONS:
                issues.add(f"{where}.permission", f"unknown permission {p!r}")
    granted_by = _strs(raw.get("positions"), f"{where}.positions", issues)
    if positions is not None:
        for p in granted_by:
            if p not in positions:
                issues.add(f"{where}.positions", f"unknown position {p!r}")
    if not permission and not granted_by:
        issues.add(f"{where}.permission", "a permission or a position is required")
    requires = _strs(raw.get("requires"), f"{where}.requires", issues)
    conditions = _strs(raw.get("conditions"), f"{where}.conditions", issues)
    effects = _strs(raw.get("effects"), f"{where}.effects", issues)
    _check_names(requires, PAYLOAD_FIELDS, f"{where}.requires", issues)
    _check_names(conditions, CONDITIONS, f"{where}.conditions", issues)
    _check_names(effects, EFFECTS, f"{where}.effects", issues)
    opinion_type = raw.get("opinion_type")
    if opinion_type is not None and opinion_type not in OPINION_TYPES:
        issues.add(f"{where}.opinion_type", f"must be one of {', '.join(OPINION_TYPES)}")
    if not isinstance(action, str) or not isinstance(name, str):
        return None
    return Transition(
        action=action,
        name=name,
        sources=sources,
        to=to if isinstance(to, str) else None,
        permission=permission,
        positions=granted_by,
        requires=requires,
        conditions=conditions,
        effects=effects,
        opinion_type=opinion_type if isinstance(opinion_type, str) else None,
    )


def _rules(raw: Any, issues: _Issues) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        issues.add("definition.rules", "must be an object")
        return {}
    for key, value in raw.items():
        where = f"definition.rules.{key}"
        if key not in RULE_DEFAULTS:
            issues.add(where, "unknown rule")
        elif isinstance(RULE_DEFAULTS[key], bool) and not isinstance(value, bool):
            issues.add(where, "must be true or false")
        elif isinstance(RULE_DEFAULTS[key], int | float) and not isinstance(
            RULE_DEFAULTS[key], bool
        ):
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                issues.add(where, "must be a non-negative number")
        elif isinstance(RULE_DEFAULTS[key], list) and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            issues.add(where, "must be a list of strings")
    for flag in raw.get("return_forbidden_when") or []:
        if flag not in RETURN_FORBIDDEN_FLAGS:
            issues.add("definition.rules.return_forbidden_when", f"unknown flag {flag!r}")
    return dict(raw)


def validate(
    code: str, name: str, document: Any, *, positions: set[str] | None = None
) -> Definition:
    """A ``Definition`` from a JSON document, or 422 naming every bad field.

    ``positions``: the known position codes (participants and granting posts are checked
    against them when given).
    """
    issues = _Issues()
    if not isinstance(document, dict):
        raise UnprocessableInput(
            "A workflow definition is an object.", [FieldIssue("definition", "must be an object")]
        )
    raw_stages = document.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        issues.add("definition.stages", "must be a non-empty list")
        raw_stages = []
    stages: dict[str, Stage] = {}
    for i, raw in enumerate(raw_stages):
        stage = _stage(i, raw, issues, positions)
        if stage is None:
            continue
        if stage.code in stages:
            issues.add(f"definition.stages[{i}].code", f"duplicate stage {stage.code!r}")
        stages[stage.code] = stage
    initial = document.get("initial_stage", "reported")
    if initial not in stages:
        issues.add("definition.initial_stage", f"unknown stage {initial!r}")
    raw_transitions = document.get("transitions")
    if not isinstance(raw_transitions, list) or not raw_transitions:
        issues.add("definition.transitions", "must be a non-empty list")
        raw_transitions = []
    transitions = [
        _transition(i, raw, set(stages), issues, positions) for i, raw in enumerate(raw_transitions)
    ]
    rules = _rules(document.get("rules"), issues)
    if issues.items:
        raise UnprocessableInput(f"Workflow definition {code} is invalid.", issues.items)
    return Definition(
        code=code,
        name=name,
        initial_stage=str(initial),
        stages=stages,
        transitions=tuple(t for t in transitions if t is not None),
        rules=rules,
        document=document,
    )


_CACHE: dict[tuple[str, datetime], Definition] = {}


async def load(
    conn: psycopg.AsyncConnection, code: str, updated_at: datetime | None = None
) -> Definition:
    """The definition ``code``, cached by code and ``updated_at`` (read when not given)."""
    if updated_at is None:
        cur = await conn.execute(
            "SELECT updated_at FROM city.workflow_definitions WHERE code = %s", (code,)
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"No workflow definition {code}.")
        updated_at = row[0]
    key = (code, updated_at)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    cur = await conn.execute(
        "SELECT name, definition FROM city.workflow_definitions WHERE code = %s", (code,)
    )
    name, document = await cur.fetchone()  # type: ignore[misc]
    definition = validate(code, name, document)
    if len(_CACHE) > 256:
        _CACHE.clear()
    _CACHE[key] = definition
    return definition


async def workflow_for(conn: psycopg.AsyncConnection, category: str, class_code: str) -> str:
    """The workflow code of a new case of ``category``/``class_code`` (intake sets it)."""
    cur = await conn.execute(WORKFLOW_SQL, {"category": category, "class_code": class_code})
    row = await cur.fetchone()
    return str(row[0]) if row else DEFAULT_CODE


async def definition_for_case(conn: psycopg.AsyncConnection, workflow_code: str) -> Definition:
    """The definition a case follows."""
    return await load(conn, workflow_code)
