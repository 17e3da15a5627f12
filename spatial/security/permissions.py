"""The permission catalogue, the built-in positions (岗位) and separation-of-duty rules.

Positions and their permissions live in ``city.positions`` (an administrator may change them);
the built-in set below is what migration 0005 seeds. Separation of duties (三员分立) holds for
every principal, whatever the database says: whoever may read the audit trail may change
nothing, and whoever administers users, roles or keys may not read the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from spatial.errors import Conflict, FieldIssue

PERMISSIONS: Final[dict[str, str]] = {
    "cases:read": "查看案卷",
    "cases:report": "上报问题",
    "cases:accept": "受理/立案",
    "cases:dispatch": "派遣",
    "cases:handle": "处置反馈",
    "cases:supervise": "核查/结案/督办",
    "personal:read": "查看个人信息明文",
    "vehicles:read": "查看车辆与轨迹",
    "alarms:read": "查看报警",
    "stats:read": "统计分析",
    "geocode:batch": "批量地理编码",
    "layers:write": "编辑基础图层",
    "data:import": "导入数据",
    "telemetry:write": "上传定位数据",
    "users:manage": "人员管理",
    "roles:manage": "岗位权限管理",
    "org:manage": "机构管理",
    "apikeys:manage": "API 密钥管理",
    "keys:manage": "密钥轮换",
    "audit:read": "查看审计日志",
}

# Reading permissions: the only ones an auditor may hold besides audit:read.
READ_ONLY: Final = frozenset(
    {"cases:read", "vehicles:read", "alarms:read", "stats:read", "audit:read"}
)
ADMINISTRATION: Final = frozenset(
    {"users:manage", "roles:manage", "org:manage", "apikeys:manage", "keys:manage"}
)
AUDIT: Final = frozenset({"audit:read"})


@dataclass(frozen=True)
class PositionDef:
    """A built-in position."""

    code: str
    name: str
    permissions: tuple[str, ...]
    data_scope: str
    requires_mfa: bool = False
    description: str = ""


BUILTIN_POSITIONS: Final[tuple[PositionDef, ...]] = (
    PositionDef("inspector", "监督员", ("cases:read", "cases:report", "telemetry:write"), "grid"),
    PositionDef(
        "acceptor", "受理员", ("cases:read", "cases:accept", "personal:read", "stats:read"), "all"
    ),
    PositionDef(
        "dispatcher",
        "派遣员",
        ("cases:read", "cases:dispatch", "personal:read", "stats:read"),
        "all",
    ),
    PositionDef(
        "shift_leader",
        "值班长",
        (
            "cases:read",
            "cases:accept",
            "cases:dispatch",
            "cases:supervise",
            "personal:read",
            "stats:read",
            "vehicles:read",
            "alarms:read",
        ),
        "all",
    ),
    PositionDef("handler", "处置人员", ("cases:read", "cases:handle"), "unit"),
    PositionDef(
        "leader",
        "领导",
        ("cases:read", "stats:read", "vehicles:read", "alarms:read", "cases:supervise"),
        "all",
    ),
    PositionDef(
        "enforcer",
        "执法人员",
        ("cases:read", "cases:handle", "personal:read", "alarms:read"),
        "unit",
    ),
    PositionDef(
        "admin",
        "系统管理员",
        (
            "users:manage",
            "roles:manage",
            "org:manage",
            "apikeys:manage",
            "keys:manage",
            "layers:write",
            "data:import",
            "geocode:batch",
        ),
        "none",
        requires_mfa=True,
    ),
    PositionDef("auditor", "审计员", ("audit:read", "cases:read", "stats:read"), "all"),
    PositionDef("public", "公众", ("cases:read", "cases:report"), "self"),
)


def unknown_permissions(permissions: Iterable[str]) -> list[str]:
    """Permissions not in the catalogue."""
    return sorted(set(permissions) - set(PERMISSIONS))


def duty_conflicts(permissions: Iterable[str]) -> list[str]:
    """Why this set of permissions breaks separation of duties (empty when it does not)."""
    perms = frozenset(permissions)
    problems = []
    if perms & AUDIT:
        if perms & ADMINISTRATION:
            problems.append("audit:read cannot be combined with administration (管理员不得审计)")
        writes = sorted(perms - READ_ONLY)
        if writes:
            listed = ", ".join(writes)
            problems.append(f"audit:read excludes changes ({listed}) (审计员不得改数据)")
    return problems


def check_permissions(permissions: Iterable[str], field: str = "permissions") -> None:
    """Raise ``Conflict`` for unknown permissions or a separation-of-duty breach."""
    perms = list(permissions)
    unknown = unknown_permissions(perms)
    if unknown:
        raise Conflict(
            f"Unknown permission(s): {', '.join(unknown)}",
            [FieldIssue(field, f"known: {', '.join(PERMISSIONS)}")],
        )
    problems = duty_conflicts(perms)
    if problems:
        raise Conflict(
            "Separation of duties (三员分立) forbids this combination",
            [FieldIssue(field, p) for p in problems],
        )


def effective_permissions(permissions: Iterable[str]) -> frozenset[str]:
    """Permissions as granted, minus audit:read when they would break separation of duties.

    Defence in depth: a database edited behind the API's back cannot give one principal both
    administration and the audit trail; administration wins and the audit right is dropped.
    """
    perms = frozenset(permissions) & frozenset(PERMISSIONS)
    return perms - AUDIT if duty_conflicts(perms) else perms
