"""Documents listing what the caller may read are never cached (capabilities, collections)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

PER_CALLER = [
    "/wfs?service=WFS&request=GetCapabilities",
    "/wmts?service=WMTS&request=GetCapabilities",
    "/ogc/collections?f=json",
    "/ogc/?f=json",
]


@pytest.mark.parametrize("path", PER_CALLER)
def test_anonymous_listing_is_not_cacheable(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert "Authorization" in response.headers["vary"]


def test_collection_items_keep_their_caching(client: TestClient) -> None:
    response = client.get("/ogc/collections/streets?f=json")
    assert response.status_code == 200
    assert response.headers.get("cache-control") != "no-store"
