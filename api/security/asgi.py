"""Answer a ``CityError`` as RFC 7807 from pure ASGI middleware (before routing)."""

from __future__ import annotations

import json

from starlette.types import Scope, Send

from spatial.errors import CityError

PROBLEM_JSON = "application/problem+json"


async def send_problem(scope: Scope, send: Send, error: CityError) -> None:
    """Send ``error``'s problem document with its status and extra headers."""
    body = json.dumps(error.problem(scope.get("path")), ensure_ascii=False).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in error.headers().items()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
