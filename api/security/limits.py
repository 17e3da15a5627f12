"""Abuse limits as pure ASGI middlewares: body size, rate limits, CORS and security headers.

Pure ASGI (no ``BaseHTTPMiddleware``): responses stream through untouched, only the
``http.response.start`` message is edited. Errors are RFC 7807 problems like everywhere else.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import send_problem
from api.security.ratelimit import RateDecision, RateLimiter
from spatial.errors import PayloadTooLarge, TooManyRequests
from spatial.security.principal import Principal
from spatial.settings import LimitSettings, Settings

EXEMPT_PREFIXES = ("/static/", "/ogc/vendor/", "/ogc/static/")
EXEMPT_PATHS = frozenset({"/health"})
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'self'; base-uri 'self'; form-action 'self'"
)
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Referrer-Policy", "no-referrer"),
    ("Permissions-Policy", "geolocation=(self), camera=(), microphone=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
HSTS = "max-age=31536000; includeSubDomains"
CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
CORS_HEADERS = ["Authorization", "Content-Type", "X-API-Key", "Idempotency-Key"]


def header(scope: Scope, name: bytes) -> str | None:
    """The first request header ``name`` (lower-case bytes), decoded as Latin-1."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _response_header_names(message: Message) -> set[bytes]:
    return {key.lower() for key, _ in message.get("headers", ())}


def add_headers(message: Message, headers: Iterable[tuple[str, str]]) -> None:
    """Add headers to an ``http.response.start`` message, never overwriting the app's own."""
    present = _response_header_names(message)
    extra = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in headers
        if name.lower().encode("latin-1") not in present
    ]
    if extra:
        message["headers"] = [*message.get("headers", ()), *extra]


# ---------------------------------------------------------------------------- body size


class _BodyState:
    __slots__ = ("received", "exceeded", "started")

    def __init__(self) -> None:
        self.received = 0
        self.exceeded = False
        self.started = False


class _BodyTooLarge(Exception):
    """Raised into the app by ``receive`` once the streamed body passes the limit."""


