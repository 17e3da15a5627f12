"""geofences, alarms and manifests

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 15:45:00

The geofence engine's tables (围栏, per-vehicle fence state, the vehicle monitor state), alarms
(报警, an OGC layer; a statement trigger NOTIFYs ``city_alarms`` when alarms are added)
and electronic manifests (电子联单). A trigger keeps each fence's hysteresis geometries
``inner_m``/``outer_m`` (EPSG:4528 metres) in step with ``geom``.
"""

from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LAYER_TABLES = ("geofences", "alarms")

FENCE_GEOMETRY = """
CREATE FUNCTION city.geofence_metric() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    g geometry := ST_Transform(NEW.geom, 4528);
    h double precision := greatest(NEW.hysteresis_m, 0);
    shrunk geometry;
BEGIN
    shrunk := CASE WHEN h > 0 THEN ST_Buffer(g, -h) ELSE g END;
    -- a fence too thin for its hysteresis (a road strip) keeps its own outline inside
    NEW.inner_m := CASE WHEN ST_IsEmpty(shrunk) OR ST_Area(shrunk) < 0.25 * ST_Area(g)
                        THEN g ELSE shrunk END;
    NEW.outer_m := CASE WHEN h > 0 THEN ST_Buffer(g, h) ELSE g END;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER geofence_metric BEFORE INSERT OR UPDATE OF geom, hysteresis_m ON city.geofences
    FOR EACH ROW EXECUTE FUNCTION city.geofence_metric();
"""

ALARM_NOTIFY = """
CREATE FUNCTION city.alarm_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('city_alarms', 'new');
    RETURN NULL;
END $$;
CREATE TRIGGER alarm_notify AFTER INSERT ON city.alarms
    FOR EACH STATEMENT EXECUTE FUNCTION city.alarm_notify();
"""


