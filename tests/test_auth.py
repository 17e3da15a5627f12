"""Authentication: OAuth2 grants, SM2 log-in, lockout, TOTP, refresh rotation, bad tokens,
HTTP Basic, API keys, separation of duties and personal-data masking — on a real database."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import jwt
import psycopg
import pyotp
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from data_samples.demo_users import ADMIN_TOTP_SECRET, DEMO_PASSWORD
from spatial.db import libpq_url
from spatial.security.keystore import KeyStore
from spatial.security.login_envelope import seal_password
from spatial.security.tokens import issue_access
from spatial.settings import DatabaseSettings, SecuritySettings, Settings
from tests.auth_support import tokens

TOKEN = "/api/v1/auth/token"


@pytest.fixture
def app_client(scratch_url: str) -> Iterator[TestClient]:
    """A client over a private database (these tests lock accounts and spend tokens)."""
    settings = Settings(db=DatabaseSettings(url=scratch_url))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _audit_actions(url: str, actor: str) -> list[str]:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT action FROM city.audit_log WHERE actor = %s ORDER BY seq", (actor,)
        ).fetchall()
    return [r[0] for r in rows]


def _me(client: TestClient, token: str) -> dict:
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def test_password_grant_and_me(app_client: TestClient, scratch_url: str) -> None:
    body = tokens(app_client, "dispatcher")
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    me = _me(app_client, body["access_token"])
    assert me["name"] == "dispatcher" and me["positions"] == ["dispatcher"]
    assert "cases:dispatch" in me["permissions"] and me["scope"]["all"] is True
    assert "auth.login" in _audit_actions(scratch_url, "dispatcher")


def test_scopes_of_demo_users(app_client: TestClient) -> None:
    inspector = _me(app_client, tokens(app_client, "inspector")["access_token"])
    assert inspector["scope"]["grids"] and not inspector["scope"]["all"]
    street = _me(app_client, tokens(app_client, "street")["access_token"])
    assert street["scope"]["areas"] == ["320904001"]
    handler = _me(app_client, tokens(app_client, "handler")["access_token"])
    assert handler["scope"]["departments"] == ["D004"]
    citizen = _me(app_client, tokens(app_client, "citizen")["access_token"])
    assert citizen["scope"]["owner"] == citizen["id"]


def test_sm2_sealed_login_and_replay(app_client: TestClient) -> None:
    key = app_client.get("/api/v1/auth/sm2-key").json()
    assert key["algorithm"] == "SM2" and key["cipher_mode"] == "C1C3C2"
    sealed = seal_password(key["public_key"], DEMO_PASSWORD)
    form = {"username": "leader", "password": sealed}
    assert app_client.post(TOKEN, data=form).status_code == 200
    replay = app_client.post(TOKEN, data=form)
    assert replay.status_code == 401 and "replay" in replay.json()["detail"]
    old = seal_password(key["public_key"], DEMO_PASSWORD, now_ms=int(time.time() * 1000) - 3600_000)
    stale = app_client.post(TOKEN, data={"username": "leader", "password": old})
    assert stale.status_code == 400 and stale.json()["errors"][0]["field"] == "password"


def test_wrong_password_then_lockout(app_client: TestClient, scratch_url: str) -> None:
    for _ in range(4):
        r = app_client.post(TOKEN, data={"username": "acceptor", "password": "wrong-Pass1"})
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    locked = app_client.post(TOKEN, data={"username": "acceptor", "password": "wrong-Pass1"})
    assert locked.status_code == 423
    right = app_client.post(TOKEN, data={"username": "acceptor", "password": DEMO_PASSWORD})
    assert right.status_code == 423  # the right password does not open a locked account
    actions = _audit_actions(scratch_url, "acceptor")
    assert actions.count("auth.login_failed") == 5 and "auth.locked" in actions
    admin = {"Authorization": f"Bearer {tokens(app_client, 'admin')['access_token']}"}
    users = app_client.get("/api/v1/users?position=acceptor", headers=admin).json()
    assert users[0]["locked"] is True
    assert (
        app_client.post(f"/api/v1/users/{users[0]['id']}/unlock", headers=admin).status_code == 204
    )
    assert (
        app_client.post(TOKEN, data={"username": "acceptor", "password": DEMO_PASSWORD}).status_code
        == 200
    )


def test_unknown_user_is_a_plain_401(app_client: TestClient) -> None:
    r = app_client.post(TOKEN, data={"username": "nobody", "password": "x"})
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers


def test_missing_fields_are_named(app_client: TestClient) -> None:
    r = app_client.post(TOKEN, data={"username": "leader"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "password"
    r = app_client.post(TOKEN, data={"grant_type": "client_credentials"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "grant_type"


def test_admin_needs_totp_once(app_client: TestClient) -> None:
    no_code = app_client.post(TOKEN, data={"username": "admin", "password": DEMO_PASSWORD})
    assert no_code.status_code == 401 and no_code.json()["errors"][0]["field"] == "totp"
    bad = app_client.post(
        TOKEN, data={"username": "admin", "password": DEMO_PASSWORD, "totp": "000000"}
    )
    assert bad.status_code == 401
    code = pyotp.TOTP(ADMIN_TOTP_SECRET).now()
    form = {"username": "admin", "password": DEMO_PASSWORD, "totp": code}
    assert app_client.post(TOKEN, data=form).status_code == 200
    assert app_client.post(TOKEN, data=form).status_code == 401  # the same code twice


def test_refresh_rotation_and_replay(app_client: TestClient, scratch_url: str) -> None:
    first = tokens(app_client, "leader")
    grant = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = app_client.post(TOKEN, data=grant)
    assert second.status_code == 200 and second.json()["refresh_token"] != first["refresh_token"]
    replay = app_client.post(TOKEN, data=grant)
    assert replay.status_code == 401
    # the whole family is revoked: the rotated token and its access token stop working
    newer = {"grant_type": "refresh_token", "refresh_token": second.json()["refresh_token"]}
    assert app_client.post(TOKEN, data=newer).status_code == 401
    assert "auth.refresh_replay" in _audit_actions(scratch_url, "leader")


def test_logout_ends_the_session(scratch_url: str) -> None:
    settings = Settings(
        db=DatabaseSettings(url=scratch_url), security=SecuritySettings(basic_cache_s=0)
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        body = tokens(client, "leader")
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
        assert (
            client.post(
                "/api/v1/auth/logout", json={"refresh_token": body["refresh_token"]}
            ).status_code
            == 204
        )
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def _forged(kind: str, key: bytes) -> str:
    now = int(time.time())
    claims = {
        "iss": "cityops",
        "aud": "cityops-api",
        "sub": "1",
        "typ": "access",
        "fam": "x",
        "iat": now,
        "exp": now + 600,
        "jti": "j",
    }
    if kind == "none":
        return jwt.encode(claims, None, algorithm="none")
    if kind == "hs256":
        return jwt.encode(claims, key, algorithm="HS256")
    if kind == "expired":
        return issue_access(key, 1, "x", 1, now=now - 3600)
    if kind == "wrong-key":
        return issue_access(b"k" * 32, 1, "x", 600)
    if kind == "rs-confusion":  # RS256 header, HMAC'ed with a public key as the secret
        header = base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').rstrip(b"=").decode()
        body = base64.urlsafe_b64encode(b'{"sub":"1"}').rstrip(b"=").decode()
        return f"{header}.{body}.c2ln"
    return "not.a.jwt"


@pytest.mark.parametrize("kind", ["none", "hs256", "expired", "wrong-key", "rs-confusion", "junk"])
def test_bad_tokens_are_refused(client: TestClient, kind: str) -> None:
    key = KeyStore.load(SecuritySettings().key_dir).token_key
    r = client.get("/api/v1/layers", headers={"Authorization": f"Bearer {_forged(kind, key)}"})
    assert r.status_code == 401, r.text
    assert r.json()["code"] if False else r.json()["type"].endswith("invalid-token")
    assert "invalid_token" in r.headers["WWW-Authenticate"]


def test_unsupported_scheme(client: TestClient) -> None:
    r = client.get("/api/v1/layers", headers={"Authorization": "Digest abc"})
    assert r.status_code == 401


def test_http_basic_for_gis_clients(client: TestClient) -> None:
    good = base64.b64encode(f"leader:{DEMO_PASSWORD}".encode()).decode()
    r = client.get(
        "/ogc/collections/cases/items?f=json", headers={"Authorization": f"Basic {good}"}
    )
    assert r.status_code == 200, r.text
    assert client.get("/ogc/collections/cases/items?f=json").status_code == 401
    bad = base64.b64encode(b"leader:nope").decode()
    assert client.get("/health", headers={"Authorization": f"Basic {bad}"}).status_code == 401
    admin = base64.b64encode(f"admin:{DEMO_PASSWORD}".encode()).decode()
    assert client.get("/health", headers={"Authorization": f"Basic {admin}"}).status_code == 403


def test_api_keys(app_client: TestClient) -> None:
    admin = {"Authorization": f"Bearer {tokens(app_client, 'admin')['access_token']}"}
    created = app_client.post(
        "/api/v1/api-keys", headers=admin, json={"name": "QGIS 桌面", "scopes": ["cases:read"]}
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    url = "/ogc/collections/cases/items?f=json"
    assert app_client.get(url, headers={"X-API-Key": key}).status_code == 200
    basic = base64.b64encode(f"apikey:{key}".encode()).decode()
    assert app_client.get(url, headers={"Authorization": f"Basic {basic}"}).status_code == 200
    listed = app_client.get("/api/v1/api-keys", headers=admin).json()
    assert "key" not in listed[0] and listed[0]["scopes"] == ["cases:read"]
    bad_scope = app_client.post(
        "/api/v1/api-keys", headers=admin, json={"name": "xyz", "scopes": ["everything"]}
    )
    assert bad_scope.status_code == 409, bad_scope.text
    assert bad_scope.json()["errors"][0]["field"] == "scopes"
    revoke = app_client.delete(f"/api/v1/api-keys/{created.json()['id']}", headers=admin)
    assert revoke.status_code == 204
    assert app_client.get(url, headers={"X-API-Key": key}).status_code == 401
    assert app_client.get(url, headers={"X-API-Key": "cok_bad_key"}).status_code == 401


def test_separation_of_duties(app_client: TestClient) -> None:
    admin = {"Authorization": f"Bearer {tokens(app_client, 'admin')['access_token']}"}
    auditor = {"Authorization": f"Bearer {tokens(app_client, 'auditor')['access_token']}"}
    assert app_client.get("/api/v1/audit", headers=admin).status_code == 403
    assert app_client.get("/api/v1/audit", headers=auditor).status_code == 200
    assert app_client.get("/api/v1/users", headers=auditor).status_code == 403
    both = app_client.post(
        "/api/v1/users",
        headers=admin,
        json={
            "username": "superuser",
            "display_name": "超级",
            "password": "Str0ng!Passw0rd",
            "positions": ["admin", "auditor"],
        },
    )
    assert both.status_code == 409 and both.json()["errors"][0]["field"] == "positions"
    grab = app_client.put(
        "/api/v1/positions/auditor",
        headers=admin,
        json={
            "code": "auditor",
            "name": "审计员",
            "data_scope": "all",
            "permissions": ["audit:read", "cases:accept"],
        },
    )
    assert grab.status_code == 409


def test_user_directory_masks_and_reveals(app_client: TestClient, scratch_url: str) -> None:
    admin = {"Authorization": f"Bearer {tokens(app_client, 'admin')['access_token']}"}
    created = app_client.post(
        "/api/v1/users",
        headers=admin,
        json={
            "username": "jdy0099",
            "display_name": "钱多多",
            "password": "Dafeng#Jdy2026",
            "positions": ["inspector"],
            "grids": ["32090400100101"],
            "department_code": "T003",
            "phone": "13912345678",
            "id_number": "320982199001011234",
        },
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["phone"] == "139****5678" and user["id_number"].startswith("320982")
    assert "1234" in user["id_number"] and "19900101" not in user["id_number"]
    with psycopg.connect(libpq_url(scratch_url)) as conn:
        stored = conn.execute(
            "SELECT phone_enc, id_number_enc FROM city.users WHERE id = %s", (user["id"],)
        ).fetchone()
    assert stored[0].startswith("sm4gcm$") and "13912345678" not in stored[0]
    reveal = f"/api/v1/users/{user['id']}/personal"
    assert app_client.get(reveal, headers=admin).status_code == 403  # admin: no personal:read
    shift = {"Authorization": f"Bearer {tokens(app_client, 'shiftlead')['access_token']}"}
    shown = app_client.get(reveal, headers=shift)
    assert shown.json() == {"phone": "13912345678", "id_number": "320982199001011234"}
    assert "personal.read" in _audit_actions(scratch_url, "shiftlead")
    weak = app_client.post(
        "/api/v1/users",
        headers=admin,
        json={"username": "weakling", "display_name": "弱", "password": "abc"},
    )
    assert weak.status_code == 422 and weak.json()["errors"][0]["field"] == "password"
    login = app_client.post(TOKEN, data={"username": "jdy0099", "password": "Dafeng#Jdy2026"})
    assert login.json()["must_change_password"] is True


def test_change_own_password(app_client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {tokens(app_client, 'enforcer')['access_token']}"}
    weak = app_client.post(
        "/api/v1/auth/password",
        headers=headers,
        json={"old_password": DEMO_PASSWORD, "new_password": "short"},
    )
    assert weak.status_code == 422
    ok = app_client.post(
        "/api/v1/auth/password",
        headers=headers,
        json={"old_password": DEMO_PASSWORD, "new_password": "N3w!Strong-Pass9"},
    )
    assert ok.status_code == 204
    assert (
        app_client.post(
            TOKEN, data={"username": "enforcer", "password": "N3w!Strong-Pass9"}
        ).status_code
        == 200
    )


def test_totp_enrolment(app_client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {tokens(app_client, 'leader')['access_token']}"}
    setup = app_client.post("/api/v1/auth/totp/setup", headers=headers).json()
    assert setup["otpauth_uri"].startswith("otpauth://totp/")
    code = pyotp.TOTP(setup["secret"]).now()
    assert (
        app_client.post(
            "/api/v1/auth/totp/enable", headers=headers, json={"code": code}
        ).status_code
        == 204
    )
    no_code = app_client.post(TOKEN, data={"username": "leader", "password": DEMO_PASSWORD})
    assert no_code.status_code == 401


def test_data_classification(client: TestClient) -> None:
    labels = client.get("/api/v1/layers/data-classification").json()
    cases = next(e for e in labels if e["layer"] == "cases")
    assert cases["level"] == "重要数据" and cases["access"] == "cases:read"
    assert cases["fields"]["reporter_phone_enc"]["protection"] == "SM4 加密+脱敏"
    layers = {layer["id"]: layer for layer in client.get("/api/v1/layers").json()}
    assert layers["streets"]["access"] == "public" and layers["cases"]["scoped"] is True


def test_departments_and_positions_are_upserted_and_audited(
    app_client: TestClient, scratch_url: str
) -> None:
    admin = {"Authorization": f"Bearer {tokens(app_client, 'admin')['access_token']}"}
    office = {"code": "S009", "name": "测试街道办事处", "kind": "街道", "street_code": "320904002"}
    created = app_client.put("/api/v1/departments/S009", headers=admin, json=office)
    assert created.status_code == 200, created.text
    changed = app_client.put(
        "/api/v1/departments/S009", headers=admin, json={**office, "phone": "0515-1"}
    )
    assert changed.json()["phone"] == "0515-1"
    listed = {d["code"]: d for d in app_client.get("/api/v1/departments", headers=admin).json()}
    assert listed["S009"]["street_code"] == "320904002" and listed["S009"]["phone"] == "0515-1"
    mismatch = app_client.put("/api/v1/departments/S008", headers=admin, json=office)
    assert mismatch.status_code == 409 and mismatch.json()["errors"][0]["field"] == "code"
    post = {"code": "patrol", "name": "巡查员", "permissions": ["cases:read"], "data_scope": "grid"}
    assert app_client.put("/api/v1/positions/patrol", headers=admin, json=post).status_code == 200
    positions = app_client.get("/api/v1/positions", headers=admin).json()
    assert next(p for p in positions if p["code"] == "patrol")["data_scope"] == "grid"
    actions = _audit_actions(scratch_url, "admin")
    assert actions.count("department.put") == 2 and actions.count("position.put") == 1
