"""Run under Debian's system Python with python3-qgis: load layers the way QGIS users do.

Usage: python3 tests/qgis_probe.py BASE_URL WMTS_LAYER WMTS_STYLE WMTS_TMS
Prints one JSON object: for each source, whether QGIS accepts the layer, its CRS and features.
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import QgsApplication, QgsRasterLayer, QgsVectorLayer  # noqa: E402


def vector(uri: str, provider: str) -> dict:
    """Load a vector layer and report validity, CRS and feature count."""
    layer = QgsVectorLayer(uri, "probe", provider)
    return {
        "valid": layer.isValid(),
        "crs": layer.crs().authid(),
        "features": layer.featureCount() if layer.isValid() else None,
    }


def raster(uri: str) -> dict:
    """Load a WMTS layer through the WMS provider and report validity and CRS."""
    layer = QgsRasterLayer(uri, "probe", "wms")
    return {
        "valid": layer.isValid(),
        "crs": layer.crs().authid(),
    }


def main() -> None:
    """Probe OAPIF, WFS and WMTS on the given server."""
    base, wmts_layer, style, tms = sys.argv[1:5]
    app = QgsApplication([], False)
    app.initQgis()
    caps = f"{base}/wmts?SERVICE%3DWMTS%26REQUEST%3DGetCapabilities"
    out = {
        "oapif": vector(f"url='{base}/ogc' typename='unit_grids'", "OAPIF"),
        "wfs": vector(f"url='{base}/wfs' typename='city:unit_grids' version='2.0.0'", "WFS"),
        "wmts": raster(
            f"crs=EPSG:3857&dpiMode=7&format=image/png&layers={wmts_layer}"
            f"&styles={style}&tileMatrixSet={tms}&url={caps}"
        ),
    }
    print(json.dumps(out))
    app.exitQgis()


if __name__ == "__main__":
    main()
