"""Items query parameters → a validated ``FeatureQuery``; every problem names its parameter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from starlette.datastructures import QueryParams

from spatial.errors import FieldIssue, InvalidInput
from spatial.features_catalog import LayerColumns
from spatial.features_cql import FILTER_LANGS, parse_filter
from spatial.features_crs import CRS84, OgcCrs, bbox_xy, parse_bbox, parse_crs
from spatial.features_sql import FeatureQuery, parse_datetime
from spatial.security.principal import DataScope
from spatial.settings import OgcSettings

STANDARD: Final = frozenset(
    {
        "f",
        "lang",
        "limit",
        "offset",
        "bbox",
        "bbox-crs",
        "crs",
        "datetime",
        "filter",
        "filter-lang",
        "filter-crs",
        "sortby",
        "properties",
        "skipGeometry",
        "resulttype",
    }
)


@dataclass(frozen=True)
class ItemsRequest:
    """The query plus what only the response needs."""

    query: FeatureQuery
    hits: bool = False


def bad(param: str, message: str) -> InvalidInput:
    """A 400 problem naming ``param``."""
    return InvalidInput(f"Invalid parameter '{param}': {message}", [FieldIssue(param, message)])


def single(params: QueryParams, name: str) -> str | None:
    """One value of ``name``; repeating a parameter is an error."""
    values = params.getlist(name)
    if len(values) > 1:
        raise bad(name, "given more than once")
    return values[0] if values else None


def _int(params: QueryParams, name: str, default: int, low: int, high: int) -> int:
    raw = single(params, name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise bad(name, "must be an integer") from None
    if not low <= value <= high:
        raise bad(name, f"must be between {low} and {high}")
    return value


def crs_param(params: QueryParams, name: str) -> OgcCrs:
    """``crs``/``bbox-crs``/``filter-crs`` (default CRS84)."""
    raw = single(params, name)
    if raw is None:
        return CRS84
    try:
        return parse_crs(raw)
    except ValueError as exc:
        raise bad(name, str(exc)) from None


def _names(raw: str, allowed: tuple[str, ...], param: str) -> list[str]:
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise bad(param, f"unknown {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return names


def _sortby(raw: str | None, cols: LayerColumns) -> tuple[tuple[str, bool], ...]:
    if raw is None:
        return ()
    keys = []
    for item in (i.strip() for i in raw.split(",")):
        desc = item.startswith("-")
        name = item.lstrip("+-").strip()
        _names(name, cols.queryables, "sortby")
        if not name:
            raise bad("sortby", "empty sort key")
        keys.append((name, desc))
    return tuple(keys)


def _bool(params: QueryParams, name: str) -> bool:
    raw = (single(params, name) or "false").strip().lower()
    if raw not in ("true", "false"):
        raise bad(name, "must be true or false")
    return raw == "true"


def items_request(
    params: QueryParams, cols: LayerColumns, ogc: OgcSettings, *, scope: DataScope
) -> ItemsRequest:
    """Validate every items parameter against the layer and the service limits.

    ``scope`` is the caller's data scope (数据范围); it limits scoped layers only.
    """
    extra = [k for k in params if k not in STANDARD and k not in cols.queryables]
    if extra:
        raise bad(extra[0], "unknown parameter (not a standard parameter nor a queryable)")
    equals = tuple((k, v) for k in params if k in cols.queryables for v in [single(params, k)])
    resulttype = (single(params, "resulttype") or "results").lower()
    if resulttype not in ("results", "hits"):
        raise bad("resulttype", "must be results or hits")
    bbox_crs = crs_param(params, "bbox-crs")
    raw_bbox = single(params, "bbox")
    bbox = None
    if raw_bbox is not None:
        try:
            bbox = bbox_xy(parse_bbox(raw_bbox), bbox_crs)
        except ValueError as exc:
            raise bad("bbox", str(exc)) from None
    elif single(params, "bbox-crs") is not None:
        raise bad("bbox-crs", "given without bbox")
    raw_filter = single(params, "filter")
    filter_lang = single(params, "filter-lang") or "cql2-text"
    if filter_lang not in FILTER_LANGS:
        raise bad("filter-lang", f"must be one of {', '.join(FILTER_LANGS)}")
    props = single(params, "properties")
    raw_time = single(params, "datetime")
    query = FeatureQuery(
        cols=cols,
        limit=_int(params, "limit", ogc.default_limit, 1, ogc.max_limit),
        offset=_int(params, "offset", 0, 0, 2**31 - 1),
        bbox=bbox,
        bbox_crs=bbox_crs,
        crs=crs_param(params, "crs"),
        filter=None if raw_filter is None else parse_filter(raw_filter, filter_lang),
        filter_crs=crs_param(params, "filter-crs"),
        equals=equals,
        time=None if raw_time is None else parse_datetime(raw_time),
        sortby=_sortby(single(params, "sortby"), cols),
        properties=None if props is None else tuple(_names(props, cols.properties, "properties")),
        skip_geometry=_bool(params, "skipGeometry"),
        scope=scope,
    )
    return ItemsRequest(query, hits=resulttype == "hits")
