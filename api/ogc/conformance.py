"""The conformance classes ``/ogc/conformance`` declares: only what the tests prove."""

from __future__ import annotations

from typing import Final

_F1: Final = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
_F2: Final = "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/"
_F3: Final = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
_CQL2: Final = "http://www.opengis.net/spec/cql2/1.0/conf/"
_COMMON: Final = "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/"

CONFORMANCE: Final = (
    _COMMON + "core",
    _COMMON + "landing-page",
    _COMMON + "json",
    _COMMON + "html",
    _COMMON + "oas30",
    _F1 + "core",
    _F1 + "geojson",
    _F1 + "html",
    _F1 + "oas30",
    _F2 + "crs",
    _F3 + "queryables",
    _F3 + "queryables-query-parameters",
    _F3 + "filter",
    _F3 + "features-filter",
    _CQL2 + "cql2-text",
    _CQL2 + "cql2-json",
    _CQL2 + "basic-cql2",
    _CQL2 + "advanced-comparison-operators",
    _CQL2 + "case-insensitive-comparison",
    _CQL2 + "basic-spatial-functions",
    _CQL2 + "basic-spatial-functions-plus-points",
    _CQL2 + "spatial-functions",
    _CQL2 + "property-property",
)
