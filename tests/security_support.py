"""Test helpers for identity and access: choose the request's principal with a header.

Usage::

    app = create_app(settings)
    with_principal(app, {"reader": Principal(kind="user", id=1, ...)})
    with TestClient(app) as client:
        client.get("/ogc/collections/cases/items", headers=as_("reader"))

``with_principal`` installs a test-only ASGI middleware, *innermost* (after any middleware
``create_app`` added, e.g. the real authentication middleware), that looks the header
``X-Test-Principal`` up in the given dict and, when found, sets both ``request.state.principal``
(``scope["state"]["principal"]``) and the ``CURRENT_PRINCIPAL`` context variable for the
request. Without the header (or with an unknown name) it leaves whatever the outer
middleware set; when nothing set a principal, the request is anonymous (``ANONYMOUS``).
Call it before the app serves its first request.

``basic(username)`` is an ``Authorization`` header for a demo user (data_samples/demo_users.py,
loaded into the test template) through the real authentication middleware: ``acceptor`` reads
every case (scope all), ``handler`` only department D004's.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from data_samples.demo_users import DEMO_PASSWORD
from spatial.security.principal import CURRENT_PRINCIPAL, NOTHING, DataScope, Principal

PRINCIPAL_HEADER = "X-Test-Principal"


class PrincipalFromHeader:
    """Test-only middleware: the principal named by a request header."""

    def __init__(self, app: ASGIApp, principals: Mapping[str, Principal], header: str) -> None:
        self.app, self.principals, self.header = app, dict(principals), header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = Headers(scope=scope).get(self.header) if scope["type"] == "http" else None
        principal = self.principals.get(name) if name else None
        if principal is None:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        token = CURRENT_PRINCIPAL.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            CURRENT_PRINCIPAL.reset(token)


def with_principal(
    app: FastAPI, principal_by_header: Mapping[str, Principal], header: str = PRINCIPAL_HEADER
) -> FastAPI:
    """Let tests pick the principal per request with ``header`` (see the module docstring)."""
    if app.middleware_stack is not None:
        raise RuntimeError("with_principal() must be called before the first request")
    app.user_middleware.append(
        Middleware(PrincipalFromHeader, principals=principal_by_header, header=header)
    )
    return app


def as_(name: str, header: str = PRINCIPAL_HEADER) -> dict[str, str]:
    """Request headers selecting the principal registered as ``name``."""
    return {header: name}


def basic(username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
    """An HTTP Basic ``Authorization`` header (demo users share ``DEMO_PASSWORD``)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def user(
    name: str,
    *permissions: str,
    scope: DataScope = NOTHING,
    user_id: int = 1,
    department: str | None = None,
) -> Principal:
    """A user principal holding ``permissions`` with data ``scope`` (default: none)."""
    return Principal(
        kind="user",
        id=user_id,
        name=name,
        display_name=name,
        permissions=frozenset(permissions),
        department_code=department,
        scope=scope,
        via="bearer",
    )
