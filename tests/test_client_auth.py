"""Real GIS clients read the protected ``cases`` layer with HTTP Basic or an API key (issue 5).

GDAL (OAPIF and WFS drivers), OWSLib and QGIS 3.22 cannot do OAuth2; they authenticate to
/ogc and /wfs of a live server with a user's password over HTTP Basic, with user ``apikey`` and
an API key as the password, or with an ``X-API-Key`` header. Anonymous callers do not see
``cases`` (hidden from listings, 401 + Basic challenge when asked for directly); public layers
still load without credentials. Only wrong-free credentials are sent: a wrong password would
count towards the demo user's lockout in the shared database.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import owslib.ogcapi
import psycopg
import pytest
from owslib.ogcapi.features import Features
from owslib.util import Authentication

from data_samples.demo_users import DEMO_PASSWORD
from spatial.security.accounts import Accounts
from spatial.security.keystore import KeyStore
from spatial.settings import SecuritySettings

USER = "leader"  # cases:read with data scope "all"; no second factor, so Basic is allowed
PROBE = Path(__file__).with_name("qgis_auth_probe.py")


def _scalar(psql_url: str, query: str) -> int:
    with psycopg.connect(psql_url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


async def _create_key(psql_url: str) -> tuple[int, str]:
    """An API key with ``cases:read``, made as the server would (same key directory)."""
    settings = SecuritySettings()
    accounts = Accounts(KeyStore.ensure(settings.key_dir), settings)
    async with await psycopg.AsyncConnection.connect(psql_url, autocommit=True) as conn:
        return await accounts.create_api_key(conn, "gis-client-test", ["cases:read"], "pytest")


@pytest.fixture(scope="module")
def api_key(psql_url: str) -> Iterator[str]:
    """One API key for the module, deleted afterwards."""
    key_id, key = asyncio.run(_create_key(psql_url))
    yield key
    with psycopg.connect(psql_url) as conn:
        conn.execute("DELETE FROM city.api_keys WHERE id = %s", (key_id,))


@pytest.fixture(scope="module")
def cases_count(psql_url: str) -> int:
    """How many cases the database holds (a leader's scope is all of them)."""
    return _scalar(psql_url, "SELECT count(*) FROM city.cases")


def _gdal_config(how: str, api_key: str) -> list[str]:
    """``--config`` options for one way of authenticating."""
    options = {
        "basic": {"GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": f"{USER}:{DEMO_PASSWORD}"},
        "apikey-basic": {"GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": f"apikey:{api_key}"},
        "apikey-header": {"GDAL_HTTP_HEADERS": f"X-API-Key: {api_key}"},
    }[how]
    return [arg for key, value in options.items() for arg in ("--config", key, value)]


def _ogrinfo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GDAL_HTTP_TIMEOUT": "60"}
    command = ["ogrinfo", "-ro", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def _feature_count(done: subprocess.CompletedProcess[str]) -> int:
    assert done.returncode == 0, done.stderr
    found = re.search(r"^Feature Count: (\d+)$", done.stdout, re.M)
    assert found, done.stdout
    return int(found.group(1))


CREDENTIALS = ["basic", "apikey-basic", "apikey-header"]


# -- GDAL: OGC API – Features --------------------------------------------------------------


def test_gdal_oapif_anonymous_is_refused(live_server: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{live_server}/ogc/collections/cases", timeout=30)  # noqa: S310
    assert refused.value.code == 401
    assert 'Basic realm="cityops"' in refused.value.headers["WWW-Authenticate"]
    hidden = _ogrinfo("-so", f"OAPIF:{live_server}/ogc", "cases")
    assert hidden.returncode != 0
    assert "Couldn't fetch requested layer cases" in hidden.stdout + hidden.stderr
    direct = _ogrinfo("-so", "-al", f"OAPIF:{live_server}/ogc/collections/cases")
    assert direct.returncode != 0
    assert "HTTP error code : 401" in direct.stderr, direct.stderr


@pytest.mark.parametrize("how", CREDENTIALS)
def test_gdal_oapif_reads_cases_with_credentials(
    live_server: str, api_key: str, cases_count: int, how: str
) -> None:
    config = _gdal_config(how, api_key)
    done = _ogrinfo(*config, "--debug", "ON", "-so", f"OAPIF:{live_server}/ogc", "cases")
    assert "Layer name: cases" in done.stdout, done.stderr
    assert _feature_count(done) == cases_count
    assert "/ogc/collections/cases/items?" in done.stderr  # items were fetched, not only listed


def test_gdal_oapif_public_layer_needs_no_credentials(live_server: str, psql_url: str) -> None:
    done = _ogrinfo("-so", f"OAPIF:{live_server}/ogc", "streets")
    assert _feature_count(done) == _scalar(psql_url, "SELECT count(*) FROM city.streets")


# -- GDAL: WFS 2.0 ---------------------------------------------------------------------------


def test_wfs_anonymous_getfeature_is_challenged(live_server: str) -> None:
    url = f"{live_server}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=city:cases"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=30)  # noqa: S310 - our own live server
    assert refused.value.code == 401
    assert refused.value.headers["WWW-Authenticate"] == 'Basic realm="cityops"'
    hidden = _ogrinfo("-so", f"WFS:{live_server}/wfs", "city:cases")
    assert hidden.returncode != 0
    assert "Couldn't fetch requested layer city:cases" in hidden.stdout + hidden.stderr


@pytest.mark.parametrize("how", CREDENTIALS)
def test_gdal_wfs_reads_cases_with_credentials(
    live_server: str, api_key: str, cases_count: int, how: str
) -> None:
    config = _gdal_config(how, api_key)
    done = _ogrinfo(*config, "--debug", "ON", f"WFS:{live_server}/wfs", "city:cases")
    assert "Layer name: city:cases" in done.stdout, done.stderr
    assert "REQUEST=GetFeature&TYPENAMES=city:cases" in done.stderr  # hits, then results if any
    assert _feature_count(done) == cases_count
    assert len(re.findall(r"^OGRFeature\(city:cases\):", done.stdout, re.M)) == cases_count


# -- OWSLib ----------------------------------------------------------------------------------


@pytest.fixture
def owslib_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Isolate OWSLib's module-level default headers.

    ``owslib.ogcapi.API`` updates its module dict ``REQUEST_HEADERS`` in place with the
    ``headers`` argument, so an ``X-API-Key`` would leak into every later ``Features``.
    """
    monkeypatch.setattr(owslib.ogcapi, "REQUEST_HEADERS", dict(owslib.ogcapi.REQUEST_HEADERS))


def test_owslib_anonymous_is_refused(live_server: str, owslib_headers: None) -> None:
    api = Features(f"{live_server}/ogc")
    assert "cases" not in api.feature_collections()
    with pytest.raises(RuntimeError, match='"status":401'):
        api.collection_items("cases", limit=5)


@pytest.mark.parametrize("how", CREDENTIALS)
def test_owslib_reads_cases_with_credentials(
    live_server: str, api_key: str, cases_count: int, owslib_headers: None, how: str
) -> None:
    url = f"{live_server}/ogc"
    if how == "basic":
        api = Features(url, auth=Authentication(username=USER, password=DEMO_PASSWORD))
    elif how == "apikey-basic":
        api = Features(url, auth=Authentication(username="apikey", password=api_key))
    else:
        api = Features(url, headers={"X-API-Key": api_key})
    assert "cases" in api.feature_collections()
    page = api.collection_items("cases", limit=5)
    assert page["numberMatched"] == cases_count
    assert page["numberReturned"] == len(page["features"]) == min(5, cases_count)


# -- QGIS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qgis(live_server: str, api_key: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the QGIS probe once, with its own auth database and network cache."""
    root = tmp_path_factory.mktemp("qgis-auth")
    runtime = root / "xdg"
    runtime.mkdir(mode=0o700)
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CACHE_HOME": str(root / "cache"),
        "QGIS_AUTH_DB_DIR_PATH": str(root / "auth"),
    }
    (root / "auth").mkdir()
    out = subprocess.run(
        ["/usr/bin/python3", str(PROBE), live_server, USER, DEMO_PASSWORD, api_key],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("source", ["oapif", "wfs"])
def test_qgis_anonymous_cannot_load_cases(qgis: dict, source: str) -> None:
    layer = qgis[f"{source}_anonymous"]
    assert not layer["valid"], layer
    if source == "oapif":
        assert any("requires authentication" in line for line in layer["log"]), layer


@pytest.mark.parametrize("how", ["basic", "authcfg", "apikey"])
@pytest.mark.parametrize("source", ["oapif", "wfs"])
def test_qgis_loads_cases_with_credentials(
    qgis: dict, cases_count: int, source: str, how: str
) -> None:
    layer = qgis[f"{source}_{how}"]
    assert layer["valid"], layer
    assert layer["features"] == cases_count


def test_qgis_public_layer_needs_no_credentials(qgis: dict, psql_url: str) -> None:
    layer = qgis["oapif_public"]
    assert layer["valid"], layer
    assert layer["features"] == _scalar(psql_url, "SELECT count(*) FROM city.streets")


def test_qgis_wfs_credentials_after_anonymous_visit(qgis: dict) -> None:
    assert qgis["wfs_basic_after_anonymous"]["valid"], qgis["wfs_basic_after_anonymous"]
