"""case rules: working-time SQL functions, calendar, default stage limits, similar-case index

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 15:45:00
"""

from collections.abc import Sequence

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Placeholder: filled by its issue's work."""


def downgrade() -> None:
    """Placeholder: filled by its issue's work."""
