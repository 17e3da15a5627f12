"""Grids: unit (单元网格, GB/T 30428.1), responsibility (责任网格) and evaluation (评价网格)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from spatial.models.base import AreaAttributes, Base, digits, geom


class UnitGrid(AreaAttributes, Base):
    """Unit grid: 15 digits = 6 county + 3 street + 3 community + 3 sequence."""

    __tablename__ = "unit_grids"
    __table_args__ = (CheckConstraint("code ~ '^[0-9]{15}$'", name="code_digits"),)

    code: Mapped[str] = digits(15, primary_key=True, comment="单元网格代码")
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code"), index=True)
    street_code: Mapped[str] = mapped_column(ForeignKey("streets.code"), index=True)
    responsibility_grid_code: Mapped[str | None] = mapped_column(
        ForeignKey("responsibility_grids.code"), index=True
    )
    evaluation_grid_code: Mapped[str | None] = mapped_column(
        ForeignKey("evaluation_grids.code"), index=True
    )
    area_m2: Mapped[float] = mapped_column(Float, comment="面积(平方米)")
    geom: Mapped[object] = geom("MULTIPOLYGON")


class ResponsibilityGrid(AreaAttributes, Base):
    """Responsibility grid: several unit grids of one community, one inspector (监督员)."""

    __tablename__ = "responsibility_grids"
    __table_args__ = (CheckConstraint("code ~ '^[0-9]{14}$'", name="code_digits"),)

    code: Mapped[str] = digits(14, primary_key=True, comment="12-digit community + 2 sequence")
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    inspector_code: Mapped[str] = mapped_column(String(20), unique=True, comment="监督员编号")
    inspector_name: Mapped[str] = mapped_column(String(20), comment="监督员")
    area_m2: Mapped[float] = mapped_column(Float)
    geom: Mapped[object] = geom("MULTIPOLYGON")


class EvaluationGrid(AreaAttributes, Base):
    """Evaluation grid: 12 digits = 6 county + 3 street + 3 sequence; about 1 km²."""

    __tablename__ = "evaluation_grids"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{12}$'", name="code_digits"),
        CheckConstraint("grid_type IN ('A', 'B', 'C')", name="grid_type"),
    )

    code: Mapped[str] = digits(12, primary_key=True, comment="评价网格编码")
    street_code: Mapped[str] = mapped_column(ForeignKey("streets.code"), index=True)
    grid_type: Mapped[str] = mapped_column(String(1), comment="评价网格类型 A/B/C")
    area_m2: Mapped[float] = mapped_column(Float, comment="评价网格面积")
    geom: Mapped[object] = geom("MULTIPOLYGON")
