"""deferred layer-version bumps on the busiest layer tables (cases, vehicle positions, alarms)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 17:15:00

The statement-level trigger of 0003 bumps ``city.layer_versions`` when a statement runs, so the
transaction holds that row's lock until it commits: every transaction writing ``cases`` waited
for the one before it (a case transition runs ~8 statements after its first UPDATE). Here the
bump becomes a deferred row trigger: it runs at commit, once per table and transaction (the
same ``cityops.layer_bumped_*`` flag), and the lock is held only for the commit itself.
TRUNCATE keeps a statement trigger (constraint triggers cannot fire on it).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUSY_TABLES = ("cases", "vehicle_latest", "alarms")


def upgrade() -> None:
    for table in BUSY_TABLES:
        op.execute(f"DROP TRIGGER layer_version_bump ON city.{table}")
        op.execute(
            f"CREATE TRIGGER layer_version_bump_truncate AFTER TRUNCATE ON city.{table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION city.bump_layer_version()"
        )
        op.execute(
            f"CREATE CONSTRAINT TRIGGER layer_version_bump AFTER INSERT OR UPDATE OR DELETE "
            f"ON city.{table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
            "EXECUTE FUNCTION city.bump_layer_version()"
        )


def downgrade() -> None:
    for table in BUSY_TABLES:
        op.execute(f"DROP TRIGGER layer_version_bump ON city.{table}")
        op.execute(f"DROP TRIGGER layer_version_bump_truncate ON city.{table}")
        op.execute(
            f"CREATE TRIGGER layer_version_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON city.{table} FOR EACH STATEMENT EXECUTE FUNCTION city.bump_layer_version()"
        )
