"""Geofences, their per-vehicle state, alarms (报警) and electronic manifests (电子联单).

``geofences.geom`` is the fence polygon in CGCS2000 (corridors and forbidden roads: their
source line buffered by half the width); ``inner_m``/``outer_m`` are the fence shrunk and grown
by its hysteresis in EPSG:4528 metres, maintained by a trigger and used by the engine.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy import true as sa_true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from spatial.models.base import SRID, Base, geom, h3_cell

FENCE_KINDS = ("polygon", "circle", "corridor", "forbidden_road", "forbidden_zone", "site")
FENCE_RULES = ("none", "enter", "exit", "inside_max", "outside")
ALARM_KINDS = (
    "fence_enter",
    "fence_exit",
    "inside_too_long",
    "off_corridor",
    "forbidden_road",
    "forbidden_zone",
    "speeding",
    "dumping",
    "unsealed",
    "unregistered",
    "unpermitted",
    "unapproved_disposal",
    "offline",
)
ALARM_STATES = ("open", "acknowledged", "closed", "cased")
MANIFEST_STATES = ("open", "complete", "broken", "unapproved")
METRIC_SRID = 4528


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _json(comment: str) -> Mapped[dict[str, Any]]:
    return mapped_column(JSONB, server_default=text("'{}'::jsonb"), comment=comment)


def _at(comment: str | None = None, index: bool = False) -> Mapped[datetime | None]:
    return mapped_column(DateTime(timezone=True), index=index, comment=comment)


class Geofence(Base):
    """A fence: polygon, circle, corridor, forbidden road/zone or a fleet site's outline."""

    __tablename__ = "geofences"
    __table_args__ = (
        CheckConstraint(_in("kind", FENCE_KINDS), name="kind"),
        CheckConstraint(_in("rule", FENCE_RULES), name="rule"),
        CheckConstraint("hysteresis_m >= 0 AND dwell_s >= 0", name="tolerances"),
        CheckConstraint(
            "rule <> 'inside_max' OR inside_max_minutes > 0", name="inside_max_minutes"
        ),
        Index("ix_geofences_outer_m", "outer_m", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), comment="围栏名称")
    kind: Mapped[str] = mapped_column(String(16), index=True, comment="围栏类型")
    rule: Mapped[str] = mapped_column(String(12), server_default="none", comment="报警规则")
    inside_max_minutes: Mapped[int | None] = mapped_column(Integer, comment="最长停留(分钟)")
    speed_limit_kmh: Mapped[float | None] = mapped_column(Double, comment="区域限速")
    radius_m: Mapped[float | None] = mapped_column(Double, comment="圆形半径(米)")
    width_m: Mapped[float | None] = mapped_column(Double, comment="走廊/道路宽度(米)")
    hysteresis_m: Mapped[float] = mapped_column(Double, server_default="15", comment="回差(米)")
    dwell_s: Mapped[int] = mapped_column(Integer, server_default="0", comment="确认时长(秒)")
    schedule: Mapped[dict[str, Any]] = _json("生效时段 (Asia/Shanghai)")
    applicability: Mapped[dict[str, Any]] = _json("适用车辆")
    site_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_sites.id", ondelete="CASCADE"), unique=True, comment="场地围栏"
    )
    site_kind: Mapped[str | None] = mapped_column(String(4), comment="工地/消纳场/中转场/停车场")
    route_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_routes.id", ondelete="CASCADE"), unique=True, comment="核准路线走廊"
    )
    active: Mapped[bool] = mapped_column(Boolean, server_default=sa_true(), comment="启用")
    geom: Mapped[object] = geom("MULTIPOLYGON")
    line: Mapped[object | None] = mapped_column(
        Geometry("MULTILINESTRING", srid=SRID, spatial_index=False), comment="走廊/道路中线"
    )
    inner_m: Mapped[object | None] = mapped_column(
        Geometry("GEOMETRY", srid=METRIC_SRID, spatial_index=False), comment="内缩 (进入判定)"
    )
    outer_m: Mapped[object | None] = mapped_column(
        Geometry("GEOMETRY", srid=METRIC_SRID, spatial_index=False), comment="外扩 (离开判定)"
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class GeofenceState(Base):
    """Where a vehicle stands with a fence (hysteresis, dwell, restart safety)."""

    __tablename__ = "geofence_state"

    vehicle_id: Mapped[int] = mapped_column(
        ForeignKey("fleet_vehicles.id", ondelete="CASCADE"), primary_key=True
    )
    fence_id: Mapped[int] = mapped_column(
        ForeignKey("geofences.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    inside: Mapped[bool] = mapped_column(Boolean)
    since: Mapped[datetime | None] = _at("inside/outside since")
    pending_since: Mapped[datetime | None] = _at("transition awaiting its dwell time")
    last_fix_time: Mapped[datetime | None] = _at()
    alarmed: Mapped[bool] = mapped_column(Boolean, server_default="false", comment="报警中")


class VehicleWatch(Base):
    """Per-vehicle monitor state: last evaluated fix, trip, stop and speeding trackers."""

    __tablename__ = "vehicle_watch"

    vehicle_id: Mapped[int] = mapped_column(
        ForeignKey("fleet_vehicles.id", ondelete="CASCADE"), primary_key=True
    )
    last_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_lon: Mapped[float] = mapped_column(Double)
    last_lat: Mapped[float] = mapped_column(Double)
    state: Mapped[dict[str, Any]] = _json("trip/stop/speeding trackers")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Alarm(Base):
    """A violation or alarm (报警): stored, pushed live, optionally turned into a case."""

    __tablename__ = "alarms"
    __table_args__ = (
        CheckConstraint(_in("kind", ALARM_KINDS), name="kind"),
        CheckConstraint(_in("state", ALARM_STATES), name="state"),
        Index("ix_alarms_dedupe_key", "dedupe_key"),
        Index(
            "uq_alarms_active_dedupe_key",
            "dedupe_key",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(24), index=True, comment="报警类型")
    title: Mapped[str] = mapped_column(String(100), comment="报警说明")
    vehicle_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_vehicles.id", ondelete="SET NULL"), index=True
    )
    plate: Mapped[str | None] = mapped_column(String(16), index=True, comment="车牌号")
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_companies.id", ondelete="SET NULL"), index=True
    )
    fence_id: Mapped[int | None] = mapped_column(
        ForeignKey("geofences.id", ondelete="SET NULL"), index=True
    )
    site_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_sites.id", ondelete="SET NULL"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = _at("NULL while the condition lasts")
    state: Mapped[str] = mapped_column(String(12), server_default="open", index=True)
    details: Mapped[dict[str, Any]] = _json("证据与参数")
    dedupe_key: Mapped[str | None] = mapped_column(String(120), comment="coalescing key")
    occurrences: Mapped[int] = mapped_column(Integer, server_default="1", comment="合并次数")
    received_at: Mapped[datetime | None] = _at("receipt of the triggering fix")
    detected_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )
    acknowledged_at: Mapped[datetime | None] = _at()
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    closed_at: Mapped[datetime | None] = _at()
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text, comment="处理说明")
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="SET NULL"), index=True, comment="转案卷"
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    h3: Mapped[int | None] = h3_cell()
    geom: Mapped[object] = geom("POINT")


