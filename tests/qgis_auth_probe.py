"""Run under Debian's system Python with python3-qgis: load the protected ``cases`` layer.

Usage: python3 tests/qgis_auth_probe.py BASE_URL USERNAME PASSWORD API_KEY
Prints one JSON object: for each way of authenticating (none, credentials in the URI, a Basic
authcfg from the authentication database, ``apikey`` + key), whether QGIS accepts the layer,
its feature count and what QGIS logged. ``QGIS_AUTH_DB_DIR_PATH`` and ``XDG_CACHE_HOME``
should point at throwaway directories (the test sets them).

QGIS's network cache is cleared before each load, except for ``wfs_basic_after_anonymous``:
that one shows what a user sees when an anonymous GetCapabilities is still in the cache.
Never call ``layer.error().summary()`` here: it crashes QGIS 3.22 outside the GUI.
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QGIS_AUTH_DB_DIR_PATH", tempfile.mkdtemp(prefix="qgis-auth-"))

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsAuthMethodConfig,
    QgsNetworkAccessManager,
    QgsVectorLayer,
)

MESSAGES: list[str] = []


def basic_authcfg(username: str, password: str) -> str:
    """Store a Basic configuration in a fresh authentication database; return its id."""
    manager = QgsApplication.authManager()
    if not manager.setMasterPassword("probe-master", True):
        raise SystemExit("cannot set the QGIS master password")
    config = QgsAuthMethodConfig("Basic")
    config.setName("cityops")
    config.setConfig("username", username)
    config.setConfig("password", password)
    stored, config = manager.storeAuthenticationConfig(config)
    if not stored:
        raise SystemExit("cannot store the QGIS Basic authentication configuration")
    return config.id()


def load(uri: str, provider: str, clear_cache: bool = True) -> dict:
    """Load a vector layer; report validity, feature count and the log lines it produced."""
    if clear_cache:
        QgsNetworkAccessManager.instance().cache().clear()
    MESSAGES.clear()
    layer = QgsVectorLayer(uri, "probe", provider)
    QgsApplication.processEvents()
    return {
        "valid": layer.isValid(),
        "features": layer.featureCount() if layer.isValid() else None,
        "log": list(MESSAGES),
    }


def main() -> None:
    """Probe OAPIF and WFS ``cases`` with each kind of credential."""
    base, username, password, api_key = sys.argv[1:5]
    app = QgsApplication([], False)
    app.initQgis()
    QgsApplication.messageLog().messageReceived.connect(
        lambda message, tag, _level: MESSAGES.append(f"{tag}: {message}"[:300])
    )
    authcfg = basic_authcfg(username, password)
    oapif = f"url='{base}/ogc' typename='cases'"
    wfs = f"url='{base}/wfs' typename='city:cases' version='2.0.0'"
    credentials = {
        "anonymous": "",
        "basic": f" username='{username}' password='{password}'",
        "authcfg": f" authcfg='{authcfg}'",
        "apikey": f" username='apikey' password='{api_key}'",
    }
    out = {}
    for how, extra in credentials.items():
        out[f"oapif_{how}"] = load(oapif + extra, "OAPIF")
        out[f"wfs_{how}"] = load(wfs + extra, "WFS")
    out["oapif_public"] = load(f"url='{base}/ogc' typename='streets'", "OAPIF")
    load(wfs, "WFS")
    out["wfs_basic_after_anonymous"] = load(wfs + credentials["basic"], "WFS", clear_cache=False)
    print(json.dumps(out, ensure_ascii=False))
    app.exitQgis()


if __name__ == "__main__":
    main()
