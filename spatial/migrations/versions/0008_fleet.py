"""fleet registry and telemetry

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 15:45:00

Registry of the muck-truck chain (渣土全链条: 工地, 消纳场, 中转场, 停车场, companies, vehicles,
drivers, terminals, permits, approved routes and bindings), the telemetry fixes partitioned by
device time (one partition per Asia/Shanghai day in schema ``city_fixes``, created on demand by
``city.ensure_fix_partition(day)``; a default partition catches strays and gives its rows up
when their day's partition is created), the quarantine, the latest position per vehicle and the
gate events (plate recognition, weighbridge). ``city.fleet_whitelist(day)`` derives the site
white lists from bindings and valid permits.
"""

from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTITION_SCHEMA = "city_fixes"
LAYER_TABLES = ("fleet_sites", "fleet_routes", "vehicle_latest")
TABLES = (
    "gate_events",
    "fleet_permits",
    "fleet_bindings",
    "vehicle_latest",
    "fleet_terminals",
    "fleet_drivers",
    "fleet_sites",
    "fleet_routes",
    "fleet_vehicles",
    "fleet_companies",
    "telemetry_fixes",
    "fix_quarantine",
)

# Partitions are named telemetry_fixes_YYYYMMDD in schema city_fixes (kept out of ``city`` so
# the schema check only sees the parent). Concurrent creators serialise on an advisory lock;
# stray rows of that day are moved out of the default partition before ATTACH, and a
# temporary CHECK constraint lets ATTACH skip its validation scan.
ENSURE_PARTITION = """
CREATE FUNCTION city.ensure_fix_partition(day date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    part text := 'telemetry_fixes_' || to_char(day, 'YYYYMMDD');
    lo timestamptz := day::timestamp AT TIME ZONE 'Asia/Shanghai';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'Asia/Shanghai';
    range_sql text;
BEGIN
    IF to_regclass('city_fixes.' || part) IS NOT NULL THEN
        RETURN part;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('city.ensure_fix_partition'));
    IF to_regclass('city_fixes.' || part) IS NOT NULL THEN
        RETURN part;
    END IF;
    range_sql := format('device_time >= %L AND device_time < %L', lo, hi);
    EXECUTE format(
        'CREATE TABLE city_fixes.%I (LIKE city.telemetry_fixes INCLUDING DEFAULTS)', part);
    EXECUTE format('ALTER TABLE city_fixes.%I ADD CONSTRAINT in_range CHECK (%s)',
        part, range_sql);
    EXECUTE format('INSERT INTO city_fixes.%I SELECT * FROM city_fixes.telemetry_fixes_default'
        ' WHERE %s', part, range_sql);
    EXECUTE format('DELETE FROM city_fixes.telemetry_fixes_default WHERE %s', range_sql);
    EXECUTE format('ALTER TABLE city.telemetry_fixes ATTACH PARTITION city_fixes.%I'
        ' FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    EXECUTE format('ALTER TABLE city_fixes.%I DROP CONSTRAINT in_range', part);
    RETURN part;
END
$$
"""

# White list (白名单) of a day: a binding in force whose vehicle holds a valid 运输许可 (准运证)
# and whose company a valid company-level 运输许可, whose site holds a valid 出土许可 and whose
# disposal site a valid 处置许可.
# role 'load' = may load at site_id (工地/中转场), 'unload' = may unload there (消纳场).
WHITELIST = """
CREATE FUNCTION city.fleet_whitelist(on_day date DEFAULT current_date)
RETURNS TABLE (site_id integer, role text, vehicle_id integer, plate varchar,
               company_id integer, binding_id integer, route_id integer, valid_to date)
LANGUAGE sql STABLE AS $$
    WITH permitted AS (
        SELECT b.id, b.site_id, b.disposal_site_id, b.vehicle_id, b.company_id, b.route_id,
               b.valid_to, v.plate
        FROM city.fleet_bindings b
        JOIN city.fleet_vehicles v ON v.id = b.vehicle_id AND v.active
        WHERE on_day BETWEEN b.valid_from AND b.valid_to
          AND EXISTS (SELECT 1 FROM city.fleet_permits p
                      WHERE p.kind = '运输许可' AND on_day BETWEEN p.valid_from AND p.valid_to
                        AND p.vehicle_id = b.vehicle_id)
          AND EXISTS (SELECT 1 FROM city.fleet_permits p
                      WHERE p.kind = '运输许可' AND on_day BETWEEN p.valid_from AND p.valid_to
                        AND p.vehicle_id IS NULL AND p.company_id = b.company_id)
          AND EXISTS (SELECT 1 FROM city.fleet_permits p
                      WHERE p.kind = '出土许可' AND p.site_id = b.site_id
                        AND on_day BETWEEN p.valid_from AND p.valid_to)
          AND EXISTS (SELECT 1 FROM city.fleet_permits p
                      WHERE p.kind = '处置许可' AND p.site_id = b.disposal_site_id
                        AND on_day BETWEEN p.valid_from AND p.valid_to)
    )
    SELECT w.site_id, 'load', w.vehicle_id, w.plate, w.company_id, w.id, w.route_id, w.valid_to
    FROM permitted w
    UNION ALL
    SELECT w.disposal_site_id, 'unload', w.vehicle_id, w.plate, w.company_id, w.id, w.route_id,
           w.valid_to
    FROM permitted w
$$
"""


