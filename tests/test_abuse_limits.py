"""Abuse limits against a real redis-server: rate limits, body size, CORS, security headers."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from typer.testing import CliRunner

import spatial.redisd as redisd
import spatial.settings
from api.app import create_app
from api.cli import app as cli
from api.problems import PROBLEM_JSON, install_problem_handlers
from api.security.limits import CSP, BodyLimitMiddleware, install_abuse_limits, login_guard
from api.security.ratelimit import RateLimiter
from spatial.cluster import free_port
from spatial.errors import ConfigurationError, TooManyRequests
from spatial.redisd import LocalRedis
from spatial.security.principal import Principal
from spatial.settings import LimitSettings, Settings

MAX_BODY = 2048
ALLOWED_ORIGIN = "https://ok.example"


class FakeAuth:
    """Test stand-in for the authentication middleware: principal and client IP from headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            principal = Principal()
            if b"x-test-user" in headers:
                principal = Principal(kind="user", id=int(headers[b"x-test-user"]), name="u")
            elif b"x-test-key" in headers:
                principal = Principal(kind="api_key", id=int(headers[b"x-test-key"]), name="k")
            scope.setdefault("state", {})["principal"] = principal
            if b"x-test-ip" in headers:
                scope["client"] = (headers[b"x-test-ip"].decode(), 50000)
        await self.app(scope, receive, send)


def limits(**overrides: object) -> LimitSettings:
    values: dict[str, object] = {
        "enabled": True,  # conftest disables limits for every other test (CITY_LIMITS_ENABLED)
        "user_per_minute": 5,
        "api_key_per_minute": 8,
        "anonymous_per_minute": 3,
        "login_per_minute": 3,
        "max_body_bytes": MAX_BODY,
        "cors_origins": [ALLOWED_ORIGIN],
        "redis_url": "redis://127.0.0.1:1/0",  # never used: tests pass their own limiter
    }
    values.update(overrides)
    return LimitSettings(**values)  # type: ignore[arg-type]


def build_app(limiter: RateLimiter, **overrides: object) -> FastAPI:
    app = FastAPI()
    app.state.calls = 0
    install_problem_handlers(app)

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, object]:
        request.app.state.calls += 1
        body = await request.body()
        return {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}

    @app.get("/page", response_class=HTMLResponse)
    async def page() -> str:
        return "<!doctype html><html><body>大丰</body></html>"

    @app.get("/own-headers")
    async def own_headers() -> JSONResponse:
        headers = {"X-Frame-Options": "DENY", "Cache-Control": "max-age=60"}
        return JSONResponse({"ok": True}, headers=headers)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/static/app.js")
    async def asset() -> PlainTextResponse:
        return PlainTextResponse("console.log(1)", media_type="text/javascript")

    settings = Settings(limits=limits(**overrides))
    assert install_abuse_limits(app, settings, limiter=limiter) is limiter
    assert app.state.limiter is limiter
    app.add_middleware(FakeAuth)  # added last: runs first, before the rate limit
    return app


@pytest.fixture
def prefix() -> str:
    return f"cityops:rl:test-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def limiter(redis_url: str, prefix: str) -> RateLimiter:
    return RateLimiter(redis_url, prefix=prefix)


@pytest.fixture
def limited(limiter: RateLimiter) -> Iterator[TestClient]:
    with TestClient(build_app(limiter), raise_server_exceptions=False) as c:
        yield c
        c.portal.call(limiter.close)


def exhaust(client: TestClient, n: int, **headers: str) -> list[int]:
    return [client.get("/ping", headers=headers).status_code for _ in range(n)]


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    doc = response.json()
    assert doc["status"] == status
    assert doc["type"].endswith(f"/{code}")
    return doc


# ---------------------------------------------------------------------------- rate limits


