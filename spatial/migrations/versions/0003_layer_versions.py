"""layer versions: change counters of the layer tables for the vector tile cache

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 12:30:00

A statement-level trigger on every layer table bumps ``city.layer_versions`` once per
transaction (INSERT, UPDATE, DELETE, TRUNCATE — COPY fires the INSERT trigger) and notifies
``city_layer_versions`` with ``layer:version`` at commit. A layer added later is tracked with
``SELECT city.track_layer_versions('city.new_table')`` in its own migration.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LAYER_TABLES = (
    "districts",
    "streets",
    "communities",
    "unit_grids",
    "responsibility_grids",
    "evaluation_grids",
    "roads",
    "compounds",
    "buildings",
    "addresses",
    "pois",
    "parts",
    "cases",
)

# Versions are microseconds since 1970 (or the previous version + 1 when larger), so they never
# repeat even when a database is rebuilt; one bump per table and transaction is enough because
# readers see the new version and the changed rows together at commit.
BUMP_FUNCTION = """
CREATE FUNCTION city.bump_layer_version() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    flag text := 'cityops.layer_bumped_' || TG_TABLE_NAME;
    bumped bigint;
BEGIN
    IF current_setting(flag, true) = '1' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config(flag, '1', true);
    INSERT INTO city.layer_versions AS lv (layer, version, changed_at)
    VALUES (TG_TABLE_NAME, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, now())
    ON CONFLICT (layer) DO UPDATE
        SET version = greatest(lv.version + 1, EXCLUDED.version), changed_at = EXCLUDED.changed_at
    RETURNING version INTO bumped;
    PERFORM pg_notify('city_layer_versions', TG_TABLE_NAME || ':' || bumped);
    RETURN NULL;
END
$$
"""

TRACK_FUNCTION = """
CREATE FUNCTION city.track_layer_versions(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'CREATE TRIGGER layer_version_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s '
        'FOR EACH STATEMENT EXECUTE FUNCTION city.bump_layer_version()', tbl);
    INSERT INTO city.layer_versions (layer, version, changed_at)
    SELECT relname, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, now()
    FROM pg_class WHERE oid = tbl
    ON CONFLICT (layer) DO NOTHING;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "layer_versions",
        sa.Column("layer", sa.Text(), nullable=False, comment="layer table in schema city"),
        sa.Column(
            "version",
            sa.BigInteger(),
            nullable=False,
            comment="grows on every committed change (microseconds since 1970 or +1)",
        ),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="last change",
        ),
        sa.PrimaryKeyConstraint("layer", name=op.f("pk_layer_versions")),
        schema="city",
    )
    op.execute(BUMP_FUNCTION)
    op.execute(TRACK_FUNCTION)
    for table in LAYER_TABLES:
        op.execute(f"SELECT city.track_layer_versions('city.{table}')")


def downgrade() -> None:
    for table in LAYER_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS layer_version_bump ON city.{table}")
    op.execute("DROP FUNCTION city.track_layer_versions(regclass)")
    op.execute("DROP FUNCTION city.bump_layer_version()")
    op.drop_table("layer_versions", schema="city")