def upgrade() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {PARTITION_SCHEMA}")
    op.create_table(
        "fix_quarantine",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("source", sa.String(length=8), nullable=False, comment="http/mqtt"),
        sa.Column("terminal_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True, comment="raw payload (truncated)"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fix_quarantine")),
        schema="city",
    )
    op.create_index(
        op.f("ix_fix_quarantine_reason"), "fix_quarantine", ["reason"], unique=False, schema="city"
    )
    op.create_index(
        op.f("ix_fix_quarantine_received_at"),
        "fix_quarantine",
        ["received_at"],
        unique=False,
        schema="city",
    )
    op.create_index(
        op.f("ix_fix_quarantine_terminal_id"),
        "fix_quarantine",
        ["terminal_id"],
        unique=False,
        schema="city",
    )
    op.create_table(
        "fleet_companies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=30), nullable=False, comment="企业编号"),
        sa.Column("name", sa.String(length=100), nullable=False, comment="企业名称"),
        sa.Column("credit_code", sa.String(length=18), nullable=True, comment="统一社会信用代码"),
        sa.Column(
            "kind",
            sa.String(length=10),
            server_default="运输企业",
            nullable=False,
            comment="企业类型",
        ),
        sa.Column("contact", sa.String(length=30), nullable=True, comment="联系人"),
        sa.Column("phone", sa.String(length=30), nullable=True, comment="联系电话"),
        sa.Column("address", sa.String(length=200), nullable=True, comment="地址"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_companies")),
        sa.UniqueConstraint("code", name=op.f("uq_fleet_companies_code")),
        sa.UniqueConstraint("name", name=op.f("uq_fleet_companies_name")),
        schema="city",
    )
    op.create_table(
        "fleet_routes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=30), nullable=False, comment="路线编号"),
        sa.Column("name", sa.String(length=100), nullable=False, comment="路线名称"),
        sa.Column(
            "corridor_m", sa.Float(), server_default="100", nullable=False, comment="走廊宽度(米)"
        ),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                spatial_index=False,
                geometry_type="MULTILINESTRING",
                srid=4490,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint("corridor_m > 0", name=op.f("ck_fleet_routes_corridor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_routes")),
        sa.UniqueConstraint("code", name=op.f("uq_fleet_routes_code")),
        schema="city",
    )
    op.create_index(
        "idx_fleet_routes_geom",
        "fleet_routes",
        ["geom"],
        unique=False,
        schema="city",
        postgresql_using="gist",
    )
    op.create_table(
        "telemetry_fixes",
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("device_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("terminal_id", sa.String(length=32), nullable=False),
        sa.Column("speed_kmh", sa.REAL(), nullable=True, comment="速度"),
        sa.Column("heading", sa.SmallInteger(), nullable=True, comment="方向 0-359"),
        sa.Column("sealed", sa.Boolean(), nullable=True, comment="密闭/顶盖状态"),
        sa.Column("load_kg", sa.REAL(), nullable=True, comment="载重"),
        sa.Column(
            "src_crs",
            sa.String(length=8),
            server_default="wgs84",
            nullable=False,
            comment="上报坐标系",
        ),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                spatial_index=False,
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("vehicle_id", "device_time", name=op.f("pk_telemetry_fixes")),
        schema="city",
        postgresql_partition_by="RANGE (device_time)",
    )
    op.create_index(
        "idx_telemetry_fixes_geom",
        "telemetry_fixes",
        ["geom"],
        unique=False,
        schema="city",
        postgresql_using="gist",
    )
    op.create_table(
        "fleet_vehicles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plate", sa.String(length=16), nullable=False, comment="车牌号"),
        sa.Column("kind", sa.String(length=4), nullable=False, comment="车辆类型"),
        sa.Column("company_id", sa.Integer(), nullable=True, comment="所属企业"),
        sa.Column(
            "sealed_capable",
            sa.Boolean(),
            server_default="false",
            nullable=False,
            comment="具备密闭/顶盖传感器",
        ),
        sa.Column(
            "speed_limit_kmh",
            sa.SmallInteger(),
            server_default="60",
            nullable=False,
            comment="速度等级 (限速 km/h)",
        ),
        sa.Column("load_capacity_kg", sa.Float(), nullable=True, comment="核定载质量"),
        sa.Column(
            "active", sa.Boolean(), server_default=sa.text("true"), nullable=False, comment="在用"
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('渣土车', '垃圾车', '环卫车', '其他')", name=op.f("ck_fleet_vehicles_kind")
        ),
        sa.CheckConstraint(
            "speed_limit_kmh BETWEEN 5 AND 150", name=op.f("ck_fleet_vehicles_speed_limit")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["city.fleet_companies.id"],
            name=op.f("fk_fleet_vehicles_company_id_fleet_companies"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_vehicles")),
        sa.UniqueConstraint("plate", name=op.f("uq_fleet_vehicles_plate")),
        schema="city",
    )
    op.create_index(
        op.f("ix_fleet_vehicles_company_id"),
        "fleet_vehicles",
        ["company_id"],
        unique=False,
        schema="city",
    )
    op.create_index(
        op.f("ix_fleet_vehicles_kind"), "fleet_vehicles", ["kind"], unique=False, schema="city"
    )
    op.create_table(
        "fleet_drivers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=30), nullable=False, comment="姓名"),
        sa.Column("license_no", sa.String(length=30), nullable=False, comment="驾驶证号"),
        sa.Column("phone", sa.String(length=30), nullable=True, comment="联系电话"),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("vehicle_id", sa.Integer(), nullable=True, comment="常驾车辆"),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["city.fleet_companies.id"],
            name=op.f("fk_fleet_drivers_company_id_fleet_companies"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["city.fleet_vehicles.id"],
            name=op.f("fk_fleet_drivers_vehicle_id_fleet_vehicles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_drivers")),
        sa.UniqueConstraint("license_no", name=op.f("uq_fleet_drivers_license_no")),
        schema="city",
    )
    op.create_index(
        op.f("ix_fleet_drivers_company_id"),
        "fleet_drivers",
        ["company_id"],
        unique=False,
        schema="city",
    )
    op.create_index(
        op.f("ix_fleet_drivers_vehicle_id"),
        "fleet_drivers",
        ["vehicle_id"],
        unique=False,
        schema="city",
    )
    op.create_table(
        "fleet_sites",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=30), nullable=False, comment="场地编号"),
        sa.Column("name", sa.String(length=100), nullable=False, comment="名称"),
        sa.Column("kind", sa.String(length=4), nullable=False, comment="工地/消纳场/中转场/停车场"),
        sa.Column("address", sa.String(length=200), nullable=True, comment="地址"),
        sa.Column("street_code", sa.String(length=9), nullable=True),
        sa.Column("company_id", sa.Integer(), nullable=True, comment="建设/运营单位"),
        sa.Column("contact", sa.String(length=30), nullable=True, comment="联系人"),
        sa.Column("phone", sa.String(length=30), nullable=True, comment="联系电话"),
        sa.Column(
            "active", sa.Boolean(), server_default=sa.text("true"), nullable=False, comment="在用"
        ),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                spatial_index=False,
                geometry_type="MULTIPOLYGON",
                srid=4490,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "gate",
            geoalchemy2.types.Geometry(
                spatial_index=False,
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
            comment="出入口",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('工地', '消纳场', '中转场', '停车场')", name=op.f("ck_fleet_sites_kind")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["city.fleet_companies.id"],
            name=op.f("fk_fleet_sites_company_id_fleet_companies"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["street_code"], ["city.streets.code"], name=op.f("fk_fleet_sites_street_code_streets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_sites")),
        sa.UniqueConstraint("code", name=op.f("uq_fleet_sites_code")),
        schema="city",
    )
    op.create_index(
        "idx_fleet_sites_geom",
        "fleet_sites",
        ["geom"],
        unique=False,
        schema="city",
        postgresql_using="gist",
    )
    op.create_index(
        op.f("ix_fleet_sites_company_id"),
        "fleet_sites",
        ["company_id"],
        unique=False,
        schema="city",
    )
    op.create_index(
        op.f("ix_fleet_sites_kind"), "fleet_sites", ["kind"], unique=False, schema="city"
    )
    op.create_index(
        op.f("ix_fleet_sites_street_code"),
        "fleet_sites",
        ["street_code"],
        unique=False,
        schema="city",
    )
    op.create_table(
        "fleet_terminals",
        sa.Column("terminal_id", sa.String(length=32), nullable=False, comment="终端号/IMEI"),
        sa.Column("vehicle_id", sa.Integer(), nullable=True, comment="安装车辆"),
        sa.Column("sim", sa.String(length=20), nullable=True, comment="SIM 卡号"),
        sa.Column("model", sa.String(length=40), nullable=True, comment="型号"),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("installed_at", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["city.fleet_vehicles.id"],
            name=op.f("fk_fleet_terminals_vehicle_id_fleet_vehicles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("terminal_id", name=op.f("pk_fleet_terminals")),
        sa.UniqueConstraint("vehicle_id", name=op.f("uq_fleet_terminals_vehicle_id")),
        schema="city",
    )
    op.create_table(
        "vehicle_latest",
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("plate", sa.String(length=16), nullable=False, comment="车牌号"),
        sa.Column("vehicle_kind", sa.String(length=4), nullable=False, comment="车辆类型"),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("terminal_id", sa.String(length=32), nullable=False),
        sa.Column("device_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("speed_kmh", sa.REAL(), nullable=True),
        sa.Column("heading", sa.SmallInteger(), nullable=True),
        sa.Column("sealed", sa.Boolean(), nullable=True),
        sa.Column("load_kg", sa.REAL(), nullable=True),
        sa.Column("h3", sa.BigInteger(), nullable=True, comment="H3 cell, resolution 9"),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                spatial_index=False,
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["city.fleet_vehicles.id"],
            name=op.f("fk_vehicle_latest_vehicle_id_fleet_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_vehicle_latest")),
        schema="city",
    )
    op.create_index(
        "idx_vehicle_latest_geom",
        "vehicle_latest",
        ["geom"],
        unique=False,
        schema="city",
        postgresql_using="gist",
    )
    op.create_index(
        op.f("ix_vehicle_latest_company_id"),
        "vehicle_latest",
        ["company_id"],
        unique=False,
        schema="city",
    )
    op.create_index(
        op.f("ix_vehicle_latest_device_time"),
        "vehicle_latest",
        ["device_time"],
        unique=False,
        schema="city",
    )
    op.create_index(
        op.f("ix_vehicle_latest_h3"), "vehicle_latest", ["h3"], unique=False, schema="city"
    )
    op.create_table(
        "fleet_bindings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False, comment="工地"),
        sa.Column("company_id", sa.Integer(), nullable=False, comment="运输企业"),
        sa.Column("vehicle_id", sa.Integer(), nullable=False, comment="车辆"),
        sa.Column("disposal_site_id", sa.Integer(), nullable=False, comment="消纳场"),
        sa.Column("route_id", sa.Integer(), nullable=True, comment="核准路线"),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.CheckConstraint("valid_to >= valid_from", name=op.f("ck_fleet_bindings_period")),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["city.fleet_companies.id"],
            name=op.f("fk_fleet_bindings_company_id_fleet_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["disposal_site_id"],
            ["city.fleet_sites.id"],
            name=op.f("fk_fleet_bindings_disposal_site_id_fleet_sites"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["route_id"],
            ["city.fleet_routes.id"],
            name=op.f("fk_fleet_bindings_route_id_fleet_routes"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["city.fleet_sites.id"],
            name=op.f("fk_fleet_bindings_site_id_fleet_sites"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["city.fleet_vehicles.id"],
            name=op.f("fk_fleet_bindings_vehicle_id_fleet_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_bindings")),
        sa.UniqueConstraint(
            "site_id", "vehicle_id", "disposal_site_id", "valid_from", name="uq_fleet_bindings_key"
        ),
        schema="city",
    )
    op.create_index(
        op.f("ix_fleet_bindings_company_id"),
        "fleet_bindings",
        ["company_id"],
        unique=False,
        schema="city",
    )
    op.create_index(
        op.f("ix_fleet_bindings_disposal_site_id"),
        "fleet_bindings",
        ["disposal_site_id"],
        unique=False,
        schema="city",
    )
    op.create_index(
        op.f("ix_fleet_bindings_route_id"),
        "fleet_bindings",
        ["route_id"],
        unique=False,
        schema="city",
    )
    op.create_index(
        op.f("ix_fleet_bindings_site_id"),
        "fleet_bindings",
        ["site_id"],
        unique=False,
        schema="city",
    )
    op.create_index(
        op.f("ix_fleet_bindings_vehicle_id"),
        "fleet_bindings",
        ["vehicle_id"],
        unique=False,
        schema="city",
    )
    op.create_table(
        "fleet_permits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("permit_no", sa.String(length=40), nullable=False, comment="许可证号"),
        sa.Column("kind", sa.String(length=4), nullable=False, comment="许可类型"),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("vehicle_id", sa.Integer(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False, comment="有效期起"),
        sa.Column("valid_to", sa.Date(), nullable=False, comment="有效期止"),
        sa.Column("issued_by", sa.String(length=60), nullable=True, comment="发证机关"),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "kind IN ('出土许可', '运输许可', '处置许可')", name=op.f("ck_fleet_permits_kind")
        ),
        sa.CheckConstraint(
            "num_nonnulls(site_id, company_id, vehicle_id) >= 1",
            name=op.f("ck_fleet_permits_holder"),
        ),
        sa.CheckConstraint("valid_to >= valid_from", name=op.f("ck_fleet_permits_period")),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["city.fleet_companies.id"],
            name=op.f("fk_fleet_permits_company_id_fleet_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["city.fleet_sites.id"],
            name=op.f("fk_fleet_permits_site_id_fleet_sites"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["city.fleet_vehicles.id"],
            name=op.f("fk_fleet_permits_vehicle_id_fleet_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_permits")),
        sa.UniqueConstraint("permit_no", name=op.f("uq_fleet_permits_permit_no")),
        schema="city",
    )
    op.create_index(
        op.f("ix_fleet_permits_company_id"),
        "fleet_permits",
        ["company_id"],
        unique=False,
        schema="city",
    )
    op.create_index(
        op.f("ix_fleet_permits_site_id"), "fleet_permits", ["site_id"], unique=False, schema="city"
    )
    op.create_index(
        op.f("ix_fleet_permits_vehicle_id"),
        "fleet_permits",
        ["vehicle_id"],
        unique=False,
        schema="city",
    )
    op.create_table(
        "gate_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("plate", sa.String(length=16), nullable=False, comment="识别车牌"),
        sa.Column("direction", sa.String(length=3), nullable=False, comment="in/out"),
        sa.Column("source", sa.String(length=12), nullable=False, comment="plate/weighbridge"),
        sa.Column("weight_kg", sa.Float(), nullable=True, comment="地磅重量"),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "vehicle_id",
            sa.Integer(),
            nullable=True,
            comment="NULL = unregistered (黑车 candidate)",
        ),
        sa.Column("whitelisted", sa.Boolean(), nullable=False, comment="在白名单内"),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_gate_events_direction")),
        sa.CheckConstraint(
            "source IN ('plate', 'weighbridge')", name=op.f("ck_gate_events_source")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["city.fleet_sites.id"],
            name=op.f("fk_gate_events_site_id_fleet_sites"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["city.fleet_vehicles.id"],
            name=op.f("fk_gate_events_vehicle_id_fleet_vehicles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_events")),
        schema="city",
    )
    op.create_index(op.f("ix_gate_events_at"), "gate_events", ["at"], unique=False, schema="city")
    op.create_index(
        op.f("ix_gate_events_plate"), "gate_events", ["plate"], unique=False, schema="city"
    )
    op.create_index(
        op.f("ix_gate_events_site_id"), "gate_events", ["site_id"], unique=False, schema="city"
    )
    op.create_index(
        op.f("ix_gate_events_vehicle_id"),
        "gate_events",
        ["vehicle_id"],
        unique=False,
        schema="city",
    )

    op.execute(
        f"CREATE TABLE {PARTITION_SCHEMA}.telemetry_fixes_default "
        "PARTITION OF city.telemetry_fixes DEFAULT"
    )
    op.execute(ENSURE_PARTITION)
    op.execute(WHITELIST)
    for table in LAYER_TABLES:
        op.execute(f"SELECT city.track_layer_versions('city.{table}')")


def downgrade() -> None:
    op.execute("DROP FUNCTION city.fleet_whitelist(date)")
    op.execute("DROP FUNCTION city.ensure_fix_partition(date)")
    for table in TABLES:
        op.execute(f"DROP TABLE city.{table} CASCADE")
    op.execute(f"DROP SCHEMA {PARTITION_SCHEMA} CASCADE")
    names = ", ".join(f"'{t}'" for t in LAYER_TABLES)
    op.execute(f"DELETE FROM city.layer_versions WHERE layer IN ({names})")