def upgrade() -> None:
    op.create_table(
        "vehicle_watch",
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("last_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_lon", sa.Double(), nullable=False),
        sa.Column("last_lat", sa.Double(), nullable=False),
        sa.Column(
            "state",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="trip/stop/speeding trackers",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["city.fleet_vehicles.id"],
            name=op.f("fk_vehicle_watch_vehicle_id_fleet_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_vehicle_watch")),
        schema="city",
    )
    op.create_table(
        "geofences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False, comment="围栏名称"),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="围栏类型"),
        sa.Column(
            "rule", sa.String(length=12), server_default="none", nullable=False, comment="报警规则"
        ),
        sa.Column("inside_max_minutes", sa.Integer(), nullable=True, comment="最长停留(分钟)"),
        sa.Column("speed_limit_kmh", sa.Double(), nullable=True, comment="区域限速"),
        sa.Column("radius_m", sa.Double(), nullable=True, comment="圆形半径(米)"),
        sa.Column("width_m", sa.Double(), nullable=True, comment="走廊/道路宽度(米)"),
        sa.Column(
            "hysteresis_m", sa.Double(), server_default="15", nullable=False, comment="回差(米)"
        ),
        sa.Column(
            "dwell_s", sa.Integer(), server_default="0", nullable=False, comment="确认时长(秒)"
        ),
        sa.Column(
            "schedule",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="生效时段 (Asia/Shanghai)",
        ),
        sa.Column(
            "applicability",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="适用车辆",
        ),
        sa.Column("site_id", sa.Integer(), nullable=True, comment="场地围栏"),
        sa.Column(
            "site_kind", sa.String(length=4), nullable=True, comment="工地/消纳场/中转场/停车场"
        ),
        sa.Column("route_id", sa.Integer(), nullable=True, comment="核准路线走廊"),
        sa.Column(
            "active", sa.Boolean(), server_default=sa.text("true"), nullable=False, comment="启用"
        ),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "line",
            geoalchemy2.types.Geometry(
                geometry_type="MULTILINESTRING",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
            comment="走廊/道路中线",
        ),
        sa.Column(
            "inner_m",
            geoalchemy2.types.Geometry(
                srid=4528,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
            comment="内缩 (进入判定)",
        ),
        sa.Column(
            "outer_m",
            geoalchemy2.types.Geometry(
                srid=4528,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
            comment="外扩 (离开判定)",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('polygon', 'circle', 'corridor', 'forbidden_road', 'forbidden_zone', 'site')",
            name=op.f("ck_geofences_kind"),
        ),
        sa.CheckConstraint(
            "rule <> 'inside_max' OR inside_max_minutes > 0",
            name=op.f("ck_geofences_inside_max_minutes"),
        ),
        sa.CheckConstraint(
            "rule IN ('none', 'enter', 'exit', 'inside_max', 'outside')",
            name=op.f("ck_geofences_rule"),
        ),
        sa.CheckConstraint(
            "hysteresis_m >= 0 AND dwell_s >= 0", name=op.f("ck_geofences_tolerances")
        ),
        sa.ForeignKeyConstraint(
            ["route_id"],
            ["city.fleet_routes.id"],
            name=op.f("fk_geofences_route_id_fleet_routes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["city.fleet_sites.id"],
            name=op.f("fk_geofences_site_id_fleet_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_geofences")),
        sa.UniqueConstraint("route_id", name=op.f("uq_geofences_route_id")),
        sa.UniqueConstraint("site_id", name=op.f("uq_geofences_site_id")),
        schema="city",
    )
    op.create_index(
        "idx_geofences_geom",
        "geofences",
        ["geom"],
        unique=False,
        schema="city",
        postgresql_using="gist",
    )
    op.create_index(op.f("ix_geofences_kind"), "geofences", ["kind"], unique=False, schema="city")
    op.create_index(
        "ix_geofences_outer_m",
        "geofences",
        ["outer_m"],
        unique=False,
        schema="city",
        postgresql_using="gist",
    )
    op.create_table(
        "geofence_state",
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("fence_id", sa.Integer(), nullable=False),
        sa.Column("inside", sa.Boolean(), nullable=False),
        sa.Column(
            "since", sa.DateTime(timezone=True), nullable=True, comment="inside/outside since"
        ),
        sa.Column(
            "pending_since",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="transition awaiting its dwell time",
        ),
        sa.Column("last_fix_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "alarmed", sa.Boolean(), server_default="false", nullable=False, comment="报警中"
        ),
        sa.ForeignKeyConstraint(
            ["fence_id"],
            ["city.geofences.id"],
            name=op.f("fk_geofence_state_fence_id_geofences"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["city.fleet_vehicles.id"],
            name=op.f("fk_geofence_state_vehicle_id_fleet_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vehicle_id", "fence_id", name=op.f("pk_geofence_state")),
        schema="city",
    )
    op.create_index(
        op.f("ix_geofence_state_fence_id"),
        "geofence_state",
        ["fence_id"],
        unique=False,
        schema="city",
    )
    op.create_table(
        "manifests",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=False, comment="工地"),
        sa.Column("disposal_site_id", sa.Integer(), nullable=True, comment="消纳场"),
        sa.Column("binding_id", sa.Integer(), nullable=True, comment="核准关系"),
        sa.Column("route_id", sa.Integer(), nullable=True, comment="核准路线"),
        sa.Column("exit_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exit_weight_kg", sa.Double(), nullable=True, comment="出场地磅"),
        sa.Column("entry_at", sa.DateTime(timezone=True), nullable=True, comment="进场时间"),
        sa.Column("entry_weight_kg", sa.Double(), nullable=True, comment="进场地磅"),
        sa.Column("weight_diff_kg", sa.Double(), nullable=True, comment="对账差额"),
        sa.Column("state", sa.String(length=12), server_default="open", nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True, comment="异常原因"),
        sa.Column(
            "off_route", sa.Boolean(), server_default="false", nullable=False, comment="偏离路线"
        ),
        sa.Column(
            "alarms", sa.SmallInteger(), server_default="0", nullable=False, comment="途中报警数"
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "state IN ('open', 'complete', 'broken', 'unapproved')", name=op.f("ck_manifests_state")
        ),
        sa.ForeignKeyConstraint(
            ["binding_id"],
            ["city.fleet_bindings.id"],
            name=op.f("fk_manifests_binding_id_fleet_bindings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["city.fleet_companies.id"],
            name=op.f("fk_manifests_company_id_fleet_companies"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["disposal_site_id"],
            ["city.fleet_sites.id"],
            name=op.f("fk_manifests_disposal_site_id_fleet_sites"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["route_id"],
            ["city.fleet_routes.id"],
            name=op.f("fk_manifests_route_id_fleet_routes"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["city.fleet_sites.id"],
            name=op.f("fk_manifests_site_id_fleet_sites"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["city.fleet_vehicles.id"],
            name=op.f("fk_manifests_vehicle_id_fleet_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manifests")),
        schema="city",
    )
    op.create_index(
        op.f("ix_manifests_company_id"), "manifests", ["company_id"], unique=False, schema="city"
    )
    op.create_index(
        op.f("ix_manifests_disposal_site_id"),
        "manifests",
        ["disposal_site_id"],
        unique=False,
        schema="city",
    )
    op.create_index(
        op.f("ix_manifests_exit_at"), "manifests", ["exit_at"], unique=False, schema="city"
    )
    op.create_index(
        op.f("ix_manifests_site_id"), "manifests", ["site_id"], unique=False, schema="city"
    )
    op.create_index(op.f("ix_manifests_state"), "manifests", ["state"], unique=False, schema="city")
    op.create_index(
        op.f("ix_manifests_vehicle_id"), "manifests", ["vehicle_id"], unique=False, schema="city"
    )
    op.create_table(
        "alarms",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False, comment="报警类型"),
        sa.Column("title", sa.String(length=100), nullable=False, comment="报警说明"),
        sa.Column("vehicle_id", sa.Integer(), nullable=True),
        sa.Column("plate", sa.String(length=16), nullable=True, comment="车牌号"),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("fence_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "ended_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="NULL while the condition lasts",
        ),
        sa.Column("state", sa.String(length=12), server_default="open", nullable=False),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="证据与参数",
        ),
        sa.Column("dedupe_key", sa.String(length=120), nullable=True, comment="coalescing key"),
        sa.Column(
            "occurrences", sa.Integer(), server_default="1", nullable=False, comment="合并次数"
        ),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="receipt of the triggering fix",
        ),
        sa.Column(
            "detected_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.BigInteger(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True, comment="处理说明"),
        sa.Column("case_id", sa.BigInteger(), nullable=True, comment="转案卷"),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("h3", sa.BigInteger(), nullable=True, comment="H3 cell, resolution 9"),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('fence_enter', 'fence_exit', 'inside_too_long', 'off_corridor', 'forbidden_road', 'forbidden_zone', 'speeding', 'dumping', 'unsealed', 'unregistered', 'unpermitted', 'unapproved_disposal', 'offline')",
            name=op.f("ck_alarms_kind"),
        ),
        sa.CheckConstraint(
            "state IN ('open', 'acknowledged', 'closed', 'cased')", name=op.f("ck_alarms_state")
        ),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"],
            ["city.users.id"],
            name=op.f("fk_alarms_acknowledged_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["city.cases.id"],
            name=op.f("fk_alarms_case_id_cases"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["closed_by"],
            ["city.users.id"],
            name=op.f("fk_alarms_closed_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["city.fleet_companies.id"],
            name=op.f("fk_alarms_company_id_fleet_companies"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["fence_id"],
            ["city.geofences.id"],
            name=op.f("fk_alarms_fence_id_geofences"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["city.fleet_sites.id"],
            name=op.f("fk_alarms_site_id_fleet_sites"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["city.fleet_vehicles.id"],
            name=op.f("fk_alarms_vehicle_id_fleet_vehicles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
        schema="city",
    )
    op.create_index(
        "idx_alarms_geom", "alarms", ["geom"], unique=False, schema="city", postgresql_using="gist"
    )
    op.create_index(op.f("ix_alarms_case_id"), "alarms", ["case_id"], unique=False, schema="city")
    op.create_index(
        op.f("ix_alarms_company_id"), "alarms", ["company_id"], unique=False, schema="city"
    )
    op.create_index(op.f("ix_alarms_fence_id"), "alarms", ["fence_id"], unique=False, schema="city")
    op.create_index(op.f("ix_alarms_h3"), "alarms", ["h3"], unique=False, schema="city")
    op.create_index(op.f("ix_alarms_kind"), "alarms", ["kind"], unique=False, schema="city")
    op.create_index(op.f("ix_alarms_plate"), "alarms", ["plate"], unique=False, schema="city")
    op.create_index(op.f("ix_alarms_site_id"), "alarms", ["site_id"], unique=False, schema="city")
    op.create_index(
        op.f("ix_alarms_started_at"), "alarms", ["started_at"], unique=False, schema="city"
    )
    op.create_index(op.f("ix_alarms_state"), "alarms", ["state"], unique=False, schema="city")
    op.create_index(
        op.f("ix_alarms_vehicle_id"), "alarms", ["vehicle_id"], unique=False, schema="city"
    )
    op.create_index("ix_alarms_dedupe_key", "alarms", ["dedupe_key"], unique=False, schema="city")
    op.create_index(
        "uq_alarms_active_dedupe_key",
        "alarms",
        ["dedupe_key"],
        unique=True,
        schema="city",
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    # ### end Alembic commands ###
    op.execute(FENCE_GEOMETRY)
    op.execute(ALARM_NOTIFY)
    for table in LAYER_TABLES:
        op.execute(f"SELECT city.track_layer_versions('city.{table}')")


def downgrade() -> None:
    for table in LAYER_TABLES:
        op.execute(f"DELETE FROM city.layer_versions WHERE layer = '{table}'")
    for table in ("alarms", "manifests", "geofence_state", "geofences", "vehicle_watch"):
        op.drop_table(table, schema="city")
    op.execute("DROP FUNCTION city.alarm_notify()")
    op.execute("DROP FUNCTION city.geofence_metric()")
