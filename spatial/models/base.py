"""Declarative base: every table lives in the ``city`` schema, geometries in EPSG:4490."""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, Date, DateTime, MetaData, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "city"
SRID = 4490

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of all ORM models."""

    metadata = MetaData(schema=SCHEMA, naming_convention=NAMING)


def geom(kind: str) -> Mapped[object]:
    """A non-null CGCS2000 geometry column with a GiST index."""
    return mapped_column(Geometry(kind, srid=SRID, spatial_index=True), nullable=False)


def h3_cell() -> Mapped[int | None]:
    """The H3 resolution-9 cell of a point, as a signed bigint (indexed)."""
    return mapped_column(BigInteger, index=True, comment="H3 cell, resolution 9")


def digits(length: int, **kwargs: object) -> Mapped[str]:
    """A fixed-length numeric code column."""
    return mapped_column(String(length), **kwargs)  # type: ignore[arg-type]


class AreaAttributes:
    """GB/T 30428.3 area attributes: alias, former name, source, dates, note."""

    alias: Mapped[str | None] = mapped_column(String(100), comment="别名")
    old_name: Mapped[str | None] = mapped_column(String(100), comment="曾用名")
    data_source: Mapped[str] = mapped_column(String(30), default="基础地理数据", comment="数据来源")
    initial_date: Mapped[date] = mapped_column(
        Date, server_default=func.current_date(), comment="初始日期"
    )
    change_date: Mapped[date | None] = mapped_column(Date, comment="变更日期")
    note: Mapped[str | None] = mapped_column(String(100), comment="备注")


class Timestamps:
    """Creation and change timestamps."""

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
