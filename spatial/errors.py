"""One error hierarchy for the whole platform, rendered as RFC 7807 problem details."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FieldIssue:
    """One problem with one input field (or one feature's field)."""

    field: str
    message: str
    feature: int | str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Render for the ``errors`` member of a problem document."""
        out: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.feature is not None:
            out["feature"] = self.feature
        return out


@dataclass
class CityError(Exception):
    """Base error: ``status``, a stable ``code`` and a public ``title``/``detail``."""

    detail: str = ""
    errors: list[FieldIssue] = field(default_factory=list)
    status = 500
    code = "internal-error"
    title = "Internal error (内部错误)"

    def headers(self) -> dict[str, str]:
        """Extra response headers (``WWW-Authenticate``, ``Retry-After``)."""
        return {}

    def __str__(self) -> str:
        """Show the detail and the first field issues."""
        issues = "; ".join(f"{e.field}: {e.message}" for e in self.errors[:5])
        return " — ".join(x for x in (self.detail or self.title, issues) if x)

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """Return the RFC 7807 problem document."""
        doc: dict[str, Any] = {
            "type": f"https://cityops.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail or self.title,
        }
        if instance:
            doc["instance"] = instance
        if self.errors:
            doc["errors"] = [e.as_dict() for e in self.errors]
        return doc


class InvalidInput(CityError):
    """The request or file is malformed; fields are named in ``errors``."""

    status = 400
    code = "invalid-input"
    title = "Invalid input (输入无效)"


class UnprocessableInput(InvalidInput):
    """Well-formed input that cannot be accepted (e.g. outside the district)."""

    status = 422
    code = "unprocessable-input"
    title = "Input cannot be processed (输入无法处理)"


class NotFound(CityError):
    """The resource does not exist."""

    status = 404
    code = "not-found"
    title = "Not found (未找到)"


class Conflict(CityError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"
    title = "Conflict (状态冲突)"


class ConfigurationError(CityError):
    """The server is not configured (no database, missing extension)."""

    status = 503
    code = "not-configured"
    title = "Service not configured (服务未配置)"


class DatabaseUnavailable(CityError):
    """The database cannot be reached."""

    status = 503
    code = "database-unavailable"
    title = "Database unavailable (数据库不可用)"


class Unauthorized(CityError):
    """No valid credentials: log in, or present a token, API key or HTTP Basic credentials."""

    status = 401
    code = "unauthorized"
    title = "Authentication required (需要登录)"
    challenge: str = 'Bearer realm="cityops", Basic realm="cityops"'

    def headers(self) -> dict[str, str]:
        """Tell clients (QGIS, GDAL, browsers) which schemes are accepted."""
        return {"WWW-Authenticate": self.challenge}


class InvalidToken(Unauthorized):
    """A presented credential was expired, forged, revoked or of the wrong algorithm."""

    code = "invalid-token"
    title = "Invalid credentials (凭证无效)"
    challenge = 'Bearer realm="cityops", error="invalid_token"'


class Forbidden(CityError):
    """Authenticated, but the role or data scope does not allow this."""

    status = 403
    code = "forbidden"
    title = "Forbidden (无权限)"


class AccountLocked(CityError):
    """Too many failed log-ins: the account is locked for a while."""

    status = 423
    code = "account-locked"
    title = "Account locked (账号已锁定)"


class PayloadTooLarge(CityError):
    """The request body exceeds the configured limit."""

    status = 413
    code = "payload-too-large"
    title = "Request body too large (请求体过大)"


@dataclass
class TooManyRequests(CityError):
    """Rate limit exceeded; ``retry_after`` seconds until the window frees up."""

    retry_after: int = 60
    status = 429
    code = "too-many-requests"
    title = "Too many requests (请求过于频繁)"

    def headers(self) -> dict[str, str]:
        """``Retry-After`` in seconds."""
        return {"Retry-After": str(self.retry_after)}
