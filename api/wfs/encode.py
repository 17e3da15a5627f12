"""Encode a GetFeature page as a GML 3.2 ``wfs:FeatureCollection`` or a GeoJSON collection."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

from api.wfs.params import PREFIX
from api.wfs.query import Column
from layers.registry import LayerSpec

NS = {
    "wfs": "http://www.opengis.net/wfs/2.0",
    "gml": "http://www.opengis.net/gml/3.2",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    PREFIX: "https://cityops.dev/city",
}
SCHEMAS = (
    "http://www.opengis.net/wfs/2.0 http://schemas.opengis.net/wfs/2.0/wfs.xsd "
    "http://www.opengis.net/gml/3.2 http://schemas.opengis.net/gml/3.2.1/gml.xsd"
)


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _member(spec: LayerSpec, columns: Sequence[Column], row: Sequence[object]) -> str:
    fid, values, geometry = row[0], row[1:-1], row[-1]
    props = "".join(
        f"<{PREFIX}:{c.name}>{escape(str(v))}</{PREFIX}:{c.name}>"
        for c, v in zip(columns, values, strict=True)
        if v is not None
    )
    return (
        f"<wfs:member><{PREFIX}:{spec.id} gml:id={quoteattr(f'{spec.id}.{fid}')}>"
        f"{props}<{PREFIX}:geom>{geometry}</{PREFIX}:geom></{PREFIX}:{spec.id}></wfs:member>"
    )


def gml_collection(
    spec: LayerSpec,
    columns: Sequence[Column],
    rows: Sequence[Sequence[object]],
    matched: int | None,
    describe_url: str,
    next_url: str | None,
) -> str:
    """The GML 3.2 response document."""
    xmlns = " ".join(f"xmlns:{k}={quoteattr(v)}" for k, v in NS.items())
    location = f"{SCHEMAS} {NS[PREFIX]} {describe_url}"
    attrs = (
        f'numberMatched="{"unknown" if matched is None else matched}" '
        f'numberReturned="{len(rows)}" timeStamp="{_now()}"'
    )
    if next_url:
        attrs += f" next={quoteattr(next_url)}"
    members = "".join(_member(spec, columns, row) for row in rows)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<wfs:FeatureCollection {xmlns} '
        f"xsi:schemaLocation={quoteattr(location)} {attrs}>{members}</wfs:FeatureCollection>"
    )


def geojson_collection(
    spec: LayerSpec,
    columns: Sequence[Column],
    rows: Sequence[Sequence[object]],
    matched: int | None,
    srid: int,
) -> str:
    """A GeoJSON FeatureCollection (coordinates in x/y order) with WFS paging counts."""
    features = [
        {
            "type": "Feature",
            "id": f"{spec.id}.{row[0]}",
            "properties": {c.name: v for c, v in zip(columns, row[1:-1], strict=True)},
            "geometry": json.loads(str(row[-1])),
        }
        for row in rows
    ]
    return json.dumps(
        {
            "type": "FeatureCollection",
            "numberMatched": matched if matched is not None else "unknown",
            "numberReturned": len(rows),
            "timeStamp": _now(),
            "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{srid}"}},
            "features": features,
        },
        ensure_ascii=False,
    )
