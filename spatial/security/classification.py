"""Data classification and grading (数据分类分级) of the platform's tables and personal fields.

Levels follow the 《网络数据分类分级指引》 frame the tender cites: 一般数据 / 重要数据 /
核心数据; personal information is marked 个人信息 or 敏感个人信息 with how it is protected.
Published layers take their level from the layer registry; this module adds the tables that
are not layers and the field-level labels. Served at ``/api/v1/data-classification``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from layers.registry import LayerRegistry

Level = Literal["一般数据", "重要数据", "核心数据"]
Personal = Literal["个人信息", "敏感个人信息"]
Protection = Literal["SM4 加密+脱敏", "SM3 杂凑", "HMAC-SM3", "脱敏", "无"]


@dataclass(frozen=True)
class FieldLabel:
    """One labelled field."""

    personal: Personal
    protection: Protection
    note: str = ""


@dataclass(frozen=True)
class TableLabel:
    """A table's level, category and labelled fields."""

    level: Level
    category: str
    fields: dict[str, FieldLabel] = field(default_factory=dict)
    layer: str | None = None  # the layer id publishing it, if any


SENSITIVE_SM4: Final = FieldLabel("敏感个人信息", "SM4 加密+脱敏")
PERSONAL_SM4: Final = FieldLabel("个人信息", "SM4 加密+脱敏")

TABLES: Final[dict[str, TableLabel]] = {
    "users": TableLabel(
        "重要数据",
        "组织人员",
        {
            "display_name": FieldLabel("个人信息", "无", "工作人员姓名, 内部可见"),
            "phone_enc": PERSONAL_SM4,
            "id_number_enc": SENSITIVE_SM4,
            "password_hash": FieldLabel("敏感个人信息", "SM3 杂凑", "PBKDF2-HMAC-SM3"),
            "totp_secret_enc": FieldLabel("敏感个人信息", "SM4 加密+脱敏", "动态口令密钥"),
        },
    ),
    "cases": TableLabel(
        "重要数据",
        "城市管理业务",
        {
            "reporter_name_enc": PERSONAL_SM4,
            "reporter_phone_enc": PERSONAL_SM4,
            "reporter_phone_bidx": FieldLabel("个人信息", "HMAC-SM3", "盲索引, 仅等值检索"),
        },
        layer="cases",
    ),
    "notifications": TableLabel(
        "重要数据",
        "业务短信",
        {"recipient_phone_enc": PERSONAL_SM4},
    ),
    "sms_messages": TableLabel(
        "重要数据", "业务短信", {"phone_mask": FieldLabel("个人信息", "脱敏", "已脱敏号码")}
    ),
    "case_media": TableLabel("重要数据", "城市管理业务"),
    "inspector_positions": TableLabel(
        "重要数据", "人员轨迹", {"geom": FieldLabel("个人信息", "无", "监督员位置, 按权限可见")}
    ),
    "responsibility_grids": TableLabel(
        "一般数据",
        "网格",
        {"inspector_name": FieldLabel("个人信息", "无", "监督员姓名, 公开于责任网格")},
        layer="responsibility_grids",
    ),
    "refresh_tokens": TableLabel(
        "重要数据", "认证凭据", {"token_hash": FieldLabel("敏感个人信息", "SM3 杂凑")}
    ),
    "api_keys": TableLabel(
        "重要数据", "认证凭据", {"secret_hash": FieldLabel("敏感个人信息", "HMAC-SM3")}
    ),
    "audit_log": TableLabel(
        "重要数据", "安全审计", {"ip": FieldLabel("个人信息", "无", "仅审计员可读")}
    ),
}


def catalogue(registry: LayerRegistry) -> list[dict[str, object]]:
    """Every labelled table and every layer, one entry each, JSON-ready."""
    out: list[dict[str, object]] = []
    seen: set[str] = set()
    for spec in registry:
        label = TABLES.get(spec.table)
        seen.add(spec.table)
        out.append(_entry(spec.table, label, spec.classification, spec.id, spec.read_permission))
    for table, label in TABLES.items():
        if table not in seen:
            out.append(_entry(table, label, label.level, None, "restricted"))
    return out


def _entry(
    table: str, label: TableLabel | None, level: str, layer: str | None, permission: str | None
) -> dict[str, object]:
    return {
        "table": f"city.{table}",
        "layer": layer,
        "level": label.level if label else level,
        "category": label.category if label else "基础地理数据",
        "access": permission or "public",
        "fields": {
            name: {"personal": f.personal, "protection": f.protection, "note": f.note}
            for name, f in (label.fields.items() if label else ())
        },
    }
