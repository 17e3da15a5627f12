"""Fleet registry and telemetry (车辆监管, 渣土全链条): sites, companies, trucks, fixes.

``telemetry_fixes`` is partitioned by device time (one partition per Shanghai day, created on
demand by ``city.ensure_fix_partition(day)`` in schema ``city_fixes``, plus a default partition
for strays); its primary key (vehicle_id, device_time) deduplicates fixes. ``vehicle_latest``
holds one row per vehicle and only ever moves forward in device time.
"""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from spatial.models.base import SRID, Base, geom, h3_cell

SITE_KINDS = ("工地", "消纳场", "中转场", "停车场")
VEHICLE_KINDS = ("渣土车", "垃圾车", "环卫车", "其他")
PERMIT_KINDS = ("出土许可", "运输许可", "处置许可")


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class FleetCompany(Base):
    """A transport or sanitation company (渣土运输企业/环卫企业)."""

    __tablename__ = "fleet_companies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(30), unique=True, comment="企业编号")
    name: Mapped[str] = mapped_column(String(100), unique=True, comment="企业名称")
    credit_code: Mapped[str | None] = mapped_column(String(18), comment="统一社会信用代码")
    kind: Mapped[str] = mapped_column(String(10), server_default="运输企业", comment="企业类型")
    contact: Mapped[str | None] = mapped_column(String(30), comment="联系人")
    phone: Mapped[str | None] = mapped_column(String(30), comment="联系电话")
    address: Mapped[str | None] = mapped_column(String(200), comment="地址")
    created_at: Mapped[datetime] = _now()


class FleetSite(Base):
    """A site of the chain: 工地 (产生源), 消纳场, 中转场 (中转调配厂) or 停车场."""

    __tablename__ = "fleet_sites"
    __table_args__ = (CheckConstraint(_in("kind", SITE_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(30), unique=True, comment="场地编号")
    name: Mapped[str] = mapped_column(String(100), comment="名称")
    kind: Mapped[str] = mapped_column(String(4), index=True, comment="工地/消纳场/中转场/停车场")
    address: Mapped[str | None] = mapped_column(String(200), comment="地址")
    street_code: Mapped[str | None] = mapped_column(ForeignKey("streets.code"), index=True)
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_companies.id", ondelete="SET NULL"), index=True, comment="建设/运营单位"
    )
    contact: Mapped[str | None] = mapped_column(String(30), comment="联系人")
    phone: Mapped[str | None] = mapped_column(String(30), comment="联系电话")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true", comment="在用")
    geom: Mapped[object] = geom("MULTIPOLYGON")
    gate: Mapped[object | None] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=False), comment="出入口"
    )
    created_at: Mapped[datetime] = _now()


class FleetVehicle(Base):
    """A vehicle under supervision (渣土车/垃圾车/环卫车)."""

    __tablename__ = "fleet_vehicles"
    __table_args__ = (
        CheckConstraint(_in("kind", VEHICLE_KINDS), name="kind"),
        CheckConstraint("speed_limit_kmh BETWEEN 5 AND 150", name="speed_limit"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plate: Mapped[str] = mapped_column(String(16), unique=True, comment="车牌号")
    kind: Mapped[str] = mapped_column(String(4), index=True, comment="车辆类型")
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_companies.id", ondelete="SET NULL"), index=True, comment="所属企业"
    )
    sealed_capable: Mapped[bool] = mapped_column(
        Boolean, server_default="false", comment="具备密闭/顶盖传感器"
    )
    speed_limit_kmh: Mapped[int] = mapped_column(
        SmallInteger, server_default="60", comment="速度等级 (限速 km/h)"
    )
    load_capacity_kg: Mapped[float | None] = mapped_column(Float, comment="核定载质量")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true", comment="在用")
    created_at: Mapped[datetime] = _now()


class FleetDriver(Base):
    """A driver (驾驶员), real-name registered."""

    __tablename__ = "fleet_drivers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(30), comment="姓名")
    license_no: Mapped[str] = mapped_column(String(30), unique=True, comment="驾驶证号")
    phone: Mapped[str | None] = mapped_column(String(30), comment="联系电话")
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_companies.id", ondelete="SET NULL"), index=True
    )
    vehicle_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_vehicles.id", ondelete="SET NULL"), index=True, comment="常驾车辆"
    )


class FleetTerminal(Base):
    """An on-board terminal (车载终端) identified by its terminal id / IMEI."""

    __tablename__ = "fleet_terminals"

    terminal_id: Mapped[str] = mapped_column(String(32), primary_key=True, comment="终端号/IMEI")
    vehicle_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_vehicles.id", ondelete="SET NULL"), unique=True, comment="安装车辆"
    )
    sim: Mapped[str | None] = mapped_column(String(20), comment="SIM 卡号")
    model: Mapped[str | None] = mapped_column(String(40), comment="型号")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    installed_at: Mapped[date | None] = mapped_column(Date)


class FleetPermit(Base):
    """A permit with validity: 出土许可 (site), 运输许可/准运 (vehicle or company), 处置许可."""

    __tablename__ = "fleet_permits"
    __table_args__ = (
        CheckConstraint(_in("kind", PERMIT_KINDS), name="kind"),
        CheckConstraint("valid_to >= valid_from", name="period"),
        CheckConstraint("num_nonnulls(site_id, company_id, vehicle_id) >= 1", name="holder"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    permit_no: Mapped[str] = mapped_column(String(40), unique=True, comment="许可证号")
    kind: Mapped[str] = mapped_column(String(4), comment="许可类型")
    site_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_sites.id", ondelete="CASCADE"), index=True
    )
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_companies.id", ondelete="CASCADE"), index=True
    )
    vehicle_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_vehicles.id", ondelete="CASCADE"), index=True
    )
    valid_from: Mapped[date] = mapped_column(Date, comment="有效期起")
    valid_to: Mapped[date] = mapped_column(Date, comment="有效期止")
    issued_by: Mapped[str | None] = mapped_column(String(60), comment="发证机关")
    note: Mapped[str | None] = mapped_column(String(200))


