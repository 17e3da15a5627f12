"""Who is asking: a user, a machine client (API key) or nobody, with permissions and data scope."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

PrincipalKind = Literal["anonymous", "user", "api_key"]
ScopeKind = Literal["all", "area", "department", "grid", "self"]


@dataclass(frozen=True)
class DataScope:
    """Which rows of a scoped layer a principal may see; the union of its parts.

    ``all`` sees everything; otherwise a row is visible when it lies in one of ``areas``
    (street/community codes, filtered spatially by their polygons), belongs to one of
    ``departments``, lies in one of ``grids`` (responsibility grids) or was reported by
    ``owner`` (the user id).
    """

    all: bool = False
    areas: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    grids: tuple[str, ...] = ()
    owner: int | None = None

    @property
    def empty(self) -> bool:
        """True when nothing at all is visible."""
        return not (
            self.all or self.areas or self.departments or self.grids or self.owner is not None
        )


EVERYTHING = DataScope(all=True)
NOTHING = DataScope()


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    kind: PrincipalKind = "anonymous"
    id: int | None = None  # user id, or API key id
    name: str = "anonymous"  # user name, or ``apikey:<prefix>``
    display_name: str = "匿名"
    positions: tuple[str, ...] = ()
    permissions: frozenset[str] = field(default_factory=frozenset)
    department_code: str | None = None
    scope: DataScope = NOTHING
    via: str = "none"  # bearer, basic, api-key

    @property
    def authenticated(self) -> bool:
        """True for users and API keys."""
        return self.kind != "anonymous"

    @property
    def rate_key(self) -> str | None:
        """The rate-limit bucket of an authenticated caller (anonymous: by IP)."""
        if self.kind == "user":
            return f"user:{self.id}"
        if self.kind == "api_key":
            return f"key:{self.id}"
        return None

    def can(self, permission: str) -> bool:
        """True when the principal holds ``permission``."""
        return permission in self.permissions


ANONYMOUS = Principal()


CURRENT_PRINCIPAL: ContextVar[Principal] = ContextVar("cityops_principal", default=ANONYMOUS)
"""The principal of the request being served; the authentication middleware sets it.

Code that runs outside FastAPI's dependency injection (the pygeoapi provider, in a worker
thread that receives a copy of the request's context) reads it through ``current_principal``.
"""


def current_principal() -> Principal:
    """The principal of the current request (``ANONYMOUS`` outside any request)."""
    return CURRENT_PRINCIPAL.get()
