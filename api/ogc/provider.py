"""The pygeoapi feature provider: pygeoapi's arguments → ``FeatureQuery`` → the same SQL.

pygeoapi has already moved ``bbox`` into the storage CRS (EPSG:4490, lat/lon order) and
filter geometries into it too (tagged with that CRS); the provider runs the statement on the
app's pool through its event loop and parses the JSON only because pygeoapi wants a dict.

The provider runs in pygeoapi's worker thread, which gets a copy of the request's context
(``api.ogc.mount``), so ``current_principal()`` is the caller: a scoped layer answers only the
rows in its data scope (数据范围). The mount already refused non-readable collections; the
provider refuses them again, as a missing feature, should a request ever get this far.
"""

from __future__ import annotations

from typing import Any

import orjson
from pygeoapi.crs import CrsTransformSpec
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    SchemaType,
)
from pygeofilter import ast

from api.ogc.context import OgcContext, context
from spatial.crs import crs_uri
from spatial.errors import InvalidInput, NotFound
from spatial.features_catalog import LayerColumns
from spatial.features_crs import CRS84, STORAGE_SRID, OgcCrs, parse_crs
from spatial.features_db import fetch_feature, fetch_page
from spatial.features_sql import FeatureQuery, parse_datetime
from spatial.security.principal import Principal, current_principal

STORAGE: OgcCrs = parse_crs(crs_uri(STORAGE_SRID))


class CityFeatureProvider(BaseProvider):
    """A registry layer served from PostGIS by ``spatial.features_sql``."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        """Find the app context and layer named in ``data``."""
        super().__init__(provider_def)
        context_id, self.layer_id = str(self.data).split("/", 1)
        self.ctx: OgcContext = context(context_id)
        self._fields = self.get_fields()

    @property
    def cols(self) -> LayerColumns:
        """The layer's columns (the checked catalog once the app has read it)."""
        return self.ctx.describe(self.layer_id)

    def get_fields(self) -> dict[str, dict[str, str]]:
        """Every published property with its JSON Schema type."""
        cols = self.cols
        return {name: cols.json_schema(name) for name in cols.properties}

    def get_schema(self, schema_type: SchemaType = SchemaType.item) -> tuple[str, dict[str, Any]]:
        """JSON Schema of a feature's properties."""
        props = {k: {**v, "title": k} for k, v in self.get_fields().items()}
        props["geometry"] = {"format": "geometry-any", "x-ogc-role": "primary-geometry"}
        return "application/schema+json", {"type": "object", "properties": props}

    def _checked(self) -> LayerColumns:
        return self.ctx.run(lambda conn: self.ctx.layer(conn, self.layer_id))

    def _reader(self) -> Principal:
        """The caller, when it may read this layer (defence in depth behind ``OgcMount``)."""
        principal = current_principal()
        permission = self.ctx.registry.get(self.layer_id).read_permission
        if permission and not principal.can(permission):
            raise ProviderItemNotFoundError(user_msg=f"No collection '{self.layer_id}'")
        return principal

    @staticmethod
    def _out_crs(spec: CrsTransformSpec | None) -> OgcCrs:
        return STORAGE if spec is None else parse_crs(spec.target_crs_uri)

    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: list[float] | None = None,
        datetime_: str | None = None,
        properties: list[tuple[str, str]] | None = None,
        sortby: list[dict[str, str]] | None = None,
        select_properties: list[str] | None = None,
        skip_geometry: bool = False,
        filterq: ast.Node | None = None,
        crs_transform_spec: CrsTransformSpec | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Run the items query in PostGIS; pygeoapi wants a FeatureCollection dict."""
        principal = self._reader()
        try:
            cols = self._checked()
            sortable = cols.queryables
            keys = tuple((s["property"], s["order"] == "-") for s in sortby or ())
            bad = [k for k, _ in keys if k not in sortable]
            bad += [k for k, _ in properties or () if k not in sortable]
            if bad:
                raise InvalidInput(f"Not a queryable: {', '.join(bad)}")
            q = FeatureQuery(
                cols=cols,
                limit=0 if resulttype == "hits" else limit,
                offset=offset,
                bbox=(bbox[1], bbox[0], bbox[3], bbox[2]) if bbox else None,  # lat/lon → x/y
                bbox_crs=STORAGE,
                crs=self._out_crs(crs_transform_spec),
                filter=filterq,
                filter_crs=CRS84,  # for BBOX literals; geometries carry their (storage) CRS
                literal_crs=True,
                equals=tuple(properties or ()),
                time=parse_datetime(datetime_) if datetime_ else None,
                sortby=keys,
                properties=tuple(select_properties) if select_properties else None,
                skip_geometry=skip_geometry,
                scope=principal.scope,
            )
            cap = self.ctx.settings.ogc.count_cap
            page = self.ctx.run(lambda conn: fetch_page(conn, q, cap))
        except InvalidInput as exc:
            raise ProviderInvalidQueryError(user_msg=str(exc)) from None
        features = b'{"type":"FeatureCollection","features":[' + page.features + b"]}"
        collection = orjson.loads(features)
        collection["numberReturned"] = page.returned
        if page.matched is not None:
            collection["numberMatched"] = page.matched
        return collection

    def get(self, identifier: str, **kwargs: Any) -> dict[str, Any]:
        """One feature by id (404 when absent)."""
        crs = self._out_crs(kwargs.get("crs_transform_spec"))
        scope = self._reader().scope
        try:
            cols = self._checked()
            feature = self.ctx.run(
                lambda conn: fetch_feature(conn, cols, str(identifier), crs, scope)
            )
        except NotFound as exc:
            raise ProviderItemNotFoundError(user_msg=str(exc)) from None
        if feature is None:
            raise ProviderItemNotFoundError(user_msg=f"No feature '{identifier}'")
        return orjson.loads(feature)