class FleetRoute(Base):
    """An approved route (核准路线, the "一线") with its corridor width."""

    __tablename__ = "fleet_routes"
    __table_args__ = (CheckConstraint("corridor_m > 0", name="corridor"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(30), unique=True, comment="路线编号")
    name: Mapped[str] = mapped_column(String(100), comment="路线名称")
    corridor_m: Mapped[float] = mapped_column(Float, server_default="100", comment="走廊宽度(米)")
    geom: Mapped[object] = geom("MULTILINESTRING")


class FleetBinding(Base):
    """An approved binding 工地 ↔ 企业 ↔ 车辆 ↔ 消纳场 ↔ 路线 ("两点一线") with validity."""

    __tablename__ = "fleet_bindings"
    __table_args__ = (
        CheckConstraint("valid_to >= valid_from", name="period"),
        UniqueConstraint(
            "site_id", "vehicle_id", "disposal_site_id", "valid_from", name="uq_fleet_bindings_key"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(
        ForeignKey("fleet_sites.id", ondelete="CASCADE"), index=True, comment="工地"
    )
    company_id: Mapped[int] = mapped_column(
        ForeignKey("fleet_companies.id", ondelete="CASCADE"), index=True, comment="运输企业"
    )
    vehicle_id: Mapped[int] = mapped_column(
        ForeignKey("fleet_vehicles.id", ondelete="CASCADE"), index=True, comment="车辆"
    )
    disposal_site_id: Mapped[int] = mapped_column(
        ForeignKey("fleet_sites.id", ondelete="CASCADE"), index=True, comment="消纳场"
    )
    route_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_routes.id", ondelete="SET NULL"), index=True, comment="核准路线"
    )
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(200))


class TelemetryFix(Base):
    """One position fix (定位点) in CGCS2000, partitioned by device time."""

    __tablename__ = "telemetry_fixes"
    __table_args__ = (
        Index("idx_telemetry_fixes_geom", "geom", postgresql_using="gist"),
        {"postgresql_partition_by": "RANGE (device_time)"},
    )

    vehicle_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    received_at: Mapped[datetime] = _now()
    terminal_id: Mapped[str] = mapped_column(String(32))
    speed_kmh: Mapped[float | None] = mapped_column(REAL, comment="速度")
    heading: Mapped[int | None] = mapped_column(SmallInteger, comment="方向 0-359")
    sealed: Mapped[bool | None] = mapped_column(Boolean, comment="密闭/顶盖状态")
    load_kg: Mapped[float | None] = mapped_column(REAL, comment="载重")
    src_crs: Mapped[str] = mapped_column(String(8), server_default="wgs84", comment="上报坐标系")
    geom: Mapped[object] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=False), nullable=False
    )


class FixQuarantine(Base):
    """A rejected fix or payload, kept with the reason (隔离区)."""

    __tablename__ = "fix_quarantine"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    source: Mapped[str] = mapped_column(String(8), comment="http/mqtt")
    terminal_id: Mapped[str | None] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(30), index=True)
    detail: Mapped[str | None] = mapped_column(String(300))
    payload: Mapped[str | None] = mapped_column(Text, comment="raw payload (truncated)")


class VehicleLatest(Base):
    """The latest position per vehicle (最新位置), only ever moved forward in device time."""

    __tablename__ = "vehicle_latest"

    vehicle_id: Mapped[int] = mapped_column(
        ForeignKey("fleet_vehicles.id", ondelete="CASCADE"), primary_key=True
    )
    plate: Mapped[str] = mapped_column(String(16), comment="车牌号")
    vehicle_kind: Mapped[str] = mapped_column(String(4), comment="车辆类型")
    company_id: Mapped[int | None] = mapped_column(Integer, index=True)
    terminal_id: Mapped[str] = mapped_column(String(32))
    device_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    received_at: Mapped[datetime] = _now()
    speed_kmh: Mapped[float | None] = mapped_column(REAL)
    heading: Mapped[int | None] = mapped_column(SmallInteger)
    sealed: Mapped[bool | None] = mapped_column(Boolean)
    load_kg: Mapped[float | None] = mapped_column(REAL)
    h3: Mapped[int | None] = h3_cell()
    geom: Mapped[object] = geom("POINT")


class GateEvent(Base):
    """A plate-recognition or weighbridge event at a site gate (进出场/地磅)."""

    __tablename__ = "gate_events"
    __table_args__ = (
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        CheckConstraint("source IN ('plate', 'weighbridge')", name="source"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(
        ForeignKey("fleet_sites.id", ondelete="CASCADE"), index=True
    )
    plate: Mapped[str] = mapped_column(String(16), index=True, comment="识别车牌")
    direction: Mapped[str] = mapped_column(String(3), comment="in/out")
    source: Mapped[str] = mapped_column(String(12), comment="plate/weighbridge")
    weight_kg: Mapped[float | None] = mapped_column(Float, comment="地磅重量")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    received_at: Mapped[datetime] = _now()
    vehicle_id: Mapped[int | None] = mapped_column(
        ForeignKey("fleet_vehicles.id", ondelete="SET NULL"),
        index=True,
        comment="NULL = unregistered (黑车 candidate)",
    )
    whitelisted: Mapped[bool] = mapped_column(Boolean, comment="在白名单内")