class BodyLimitMiddleware:
    """413 for request bodies over ``max_bytes``: at once by Content-Length, or while streaming.

    A chunked body is counted as the app reads it; once over the limit the app's reading fails
    and whatever it answers is replaced by the 413 problem (unless it already started a
    response, which then goes on unchanged).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the streamed one."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await send_problem(scope, receive, send, self._error())
            return
        state = _BodyState()

        async def limited_receive() -> Message:
            if state.exceeded:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                state.received += len(message.get("body", b""))
                if state.received > self.max_bytes:
                    state.exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if state.exceeded and not state.started:
                return  # the app's answer to the failed read; the 413 replaces it
            if message["type"] == "http.response.start":
                state.started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state.exceeded or state.started:
                raise
        if state.exceeded and not state.started:
            await send_problem(scope, receive, send, self._error())

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"The request body exceeds {self.max_bytes} bytes.")


# ---------------------------------------------------------------------------- rate limits


def client_ip(scope: Scope) -> str:
    """The client address as the server saw it (IPv6: its /64, which one user usually owns).

    Behind a reverse proxy run uvicorn with ``--proxy-headers`` and ``--forwarded-allow-ips``
    so that this is the real client; ``X-Forwarded-For`` is never read here (it is forgeable).
    """
    client = scope.get("client")
    host = client[0] if client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address.ipv4_mapped or address) if address.version == 6 else str(address)


def principal_in(scope: Scope) -> Principal | None:
    """The principal the authentication middleware stored at ``scope["state"]["principal"]``."""
    state = scope.get("state")
    return state.get("principal") if isinstance(state, dict) else None


def bucket_for(scope: Scope, limits: LimitSettings) -> tuple[str, int]:
    """The rate-limit bucket and its per-minute limit: by user, by API key, else by IP."""
    principal = principal_in(scope)
    key = getattr(principal, "rate_key", None)
    if principal is not None and key:
        per_minute = (
            limits.api_key_per_minute if principal.kind == "api_key" else limits.user_per_minute
        )
        return key, per_minute
    return f"ip:{client_ip(scope)}", limits.anonymous_per_minute


def exempt(scope: Scope) -> bool:
    """Health checks and static assets are not rate limited."""
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES)


def rate_headers(decision: RateDecision) -> list[tuple[str, str]]:
    """``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` (seconds)."""
    values = (decision.limit, decision.remaining, decision.reset_s)
    return [(name, str(value)) for name, value in zip(RATE_HEADERS, values, strict=True)]


class RateLimitMiddleware:
    """Per-minute limits per user, per API key, or per client IP for anonymous callers.

    Must run after the authentication middleware (it reads the principal that one stored).
    Over the limit: a 429 problem with ``Retry-After``; every limited response carries the
    ``RateLimit-*`` headers.
    """

    def __init__(self, app: ASGIApp, limiter: RateLimiter, limits: LimitSettings) -> None:
        self.app = app
        self.limiter = limiter
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request, refuse it over the limit, label the response."""
        if scope["type"] != "http" or not self.limits.enabled or exempt(scope):
            await self.app(scope, receive, send)
            return
        bucket, per_minute = bucket_for(scope, self.limits)
        decision = await self.limiter.hit(bucket, per_minute, 60)
        labels = rate_headers(decision)
        if not decision.allowed:
            error = TooManyRequests(
                f"Rate limit of {per_minute} requests per minute exceeded; "
                f"retry in {decision.retry_after_s} s.",
                retry_after=decision.retry_after_s,
            )
            await send_problem(scope, receive, send, error, dict(labels))
            return

        async def labelled_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_headers(message, labels)
            await send(message)

        await self.app(scope, receive, labelled_send)


async def login_guard(limiter: RateLimiter, limits: LimitSettings, ip: str, username: str) -> None:
    """Raise TooManyRequests once the per-IP or per-user-name login budget is spent.

    Both budgets (``login_per_minute`` each) are counted on every attempt, so that guessing
    one account from many addresses and many accounts from one address are both slowed
    down. User names are hashed in the key (no personal data in Redis). Disabled, like the
    middleware, when ``limits.enabled`` is False.
    """
    if not limits.enabled:
        return
    name = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
    per_minute = limits.login_per_minute
    by_ip = await limiter.hit(f"login:ip:{ip}", per_minute, 60)
    by_name = await limiter.hit(f"login:user:{name}", per_minute, 60)
    refused = [d for d in (by_ip, by_name) if not d.allowed]
    if refused:
        raise TooManyRequests(
            "Too many log-in attempts; wait before trying again.",
            retry_after=max(d.retry_after_s for d in refused),
        )


# ---------------------------------------------------------------------------- headers


class SecurityHeadersMiddleware:
    """Standard hardening headers; a same-origin CSP on HTML; no-store for credentialed calls.

    The CSP allows inline scripts and styles because the offline Swagger UI and ReDoc pages
    and pygeoapi's HTML use them; every asset must still come from this origin. Headers the
    app set itself are never overwritten.
    """

    def __init__(self, app: ASGIApp, https_only: bool = False) -> None:
        self.app = app
        self.https_only = https_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Label the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        names = {key for key, _ in scope.get("headers", ())}
        credentialed = b"authorization" in names or b"x-api-key" in names

        async def labelled_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_headers(message, self._headers(message, credentialed))
            await send(message)

        await self.app(scope, receive, labelled_send)

    def _headers(self, message: Message, credentialed: bool) -> list[tuple[str, str]]:
        extra = list(SECURITY_HEADERS)
        content_type = next(
            (v for k, v in message.get("headers", ()) if k.lower() == b"content-type"), b""
        )
        if content_type.lower().startswith(b"text/html"):
            extra.append(("Content-Security-Policy", CSP))
        if credentialed:
            extra.append(("Cache-Control", "no-store"))
        if self.https_only:
            extra.append(("Strict-Transport-Security", HSTS))
        return extra


# ---------------------------------------------------------------------------- wiring


def cors_middleware(origins: list[str]) -> Middleware:
    """CORS for the allow-listed origins (``*`` allows any origin, but without credentials)."""
    any_origin = "*" in origins
    return Middleware(
        CORSMiddleware,
        allow_origins=["*"] if any_origin else origins,
        allow_credentials=not any_origin,
        allow_methods=CORS_METHODS,
        allow_headers=CORS_HEADERS,
        expose_headers=[*RATE_HEADERS, "Retry-After"],
        max_age=600,
    )


def install_abuse_limits(
    app: FastAPI,
    settings: Settings,
    *,
    limiter: RateLimiter | None = None,
    authentication: Middleware | None = None,
    https_only: bool = False,
) -> RateLimiter:
    """Add the abuse-limit middlewares to ``app``; return the limiter (the caller closes it).

    Starlette's ``add_middleware`` inserts at the front of the list and the first entry is the
    outermost wrapper, so the last-added middleware runs first on a request. The resulting
    order, outermost first::

        [authentication added after this call]
        SecurityHeaders -> CORS (only with limits.cors_origins) -> BodyLimit
        -> [authentication, when passed as ``authentication=``] -> RateLimit -> routes

    The rate limit must run after authentication (it reads ``scope["state"]["principal"]``):
    either call this function *before* ``app.add_middleware(AuthMiddleware)`` — auth then
    wraps everything here and runs first — or pass ``authentication=Middleware(AuthMiddleware,
    ...)``, which puts it inside the security headers, CORS and body limit, so that responses
    the authentication middleware answers itself (401) still carry the security and CORS
    headers and an oversized body is refused before any credential check. Security headers
    are outermost so that every response (413, 429, CORS preflights) gets them; CORS wraps the
    limits so that browsers can read 413/429 answers and their ``RateLimit-*`` headers.
    """
    limits = settings.limits
    limiter = limiter or RateLimiter.from_settings(limits)
    app.add_middleware(RateLimitMiddleware, limiter=limiter, limits=limits)
    if authentication is not None:
        _add(app, authentication)
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    if limits.cors_origins:
        _add(app, cors_middleware(limits.cors_origins))
    app.add_middleware(SecurityHeadersMiddleware, https_only=https_only)
    app.state.limiter = limiter
    return limiter


def _add(app: FastAPI, middleware: Middleware) -> None:
    app.add_middleware(middleware.cls, *middleware.args, **middleware.kwargs)
