"""Record every write request (POST/PUT/PATCH/DELETE) in the audit trail: who, from where, outcome.

Domain writes add their own entries with before/after images in their transaction; this
middleware guarantees that no write — refused, failed or successful — goes unrecorded, and
records reads of non-public layers (sensitive reads) when enabled.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

import psycopg
from psycopg_pool import PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.security.authn import client_of
from spatial.security import audit
from spatial.security.principal import ANONYMOUS, Principal

log = logging.getLogger("cityops.audit")
WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Layer reads: OGC items, tiles, WFS/WMTS carry the layer in the path or the query.
_LAYER_PATH: Final = re.compile(r"^/(?:ogc/collections|tiles)/([^/]+)/")


class AuditWritesMiddleware:
    """Pure ASGI; runs inside authentication (it needs the principal)."""

    def __init__(self, app: ASGIApp, sensitive_reads: bool = True) -> None:
        """Wrap ``app``."""
        self.app, self.sensitive_reads = app, sensitive_reads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through, remembering the status; record afterwards."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        action = self._action(scope)
        if action is None:
            await self.app(scope, receive, send)
            return
        status = 500
        app = scope["app"]  # mounted apps (pygeoapi) replace scope["app"] on the way down

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            await self._record(app, scope, action, status)

    def _action(self, scope: Scope) -> str | None:
        if scope["method"] in WRITES:
            return "http.write"
        if not self.sensitive_reads:
            return None
        match = _LAYER_PATH.match(scope["path"])
        if match is None:
            return None
        spec = scope["app"].state.registry.find(match.group(1))
        return "layer.read" if spec is not None and not spec.public else None

    async def _record(self, app: Any, scope: Scope, action: str, status: int) -> None:
        principal: Principal = scope.get("state", {}).get("principal", ANONYMOUS)
        client = client_of(scope)
        query = scope.get("query_string", b"").decode("latin-1")[:500]
        event = audit.event_for(
            principal,
            action,
            ip=client.ip,
            user_agent=client.user_agent,
            method=scope["method"],
            path=scope["path"][:300],
            status=status,
            detail={"query": query} if query else None,
        )
        try:
            async with app.state.pool.connection(timeout=2) as conn:
                await audit.record(conn, event)
        except (psycopg.Error, PoolTimeout):
            log.exception("could not audit %s %s", scope["method"], scope["path"])
