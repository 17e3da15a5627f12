"""Identity (机构设置): positions, users, inspectors' grids, refresh tokens and API keys.

Personal fields are stored three ways: SM4-GCM ciphertext (``*_enc``), a masked copy for
display (``*_mask``) and an HMAC-SM3 blind index for equality search (``*_bidx``); the keys
live outside the database (``CITY_SECURITY_KEY_DIR``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET
from sqlalchemy.orm import Mapped, mapped_column

from spatial.models.base import Base

SCOPE_KINDS = ("all", "unit", "grid", "self", "none")


class Position(Base):
    """A post (岗位) with its permissions and the data scope its holders get."""

    __tablename__ = "positions"
    __table_args__ = (
        CheckConstraint(f"data_scope IN {SCOPE_KINDS}", name="data_scope"),
        CheckConstraint("code ~ '^[a-z][a-z0-9_]{1,30}$'", name="code_format"),
    )

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(30), unique=True, comment="岗位名称")
    description: Mapped[str | None] = mapped_column(String(200))
    permissions: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    data_scope: Mapped[str] = mapped_column(
        String(10), server_default="none", comment="all/unit/grid/self/none (数据范围)"
    )
    requires_mfa: Mapped[bool] = mapped_column(Boolean, server_default="false")


class User(Base):
    """A person who logs in (人员)."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("username ~ '^[a-z0-9][a-z0-9._-]{2,39}$'", name="username_format"),
        CheckConstraint("status IN ('active', 'disabled')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(40), comment="姓名")
    staff_code: Mapped[str | None] = mapped_column(String(20), unique=True, comment="工号")
    department_code: Mapped[str | None] = mapped_column(
        ForeignKey("departments.code", ondelete="SET NULL"), index=True
    )
    password_hash: Mapped[str] = mapped_column(Text, comment="PBKDF2-HMAC-SM3")
    phone_enc: Mapped[str | None] = mapped_column(Text, comment="手机号 (SM4)")
    phone_mask: Mapped[str | None] = mapped_column(String(20))
    phone_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    id_number_enc: Mapped[str | None] = mapped_column(Text, comment="身份证号 (SM4)")
    id_number_mask: Mapped[str | None] = mapped_column(String(20))
    id_number_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(10), server_default="active")
    failed_logins: Mapped[int] = mapped_column(Integer, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    must_change_password: Mapped[bool] = mapped_column(Boolean, server_default="false")
    password_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    totp_secret_enc: Mapped[str | None] = mapped_column(Text, comment="TOTP secret (SM4)")
    totp_enabled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UserPosition(Base):
    """A user holds many positions (人员—岗位)."""

    __tablename__ = "user_positions"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    position_code: Mapped[str] = mapped_column(
        ForeignKey("positions.code", ondelete="CASCADE"), primary_key=True, index=True
    )


class InspectorGrid(Base):
    """An inspector (监督员) is bound to responsibility grids (责任网格)."""

    __tablename__ = "inspector_grids"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    grid_code: Mapped[str] = mapped_column(
        ForeignKey("responsibility_grids.code", ondelete="CASCADE"), primary_key=True, index=True
    )


class RefreshToken(Base):
    """One rotating refresh token; a reused one revokes its whole family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, comment="SM3 of the token")
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    idle_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ip: Mapped[str | None] = mapped_column(INET)


class ApiKey(Base):
    """A machine client's key (设备/数据交换): ``cok_<prefix>_<secret>``, scoped."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(String(12), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64), comment="HMAC-SM3 of the secret")
    name: Mapped[str] = mapped_column(String(60))
    owner_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    department_code: Mapped[str | None] = mapped_column(
        ForeignKey("departments.code", ondelete="SET NULL")
    )
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginNonce(Base):
    """Nonces of SM2 login envelopes already seen (replay guard), pruned after their max age."""

    __tablename__ = "login_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
