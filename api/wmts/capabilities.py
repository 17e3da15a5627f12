"""Build the WMTS 1.0.0 ``Capabilities`` document (KVP and RESTful encodings)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from lxml import etree

from api.ows_errors import OWS
from api.wmts.catalogue import Bounds, WmtsLayer
from api.wmts.styles import DEFAULT_STYLE
from api.wmts.tms import MAX_ZOOM, TMS_INFO, get_tms

WMTS = "http://www.opengis.net/wmts/1.0"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{WMTS} http://schemas.opengis.net/wmts/1.0/wmtsGetCapabilities_response.xsd"
REST_TEMPLATE = (
    "{base}/1.0.0/{layer}/{{Style}}/{{TileMatrixSet}}/{{TileMatrix}}/{{TileRow}}/{{TileCol}}.png"
)

NSMAP = {None: WMTS, "ows": OWS, "xlink": XLINK, "xsi": XSI}


def _w(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{WMTS}}}{tag}", attrs)
    el.text = text
    return el


def _o(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{OWS}}}{tag}", attrs)
    el.text = text
    return el


@lru_cache(maxsize=1024)
def tile_limits(bounds: Bounds, tms_id: str) -> tuple[tuple[int, int, int, int, int], ...]:
    """Per zoom: ``(z, min_row, max_row, min_col, max_col)`` of the tiles covering ``bounds``."""
    tms = get_tms(tms_id)
    west, south, east, north = bounds
    eps = 1e-9
    out = []
    for z in range(MAX_ZOOM + 1):
        ul = tms.tile(west + eps, north - eps, z)
        lr = tms.tile(max(east - eps, west + eps), min(south + eps, north - eps), z)
        out.append((z, ul.y, lr.y, ul.x, lr.x))
    return tuple(out)


def _operation(meta: etree._Element, name: str, gets: Sequence[tuple[str, str]]) -> None:
    http = _o(_o(_o(meta, "Operation", name=name), "DCP"), "HTTP")
    for href, encoding in gets:
        get = _o(http, "Get", **{f"{{{XLINK}}}href": href})
        allowed = _o(_o(get, "Constraint", name="GetEncoding"), "AllowedValues")
        _o(allowed, "Value", encoding)


def _service(root: etree._Element, title: str, base: str) -> None:
    ident = _o(root, "ServiceIdentification")
    _o(ident, "Title", f"{title} — WMTS")
    _o(
        ident,
        "Abstract",
        "Basemaps (light, dark) and every published layer rendered to PNG; "
        "tile matrix sets WebMercatorQuad (EPSG:3857) and CGCS2000Quad (EPSG:4490).",
    )
    keywords = _o(ident, "Keywords")
    for word in ("WMTS", "CGCS2000", "底图", "大丰区"):
        _o(keywords, "Keyword", word)
    _o(ident, "ServiceType", "OGC WMTS")
    _o(ident, "ServiceTypeVersion", "1.0.0")
    _o(ident, "Fees", "none")
    _o(ident, "AccessConstraints", "none")
    provider = _o(root, "ServiceProvider")
    _o(provider, "ProviderName", title)
    _o(provider, "ServiceContact")
    meta = _o(root, "OperationsMetadata")
    _operation(
        meta,
        "GetCapabilities",
        [(f"{base}?", "KVP"), (f"{base}/1.0.0/WMTSCapabilities.xml", "RESTful")],
    )
    _operation(meta, "GetTile", [(f"{base}?", "KVP"), (f"{base}/1.0.0/", "RESTful")])


def _layer(contents: etree._Element, layer: WmtsLayer, base: str) -> None:
    el = _w(contents, "Layer")
    _o(el, "Title", layer.title)
    _o(el, "Abstract", layer.abstract)
    if layer.keywords:
        keywords = _o(el, "Keywords")
        for word in layer.keywords:
            _o(keywords, "Keyword", word)
    bbox = _o(el, "WGS84BoundingBox", crs="urn:ogc:def:crs:OGC:2:84")
    _o(bbox, "LowerCorner", f"{layer.bounds[0]:.8f} {layer.bounds[1]:.8f}")
    _o(bbox, "UpperCorner", f"{layer.bounds[2]:.8f} {layer.bounds[3]:.8f}")
    _o(el, "Identifier", layer.id)
    style = _w(el, "Style", isDefault="true")
    _o(style, "Title", "default")
    _o(style, "Identifier", DEFAULT_STYLE)
    _w(el, "Format", "image/png")
    for tms_id in TMS_INFO:
        link = _w(el, "TileMatrixSetLink")
        _w(link, "TileMatrixSet", tms_id)
        limits = _w(link, "TileMatrixSetLimits")
        for z, min_row, max_row, min_col, max_col in tile_limits(layer.bounds, tms_id):
            lim = _w(limits, "TileMatrixLimits")
            _w(lim, "TileMatrix", str(z))
            _w(lim, "MinTileRow", str(min_row))
            _w(lim, "MaxTileRow", str(max_row))
            _w(lim, "MinTileCol", str(min_col))
            _w(lim, "MaxTileCol", str(max_col))
    template = REST_TEMPLATE.format(base=base, layer=layer.id)
    _w(el, "ResourceURL", format="image/png", resourceType="tile", template=template)


def _tile_matrix_set(contents: etree._Element, tms_id: str) -> None:
    info, tms = TMS_INFO[tms_id], get_tms(tms_id)
    el = _w(contents, "TileMatrixSet")
    _o(el, "Title", info.title)
    _o(el, "Identifier", tms_id)
    _o(el, "SupportedCRS", info.supported_crs)
    if info.well_known_scale_set:
        _w(el, "WellKnownScaleSet", info.well_known_scale_set)
    for matrix in tms.tileMatrices[: MAX_ZOOM + 1]:
        tm = _w(el, "TileMatrix")
        _o(tm, "Identifier", matrix.id)
        _w(tm, "ScaleDenominator", repr(matrix.scaleDenominator))
        _w(tm, "TopLeftCorner", " ".join(repr(float(v)) for v in matrix.pointOfOrigin))
        _w(tm, "TileWidth", str(matrix.tileWidth))
        _w(tm, "TileHeight", str(matrix.tileHeight))
        _w(tm, "MatrixWidth", str(matrix.matrixWidth))
        _w(tm, "MatrixHeight", str(matrix.matrixHeight))


def capabilities_xml(layers: Sequence[WmtsLayer], base: str, title: str) -> bytes:
    """The Capabilities document for ``layers``, with URLs under ``base`` (``…/wmts``)."""
    root = etree.Element(
        f"{{{WMTS}}}Capabilities",
        {"version": "1.0.0", f"{{{XSI}}}schemaLocation": SCHEMA_LOCATION},
        nsmap=NSMAP,
    )
    _service(root, title, base)
    contents = _w(root, "Contents")
    for layer in layers:
        _layer(contents, layer, base)
    for tms_id in TMS_INFO:
        _tile_matrix_set(contents, tms_id)
    _w(root, "ServiceMetadataURL", **{f"{{{XLINK}}}href": f"{base}/1.0.0/WMTSCapabilities.xml"})
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True)
