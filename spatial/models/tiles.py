"""Change versions of the layer tables, the key of the vector tile cache."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from spatial.models.base import Base


class LayerVersion(Base):
    """One row per change-tracked layer table, bumped by a statement trigger (migration 0003)."""

    __tablename__ = "layer_versions"

    layer: Mapped[str] = mapped_column(Text, primary_key=True, comment="layer table in schema city")
    version: Mapped[int] = mapped_column(
        BigInteger, comment="grows on every committed change (microseconds since 1970 or +1)"
    )
    changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="last change"
    )