class Manifest(Base):
    """An electronic manifest (电子联单): one trip 工地 → 路线 → 消纳场 with both weighings."""

    __tablename__ = "manifests"
    __table_args__ = (CheckConstraint(_in("state", MANIFEST_STATES), name="state"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    vehicle_id: Mapped[int] = mapped_column(
        ForeignKey("fleet_vehicles.id", ondelete="CASCADE"), index=True
    )
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_companies.id", ondelete="SET NULL"), index=True
    )
    site_id: Mapped[int] = mapped_column(
        ForeignKey("fleet_sites.id", ondelete="CASCADE"), index=True, comment="工地"
    )
    disposal_site_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_sites.id", ondelete="SET NULL"), index=True, comment="消纳场"
    )
    binding_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_bindings.id", ondelete="SET NULL"), comment="核准关系"
    )
    route_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_routes.id", ondelete="SET NULL"), comment="核准路线"
    )
    exit_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    exit_weight_kg: Mapped[float | None] = mapped_column(Double, comment="出场地磅")
    entry_at: Mapped[datetime | None] = _at("进场时间")
    entry_weight_kg: Mapped[float | None] = mapped_column(Double, comment="进场地磅")
    weight_diff_kg: Mapped[float | None] = mapped_column(Double, comment="对账差额")
    state: Mapped[str] = mapped_column(String(12), server_default="open", index=True)
    reason: Mapped[str | None] = mapped_column(String(200), comment="异常原因")
    off_route: Mapped[bool] = mapped_column(Boolean, server_default="false", comment="偏离路线")
    alarms: Mapped[int] = mapped_column(SmallInteger, server_default="0", comment="途中报警数")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
