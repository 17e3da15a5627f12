"""The pygeoapi configuration, generated from the layer registry (no hand-kept YAML)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from api.ogc.context import OgcContext
from api.ogc.urls import configured_url
from spatial.crs import CRS84_URI, crs_uri
from spatial.features_crs import SUPPORTED_URIS

PROVIDER: Final = "api.ogc.provider.CityFeatureProvider"
TEMPLATES_DIR: Final = Path(__file__).resolve().parent / "templates"
_TITLE_FIELDS: Final = ("name", "standard_address", "case_no")


def _resource(ctx: OgcContext, layer_id: str, shared: dict[str, Any]) -> dict[str, Any]:
    cols = ctx.describe(layer_id)
    spec = cols.spec
    spatial = shared["spatial"]
    if cols.extent is not None:
        spatial = {"bbox": [round(v, 6) for v in cols.extent], "crs": CRS84_URI}
    extents: dict[str, Any] = {"spatial": spatial}
    if spec.temporal:
        extents["temporal"] = {"begin": None, "end": None}
    title_field = next((f for f in _TITLE_FIELDS if f in cols.properties), spec.pk)
    provider: dict[str, Any] = {
        "type": "feature",
        "name": PROVIDER,
        "data": f"{ctx.id}/{spec.id}",  # a string: pygeoapi would "translate" a dict
        "id_field": spec.pk,
        "title_field": title_field,
        "geom_field": spec.geom,
        "storage_crs": crs_uri(spec.srid),
        "crs": shared["crs"],
        "properties": list(cols.queryables),
    }
    if spec.temporal:
        provider["time_field"] = spec.temporal
    return {
        "type": "collection",
        "title": spec.title,
        "description": spec.description or f"{spec.title}（{'/'.join(spec.tree)}）",
        "keywords": list(spec.keywords or spec.tree),
        "extents": extents,
        "links": [],
        "providers": [provider],
    }


def pygeoapi_config(ctx: OgcContext) -> dict[str, Any]:
    """The whole pygeoapi configuration dict for this app."""
    s = ctx.settings
    # Shared objects become YAML aliases: a shorter file for pygeoapi's pure-Python loader.
    shared = {
        "spatial": {"bbox": list(s.ogc.extent), "crs": CRS84_URI},
        "crs": list(SUPPORTED_URIS),
    }
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": 8000},
            "url": configured_url(s.ogc),
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "gzip": False,
            "languages": ["zh-CN", "en-US"],
            "pretty_print": False,
            "admin": False,
            "limits": {
                "default_items": s.ogc.default_limit,
                "max_items": s.ogc.max_limit,
                "on_exceed": "error",
            },
            "map": {"url": s.ogc.basemap_url, "attribution": s.ogc.basemap_attribution},
            "templates": {"path": str(TEMPLATES_DIR)},
        },
        "logging": {"level": "WARNING"},
        "metadata": {
            "identification": {
                "title": s.title,
                "description": f"{s.county_name}（{s.county_code}）城市运行管理服务平台 — "
                "OGC API – Features; 存储坐标系 CGCS2000 (EPSG:4490).",
                "keywords": ["运管服", "城市部件", "网格", s.county_name],
                "keywords_type": "theme",
                "terms_of_service": "",
                "url": configured_url(s.ogc),
            },
            "license": {"name": "内部使用 (internal use)", "url": configured_url(s.ogc)},
            "provider": {"name": s.title, "url": configured_url(s.ogc)},
            "contact": {
                "name": f"{s.county_name}城市运行管理服务中心",
                "position": "GIS",
                "country": "中国",
                "city": "盐城市",
                "email": "gis@example.invalid",
                "url": configured_url(s.ogc),
                "role": "pointOfContact",
            },
        },
        "resources": {spec.id: _resource(ctx, spec.id, shared) for spec in ctx.registry},
    }