def test_user_gets_429_after_limit(
    limited: TestClient, limiter: RateLimiter, redis_url: str, prefix: str
) -> None:
    remaining = []
    for _ in range(5):
        r = limited.get("/ping", headers={"X-Test-User": "7"})
        assert r.status_code == 200
        assert r.headers["RateLimit-Limit"] == "5"
        assert 0 < int(r.headers["RateLimit-Reset"]) <= 60
        remaining.append(int(r.headers["RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    r = limited.get("/ping", headers={"X-Test-User": "7"})
    doc = assert_problem(r, 429, "too-many-requests")
    assert doc["instance"] == "/ping"
    assert 1 <= int(r.headers["Retry-After"]) <= 12  # one request every 60/5 s
    assert r.headers["RateLimit-Remaining"] == "0"
    assert r.headers["X-Content-Type-Options"] == "nosniff"  # security headers wrap the 429
    assert limiter.using_redis
    assert redis.Redis.from_url(redis_url).exists(f"{prefix}user:7")


def test_buckets_are_per_user_key_and_ip(limited: TestClient) -> None:
    assert exhaust(limited, 6, **{"X-Test-User": "1"})[-1] == 429
    assert limited.get("/ping", headers={"X-Test-User": "2"}).status_code == 200
    key = limited.get("/ping", headers={"X-Test-Key": "1"})  # key 1 is not user 1
    assert key.status_code == 200
    assert key.headers["RateLimit-Limit"] == "8"
    assert exhaust(limited, 8, **{"X-Test-Key": "1"})[-1] == 429
    assert limited.get("/ping", headers={"X-Test-Key": "2"}).status_code == 200

    ip_a, ip_b = {"X-Test-IP": "192.0.2.10"}, {"X-Test-IP": "192.0.2.11"}
    assert limited.get("/ping", headers=ip_a).headers["RateLimit-Limit"] == "3"
    assert exhaust(limited, 3, **ip_a) == [200, 200, 429]
    assert limited.get("/ping", headers=ip_b).status_code == 200
    # An authenticated caller from the exhausted address has their own budget.
    assert limited.get("/ping", headers={**ip_a, "X-Test-User": "3"}).status_code == 200


def test_ipv6_clients_share_their_slash_64(limited: TestClient) -> None:
    assert exhaust(limited, 3, **{"X-Test-IP": "2001:db8:1:2::1"}) == [200] * 3
    assert limited.get("/ping", headers={"X-Test-IP": "2001:db8:1:2::ff"}).status_code == 429
    assert limited.get("/ping", headers={"X-Test-IP": "2001:db8:1:3::1"}).status_code == 200


def test_health_and_static_assets_are_exempt(limited: TestClient) -> None:
    ip = {"X-Test-IP": "192.0.2.20"}
    for path in ("/health", "/static/app.js") * 4:
        r = limited.get(path, headers=ip)
        assert r.status_code == 200
        assert "RateLimit-Limit" not in r.headers
    assert limited.get("/ping", headers=ip).headers["RateLimit-Remaining"] == "2"


def test_disabled_limits_do_not_count(limiter: RateLimiter) -> None:
    with TestClient(build_app(limiter, enabled=False)) as c:
        assert exhaust(c, 6, **{"X-Test-User": "1"}) == [200] * 6
        assert "RateLimit-Limit" not in c.get("/ping").headers
        c.portal.call(login_guard, limiter, limits(enabled=False), "192.0.2.1", "x")


def test_fallback_without_redis_still_limits(caplog: pytest.LogCaptureFixture) -> None:
    closed = RateLimiter(f"redis://127.0.0.1:{free_port(47000)}/0")
    caplog.set_level(logging.WARNING, logger="cityops.ratelimit")
    with TestClient(build_app(closed)) as c:
        assert exhaust(c, 6, **{"X-Test-User": "1"}) == [200] * 5 + [429]
        assert c.get("/ping", headers={"X-Test-User": "2"}).status_code == 200
        r = c.get("/ping", headers={"X-Test-User": "1"})
        assert_problem(r, 429, "too-many-requests")
        assert int(r.headers["Retry-After"]) >= 1
    assert not closed.using_redis
    warnings = [r for r in caplog.records if r.name == "cityops.ratelimit"]
    assert len(warnings) == 1  # one warning per outage, not one per request
    assert "unreachable" in warnings[0].getMessage()


def test_memory_and_redis_agree(redis_url: str, prefix: str) -> None:
    async def sequence(limiter: RateLimiter) -> list[tuple[bool, int]]:
        out = [await limiter.hit("same", 3, 60) for _ in range(4)]
        await limiter.close()
        assert all(d.limit == 3 and 0 < d.reset_s <= 60 for d in out)
        assert out[-1].retry_after_s >= 1 and all(d.retry_after_s == 0 for d in out[:3])
        return [(d.allowed, d.remaining) for d in out]

    shared = asyncio.run(sequence(RateLimiter(redis_url, prefix=prefix)))
    local = asyncio.run(sequence(RateLimiter(None)))
    assert shared == local == [(True, 2), (True, 1), (True, 0), (False, 0)]


def test_limiter_reconnects_after_an_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = LocalRedis(tmp_path / "redis")
    url = server.ensure_running()
    server.stop()
    caplog.set_level(logging.WARNING, logger="cityops.ratelimit")

    async def scenario() -> tuple[bool, bool]:
        limiter = RateLimiter(url, retry_s=0)
        await limiter.hit("b", 10)
        down = limiter.using_redis
        assert server.ensure_running() == url  # the remembered port is reused
        await limiter.hit("b", 10)
        up = limiter.using_redis
        await limiter.close()
        return down, up

    try:
        assert asyncio.run(scenario()) == (False, True)
    finally:
        server.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "cityops.ratelimit"]
    assert len(messages) == 2 and "is back" in messages[1]


def test_login_guard(limiter: RateLimiter) -> None:
    config = limits(login_per_minute=3)

    async def attempts() -> list[str]:
        outcomes = []
        cases = [
            ("192.0.2.1", "alice"),
            ("192.0.2.1", "bob"),
            ("192.0.2.1", "carol"),
            ("192.0.2.1", "dave"),  # 4th from this IP
            ("192.0.2.2", "Alice "),  # same user name (normalised), fresh IP
            ("192.0.2.3", "alice"),
            ("192.0.2.4", "ALICE"),  # 4th for alice
            ("192.0.2.5", "erin"),
        ]
        for ip, name in cases:
            try:
                await login_guard(limiter, config, ip, name)
                outcomes.append("ok")
            except TooManyRequests as exc:
                assert exc.retry_after >= 1
                outcomes.append("429")
        await limiter.close()
        return outcomes

    assert asyncio.run(attempts()) == ["ok", "ok", "ok", "429", "ok", "ok", "429", "ok"]


# ---------------------------------------------------------------------------- body size


def test_big_content_length_is_refused_at_once(limited: TestClient) -> None:
    r = limited.post("/echo", content=b"x" * (MAX_BODY + 1))
    doc = assert_problem(r, 413, "payload-too-large")
    assert str(MAX_BODY) in str(doc["detail"])
    assert limited.app.state.calls == 0  # type: ignore[attr-defined]


def test_chunked_oversized_body_is_refused(limited: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b"y" * 1000

    r = limited.post("/echo", content=chunks())
    assert_problem(r, 413, "payload-too-large")
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_bodies_under_the_limit_arrive_intact(limited: TestClient) -> None:
    data = bytes(range(256)) * 8  # exactly MAX_BODY
    expected = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert limited.post("/echo", content=data).json() == expected
    assert limited.post("/echo", content=iter([data[:1000], data[1000:]])).json() == expected


def test_body_limit_counts_streamed_chunks() -> None:
    """Several ``http.request`` messages, no Content-Length: the app's answer is replaced."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read it all"})

    async def run(chunks: list[bytes]) -> list[Message]:
        messages = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ]
        sent: list[Message] = []

        async def receive() -> Message:
            return messages.pop(0)

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/up", "headers": []}
        await BodyLimitMiddleware(app, 100)(scope, receive, send)
        return sent

    refused = asyncio.run(run([b"a" * 60, b"b" * 60, b"c" * 60]))
    assert refused[0]["status"] == 413
    assert (b"content-type", PROBLEM_JSON.encode()) in refused[0]["headers"]
    assert b"payload-too-large" in refused[1]["body"]
    accepted = asyncio.run(run([b"a" * 50, b"b" * 50]))
    assert accepted[0]["status"] == 200 and accepted[1]["body"] == b"read it all"


# ---------------------------------------------------------------------------- headers, CORS


def test_security_headers_on_json_and_html(limited: TestClient) -> None:
    json_response = limited.get("/ping")
    html_response = limited.get("/page")
    for r in (json_response, html_response):
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["Permissions-Policy"] == "geolocation=(self), camera=(), microphone=()"
        assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in r.headers
        assert "Cache-Control" not in r.headers
    assert "Content-Security-Policy" not in json_response.headers
    assert html_response.headers["Content-Security-Policy"] == CSP
    assert "大丰" in html_response.text


def test_credentialed_responses_are_not_cached_and_app_headers_win(limited: TestClient) -> None:
    assert (
        limited.get("/ping", headers={"Authorization": "Bearer x"}).headers["Cache-Control"]
        == "no-store"
    )
    assert limited.get("/ping", headers={"X-API-Key": "k"}).headers["Cache-Control"] == "no-store"
    own = limited.get("/own-headers", headers={"Authorization": "Bearer x"})
    assert own.headers.get_list("X-Frame-Options") == ["DENY"]
    assert own.headers.get_list("Cache-Control") == ["max-age=60"]


def test_hsts_only_when_https_only(limiter: RateLimiter) -> None:
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, bool]:
        return {"ok": True}

    install_abuse_limits(app, Settings(limits=limits()), limiter=limiter, https_only=True)
    with TestClient(app) as c:
        assert c.get("/").headers["Strict-Transport-Security"].startswith("max-age=")
        c.portal.call(limiter.close)


def test_cors_allow_list(limited: TestClient) -> None:
    ok = limited.get("/ping", headers={"Origin": ALLOWED_ORIGIN})
    assert ok.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert ok.headers["Access-Control-Allow-Credentials"] == "true"
    exposed = ok.headers["Access-Control-Expose-Headers"].lower()
    assert "ratelimit-remaining" in exposed and "retry-after" in exposed
    evil = limited.get("/ping", headers={"Origin": "https://evil.example"})
    assert evil.status_code == 200
    assert "Access-Control-Allow-Origin" not in evil.headers

    preflight = {
        "Origin": ALLOWED_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-API-Key, Idempotency-Key",
    }
    r = limited.options("/echo", headers=preflight)
    assert r.status_code == 200
    assert "x-api-key" in r.headers["Access-Control-Allow-Headers"].lower()
    assert (
        limited.options(
            "/echo", headers={**preflight, "Origin": "https://evil.example"}
        ).status_code
        == 400
    )

    # 429s carry CORS headers too, so browsers can read them.
    ip = {"X-Test-IP": "192.0.2.30", "Origin": ALLOWED_ORIGIN}
    last = [limited.get("/ping", headers=ip) for _ in range(4)][-1]
    assert last.status_code == 429
    assert last.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


def test_no_cors_without_origins(limiter: RateLimiter) -> None:
    with TestClient(build_app(limiter, cors_origins=[])) as c:
        r = c.get("/ping", headers={"Origin": ALLOWED_ORIGIN})
        assert "Access-Control-Allow-Origin" not in r.headers
        c.portal.call(limiter.close)


# ---------------------------------------------------------------------------- local Redis


def test_local_redis_start_reuse_stop(tmp_path: Path) -> None:
    server = LocalRedis(tmp_path / "redis")
    assert not server.running()
    url = server.ensure_running()
    try:
        assert server.running()
        assert redis.Redis.from_url(url).ping()
        pid = server.pid_file.read_text()
        again = LocalRedis(tmp_path / "redis")
        assert again.ensure_running() == url
        assert again.pid_file.read_text() == pid  # reused, not restarted
        assert redis.Redis.from_url(url).config_get("save") == {"save": ""}
    finally:
        server.stop()
    assert not server.running()
    server.stop()  # no-op when stopped


def test_missing_redis_server_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(redisd, "FALLBACK_PATHS", ())
    with pytest.raises(ConfigurationError, match="redis-server"):
        redisd.redis_server_binary()


def test_cli_redis_up_and_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url_file = tmp_path / "redis_url"
    monkeypatch.setattr(spatial.settings, "LOCAL_REDIS_DIR", tmp_path / "redis")
    monkeypatch.setattr(spatial.settings, "LOCAL_REDIS_URL_FILE", url_file)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("CITY_LIMITS_REDIS_URL", raising=False)
    runner = CliRunner()
    try:
        assert runner.invoke(cli, ["redis", "up"]).exit_code == 0
        url = url_file.read_text().strip()
        assert redis.Redis.from_url(url).ping()
        assert runner.invoke(cli, ["redis", "up"]).exit_code == 0  # reused
        assert url_file.read_text().strip() == url
    finally:
        down = runner.invoke(cli, ["redis", "down"])
    assert down.exit_code == 0 and "Stopped" in down.output
    assert not url_file.exists()
    assert not LocalRedis(tmp_path / "redis").running()
    external = runner.invoke(cli, ["redis", "up"], env={"REDIS_URL": "redis://elsewhere:6379/0"})
    assert external.exit_code == 0 and "REDIS_URL" in external.output
    assert not url_file.exists()


# ---------------------------------------------------------------------------- the real app


def test_real_app_docs_keep_working_under_csp(settings: Settings, redis_url: str) -> None:
    settings = settings.model_copy(
        update={"limits": LimitSettings(redis_url=redis_url, enabled=True)}
    )
    app = create_app(settings)
    installed_here = getattr(app.state, "limiter", None) is None  # create_app may install it
    if installed_here:
        install_abuse_limits(app, settings)
    with TestClient(app, raise_server_exceptions=False) as c:
        for page in ("/docs", "/redoc"):
            r = c.get(page)
            assert r.status_code == 200
            assert r.headers["Content-Security-Policy"] == CSP
            assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
            assert assets and all(a.startswith("/static/docs/") for a in assets), assets
            for asset in assets:
                fetched = c.get(asset)
                assert fetched.status_code == 200
                assert "RateLimit-Limit" not in fetched.headers
        assert "RateLimit-Limit" in c.get("/no-such-page").headers  # routes are limited
        if installed_here:
            c.portal.call(app.state.limiter.close)
