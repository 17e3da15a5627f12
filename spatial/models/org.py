"""Organisations (机构): disposal departments, street offices, operators, command centre."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from spatial.models.base import Base


class Department(Base):
    """An organisation that owns, maintains or disposes of things (处置部门 etc.)."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    kind: Mapped[str] = mapped_column(
        String(20), comment="处置部门/街道/社区/第三方运营公司/指挥中心"
    )
    phone: Mapped[str | None] = mapped_column(String(30))
    parent_code: Mapped[str | None] = mapped_column(
        ForeignKey("departments.code", ondelete="SET NULL"), comment="上级部门"
    )
    street_code: Mapped[str | None] = mapped_column(
        ForeignKey("streets.code"), comment="街道: its area is its data scope"
    )
    community_code: Mapped[str | None] = mapped_column(
        ForeignKey("communities.code"), comment="社区: its area is its data scope"
    )
