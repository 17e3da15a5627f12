"""Render every error as RFC 7807 ``application/problem+json``; never leak tracebacks."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from spatial.errors import CityError, FieldIssue, InvalidInput

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("cityops.api")


def problem_response(error: CityError, request: Request) -> JSONResponse:
    """The problem document for ``error``."""
    return problem_asgi_response(error, request.scope)


def problem_asgi_response(
    error: CityError, scope: Scope, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The problem response for ``error`` from ASGI code (no ``Request`` object needed)."""
    return JSONResponse(
        error.problem(scope.get("path")),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers={**error.headers(), **(headers or {})} or None,
    )


async def send_problem(
    scope: Scope,
    receive: Receive,
    send: Send,
    error: CityError,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer a request from middleware (before routing) with ``error`` as problem JSON."""
    await problem_asgi_response(error, scope, headers)(scope, receive, send)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0] if loc else "request")


async def on_city_error(request: Request, exc: Exception) -> JSONResponse:
    """Our own errors carry status, code and title."""
    assert isinstance(exc, CityError)  # noqa: S101 - handler registered for CityError only
    if exc.status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
    return problem_response(exc, request)


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's validation errors become 400 problems naming each field."""
    errors = getattr(exc, "errors", list)()
    issues = [
        FieldIssue(_field_name(tuple(e.get("loc", ()))), e.get("msg", "invalid")) for e in errors
    ]
    names = ", ".join(i.field for i in issues)
    return problem_response(InvalidInput(f"Invalid request parameter(s): {names}", issues), request)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Routing errors (404, 405) as problems too."""
    status = getattr(exc, "status_code", 500)
    err = CityError(str(getattr(exc, "detail", "")) or "HTTP error")
    err.status, err.code = status, f"http-{status}"
    err.title = {404: "Not found (未找到)", 405: "Method not allowed (方法不允许)"}.get(
        status, "HTTP error"
    )
    return problem_response(err, request)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Anything else: log it, answer a generic 500 without internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(CityError("An unexpected error occurred; it has been logged."), request)


def install_problem_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(CityError, on_city_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
