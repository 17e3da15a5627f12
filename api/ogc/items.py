"""The GeoJSON fast path: ``/ogc/collections/{id}/items[/{featureId}]`` and ``/ogc/conformance``.

These routes are registered before the pygeoapi mount and match only when the client wants
JSON (``f=json``/``geojson``, or an Accept header not preferring HTML); HTML and JSON-LD fall
through to pygeoapi. The FeatureCollection is built by PostGIS; Python only concatenates bytes.
Items and item need read access to the collection (``layer_access``); a scoped collection
(案卷) answers only the rows in the caller's data scope (数据范围).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

import orjson
import psycopg
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from api.deps import get_conn
from api.ogc.conformance import CONFORMANCE
from api.ogc.context import OgcContext
from api.ogc.params import crs_param, items_request
from api.ogc.urls import rewrite, service_url
from api.security.policy import layer_access, public
from spatial.errors import NotFound
from spatial.features_db import fetch_feature, fetch_page
from spatial.security.principal import Principal
from spatial.settings import OgcSettings

Conn = Annotated[psycopg.AsyncConnection, Depends(get_conn)]
Reader = Annotated[Principal, Depends(layer_access("collection_id"))]
GEOJSON = "application/geo+json"
JSON_FORMATS = frozenset({"json", "geojson"})
_JSON_TYPES = ("application/geo+json", "application/json")


def _accept_q(accept: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        out[media.lower()] = max(q, out.get(media.lower(), 0.0))
    return out


def wants_html(scope: Scope) -> bool:
    """True when ``f`` or the Accept header asks for something other than (Geo)JSON."""
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    if "f" in query:
        return query["f"].lower() not in JSON_FORMATS
    headers = dict(scope.get("headers", []))
    accept = _accept_q(headers.get(b"accept", b"").decode("latin-1"))
    html = accept.get("text/html", 0.0)
    return html > 0 and html >= max((accept.get(t, 0.0) for t in _JSON_TYPES), default=0.0)


class JsonRoute(APIRoute):
    """An APIRoute that steps aside (to the pygeoapi mount) for HTML requests."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Match as usual, unless the request wants HTML."""
        match, child = super().matches(scope)
        if match is Match.FULL and wants_html(scope):
            return Match.NONE, {}
        return match, child


def _ctx(request: Request) -> OgcContext:
    return request.app.state.ogc


def _link(href: str, rel: str, type_: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": type_, "title": title}


def _items_links(
    request: Request, ogc: OgcSettings, cid: str, offset: int, limit: int, more: bool
) -> list[dict[str, str]]:
    base = f"{service_url(request, ogc)}/collections/{cid}"
    query = [(k, v) for k, v in parse_qsl(request.url.query) if k not in ("f", "offset")]

    def page(off: int, fmt: str = "json") -> str:
        return f"{base}/items?{urlencode([('f', fmt), *query, ('offset', off)])}"

    links = [
        _link(page(offset), "self", GEOJSON, "This document"),
        _link(page(offset, "html"), "alternate", "text/html", "This document as HTML"),
        _link(base, "collection", "application/json", "The collection"),
    ]
    if more:
        links.append(_link(page(offset + limit), "next", GEOJSON, "Next page"))
    if offset > 0:
        links.append(_link(page(max(0, offset - limit)), "prev", GEOJSON, "Previous page"))
    return links


def features_router() -> APIRouter:
    """Build the fast-path router (mounted before pygeoapi at ``/ogc``)."""
    router = APIRouter(prefix="/ogc", tags=["OGC API – Features"], route_class=JsonRoute)

    async def conformance(request: Request) -> Response:
        if wants_html(request.scope):
            return conformance_html(request, _ctx(request))
        return JSONResponse({"conformsTo": list(CONFORMANCE)})

    router.add_api_route(
        "/conformance",
        conformance,
        methods=["GET"],
        operation_id="ogcConformance",
        summary="Conformance classes (exactly what is implemented)",
        route_class_override=APIRoute,
        dependencies=[Depends(public)],
    )

    @router.get(
        "/collections/{collection_id}/items",
        operation_id="ogcItems",
        summary="Features of a collection (GeoJSON, built in PostGIS)",
    )
    async def items(
        collection_id: str, request: Request, principal: Reader, conn: Conn
    ) -> Response:
        ctx = _ctx(request)
        ogc = ctx.settings.ogc
        cols = await ctx.layer(conn, collection_id)
        req = items_request(request.query_params, cols, ogc, scope=principal.scope)
        q = req.query
        if req.hits:
            q = replace(q, limit=0)
        page = await fetch_page(conn, q, ogc.count_cap)
        more = page.returned == q.limit and (
            page.matched is None or q.offset + q.limit < page.matched
        )
        meta: dict[str, Any] = {}
        if page.matched is not None:
            meta["numberMatched"] = page.matched
        meta["numberReturned"] = page.returned
        meta["timeStamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        meta["links"] = _items_links(request, ogc, collection_id, q.offset, q.limit, more)
        body = b'{"type":"FeatureCollection","features":[' + page.features + b"],"
        return Response(
            body + orjson.dumps(meta)[1:],
            media_type=GEOJSON,
            headers={"Content-Crs": f"<{q.crs.uri}>"},
        )

    @router.get(
        "/collections/{collection_id}/items/{feature_id}",
        operation_id="ogcItem",
        summary="One feature (GeoJSON)",
    )
    async def item(
        collection_id: str, feature_id: str, request: Request, principal: Reader, conn: Conn
    ) -> Response:
        ctx = _ctx(request)
        cols = await ctx.layer(conn, collection_id)
        crs = crs_param(request.query_params, "crs")
        feature = await fetch_feature(conn, cols, feature_id, crs, principal.scope)
        if feature is None:
            raise NotFound(f"Collection '{collection_id}' has no feature '{feature_id}'.")
        base = f"{service_url(request, ctx.settings.ogc)}/collections/{collection_id}"
        links = [
            _link(f"{base}/items/{feature_id}?f=json", "self", GEOJSON, "This feature"),
            _link(f"{base}/items/{feature_id}?f=html", "alternate", "text/html", "As HTML"),
            _link(base, "collection", "application/json", "The collection"),
        ]
        body = feature[:-1] + b',"links":' + orjson.dumps(links) + b"}"
        return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{crs.uri}>"})

    return router


def conformance_html(request: Request, ctx: OgcContext) -> HTMLResponse:
    """The conformance page rendered by pygeoapi's template, listing our classes."""
    from pygeoapi.util import render_j2_template

    api = ctx.pygeoapi
    html = render_j2_template(
        api.tpl_config,
        api.config["server"]["templates"],
        "conformance.html",
        {"conformsTo": list(CONFORMANCE)},
        api.default_locale,
    )
    return HTMLResponse(rewrite(html.encode(), request, ctx.settings.ogc))
