"""No route is left unprotected by accident: walk the OpenAPI document and every route's policy.

For each operation: anonymous callers get 401 where a login is needed, a citizen (公众, the
least-privileged position) gets 403 where a permission is needed, and public routes answer
both without 401/403. pygeoapi's own collection paths for the restricted ``cases`` layer are
walked from its OpenAPI document too.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.security.policy import (
    Operation,
    Policy,
    api_operations,
    doc_paths,
    policy_of,
    unguarded_routes,
)
from spatial.security.permissions import BUILTIN_POSITIONS
from tests.auth_support import bearer

SAMPLE_VALUES = {
    "collectionId": "cases",
    "collection_id": "cases",
    "feature_id": "1",
    "layer_id": "cases",
    "featureId": "1",
    "tileMatrixSetId": "WebMercatorQuad",
    "tileMatrix": "14",
    "tileRow": "6500",
    "tileCol": "13700",
    "z": "14",
    "x": "13700",
    "y": "6500",
    "user_id": "1",
    "key_id": "1",
    "code": "inspector",
    "basemap": "dafeng-light",
}


CITIZEN_PERMISSIONS = next(p for p in BUILTIN_POSITIONS if p.code == "public").permissions


def _operations(client: TestClient) -> list[tuple[str, str, Operation]]:
    routes = {(m, op.path): op for op in api_operations(client.app.routes) for m in op.methods}
    out = []
    for path, item in client.app.openapi()["paths"].items():
        for method in item:
            route = routes.get((method.upper(), path))
            if route is not None:
                out.append((method.upper(), path, route))
    return out


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLE_VALUES.get(m.group(1), "1"), path)


def _call(
    client: TestClient, method: str, path: str, headers: dict[str, str], policy: Policy
) -> Any:
    kwargs: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    if policy.kind == "layer" and f"{{{policy.param}}}" not in path:
        kwargs["params"] = {str(policy.param): "cases"}  # the layer is a query parameter
    return client.request(method, _url(path), **kwargs)


def test_every_route_has_exactly_one_policy(client: TestClient) -> None:
    assert unguarded_routes(client.app.routes, doc_paths(client.app)) == []


def test_policies_are_enforced_for_every_operation(client: TestClient) -> None:
    citizen = bearer(client, "citizen")
    operations = _operations(client)
    assert len(operations) > 40
    failures = []
    for method, path, route in operations:
        policy: Policy = policy_of(route)
        anonymous = _call(client, method, path, {}, policy)
        as_citizen = _call(client, method, path, citizen, policy)
        needs_login = policy.kind in ("authenticated", "permission") or (
            policy.kind == "layer" and "{" in path
        )
        if needs_login and anonymous.status_code != 401:
            failures.append(f"{method} {path}: anonymous got {anonymous.status_code}")
        citizen_lacks = policy.permission not in CITIZEN_PERMISSIONS
        if policy.kind == "permission" and citizen_lacks and as_citizen.status_code != 403:
            failures.append(f"{method} {path}: citizen got {as_citizen.status_code}")
        if policy.kind == "public" and anonymous.status_code in (401, 403):
            failures.append(f"{method} {path}: public route refused ({anonymous.status_code})")
        # 503 is a deliberate answer (e.g. basemaps not built in this checkout); 500 never is
        assert 500 not in (anonymous.status_code, as_citizen.status_code), (method, path)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "path",
    [
        "/ogc/collections/cases",
        "/ogc/collections/cases/items",
        "/ogc/collections/cases/items?f=html",
        "/ogc/collections/cases/items/1",
        "/ogc/collections/cases/queryables",
        "/ogc/collections/cases/schema",
        "/ogc/collections/cases/tiles",
        "/tiles/cases/14/13700/6500.mvt",
        "/wfs?service=WFS&version=2.0.0&request=GetFeature&typeNames=cases",
    ],
)
def test_restricted_layer_paths_need_a_login(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401, (path, response.status_code, response.text[:200])
    assert "WWW-Authenticate" in response.headers


def test_public_layers_stay_anonymous(client: TestClient) -> None:
    assert client.get("/ogc/collections/streets/items?f=json").status_code == 200
    listed = client.get("/ogc/collections?f=json").json()["collections"]
    ids = {c["id"] for c in listed}
    assert "streets" in ids and "cases" not in ids
    leader = client.get("/ogc/collections?f=json", headers=bearer(client, "leader")).json()
    assert "cases" in {c["id"] for c in leader["collections"]}
