"""geocoder: pg_trgm and trigram indexes on address and POI names

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRGM_INDEXES = (
    ("ix_addresses_standard_address_trgm", "addresses", "standard_address"),
    ("ix_pois_name_trgm", "pois", "name"),
)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
    for name, table, column in TRGM_INDEXES:
        op.create_index(
            name,
            table,
            [column],
            schema="city",
            postgresql_using="gist",
            postgresql_ops={column: "gist_trgm_ops"},
        )


def downgrade() -> None:
    for name, table, _column in TRGM_INDEXES:
        op.drop_index(name, table_name=table, schema="city")
    # pg_trgm stays installed: other databases objects may use it, and it holds no data.
