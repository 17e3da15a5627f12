"""Log in as the demo users in tests (they are loaded into the sample template)."""

from __future__ import annotations

import pyotp
from fastapi.testclient import TestClient

from data_samples.demo_users import ADMIN_TOTP_SECRET, DEMO_PASSWORD


def tokens(client: TestClient, username: str, password: str = DEMO_PASSWORD, **form: str) -> dict:
    """The token response for a password grant (asserting success)."""
    if username == "admin" and "totp" not in form:
        form["totp"] = pyotp.TOTP(ADMIN_TOTP_SECRET).now()
    response = client.post(
        "/api/v1/auth/token", data={"username": username, "password": password, **form}
    )
    assert response.status_code == 200, response.text
    return response.json()


_CACHE: dict[tuple[str, str], str] = {}


def bearer(client: TestClient, username: str) -> dict[str, str]:
    """An Authorization header for a demo user, cached per database.

    Cached because a TOTP code is good for one log-in only (the administrator's second
    log-in within 30 s would be refused as a replay) and to keep the suite fast.
    """
    key = (str(client.app.state.settings.db.url), username)  # type: ignore[attr-defined]
    if key not in _CACHE:
        _CACHE[key] = tokens(client, username)["access_token"]
    return {"Authorization": f"Bearer {_CACHE[key]}"}
