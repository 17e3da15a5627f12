"""Administrative divisions (行政区划): district, streets/towns (街道/镇), communities (社区)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from spatial.models.base import AreaAttributes, Base, digits, geom


class District(AreaAttributes, Base):
    """County-level district (区/县), 6-digit GB/T 2260 code."""

    __tablename__ = "districts"
    __table_args__ = (CheckConstraint("code ~ '^[0-9]{6}$'", name="code_digits"),)

    code: Mapped[str] = digits(6, primary_key=True, comment="行政区划代码")
    name: Mapped[str] = mapped_column(String(50), comment="名称")
    geom: Mapped[object] = geom("MULTIPOLYGON")


class Street(AreaAttributes, Base):
    """Street, town or development zone (街道/镇/开发区), 9-digit code."""

    __tablename__ = "streets"
    __table_args__ = (CheckConstraint("code ~ '^[0-9]{9}$'", name="code_digits"),)

    code: Mapped[str] = digits(9, primary_key=True, comment="街道代码")
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), index=True)
    name: Mapped[str] = mapped_column(String(50), comment="名称")
    kind: Mapped[str] = mapped_column(String(10), comment="类型: 街道/镇/开发区")
    geom: Mapped[object] = geom("MULTIPOLYGON")


class Community(AreaAttributes, Base):
    """Community or village (社区/村), 12-digit code."""

    __tablename__ = "communities"
    __table_args__ = (CheckConstraint("code ~ '^[0-9]{12}$'", name="code_digits"),)

    code: Mapped[str] = digits(12, primary_key=True, comment="社区代码")
    street_code: Mapped[str] = mapped_column(ForeignKey("streets.code"), index=True)
    name: Mapped[str] = mapped_column(String(50), comment="名称")
    geom: Mapped[object] = geom("MULTIPOLYGON")
