"""WFS 2.0 GetCapabilities and DescribeFeatureType documents, generated from the registry."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from api.wfs.encode import NS
from api.wfs.params import PREFIX, SUPPORTED_SRIDS
from api.wfs.query import Column
from layers.registry import LayerSpec

XSD_TYPES = {
    "integer": "xs:int",
    "bigint": "xs:long",
    "smallint": "xs:short",
    "double precision": "xs:double",
    "real": "xs:float",
    "numeric": "xs:decimal",
    "boolean": "xs:boolean",
    "date": "xs:date",
    "timestamp with time zone": "xs:dateTime",
    "timestamp without time zone": "xs:dateTime",
}
GML_PROPERTY = {
    "POINT": "gml:PointPropertyType",
    "MULTILINESTRING": "gml:MultiCurvePropertyType",
    "MULTIPOLYGON": "gml:MultiSurfacePropertyType",
    "POLYGON": "gml:PolygonPropertyType",
}
OUTPUT_FORMATS = ("application/gml+xml; version=3.2", "application/json")
CONSTRAINTS = {
    "ImplementsBasicWFS": "FALSE",
    "ImplementsTransactionalWFS": "FALSE",
    "ImplementsLockingWFS": "FALSE",
    "KVPEncoding": "TRUE",
    "XMLEncoding": "FALSE",
    "SOAPEncoding": "FALSE",
    "ImplementsInheritance": "FALSE",
    "ImplementsRemoteResolve": "FALSE",
    "ImplementsResultPaging": "TRUE",
    "ImplementsStandardJoins": "FALSE",
    "ImplementsSpatialJoins": "FALSE",
    "ImplementsTemporalJoins": "FALSE",
    "ImplementsFeatureVersioning": "FALSE",
    "ManageStoredQueries": "FALSE",
}


def describe_feature_type(specs: Sequence[tuple[LayerSpec, Sequence[Column]]]) -> str:
    """An XML Schema with one element per feature type (GML 3.2 application schema)."""
    types = []
    for spec, columns in specs:
        props = "".join(
            f'<xs:element name="{c.name}" type="{XSD_TYPES.get(c.data_type, "xs:string")}" '
            'minOccurs="0" nillable="true"/>'
            for c in columns
        )
        geom = f'<xs:element name="geom" type="{GML_PROPERTY[spec.geometry_type]}"/>'
        types.append(
            f'<xs:element name="{spec.id}" type="{PREFIX}:{spec.id}Type" '
            'substitutionGroup="gml:AbstractFeature"/>'
            f'<xs:complexType name="{spec.id}Type"><xs:complexContent>'
            '<xs:extension base="gml:AbstractFeatureType"><xs:sequence>'
            f"{props}{geom}</xs:sequence></xs:extension></xs:complexContent></xs:complexType>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:gml="{NS["gml"]}" '
        f'xmlns:{PREFIX}="{NS[PREFIX]}" targetNamespace="{NS[PREFIX]}" '
        'elementFormDefault="qualified" version="1.0">'
        f'<xs:import namespace="{NS["gml"]}" '
        'schemaLocation="http://schemas.opengis.net/gml/3.2.1/gml.xsd"/>'
        + "".join(types)
        + "</xs:schema>"
    )


def _operation(name: str, url: str, params: dict[str, Sequence[str]] | None = None) -> str:
    values = "".join(
        f'<ows:Parameter name="{p}"><ows:AllowedValues>'
        + "".join(f"<ows:Value>{escape(v)}</ows:Value>" for v in vs)
        + "</ows:AllowedValues></ows:Parameter>"
        for p, vs in (params or {}).items()
    )
    return (
        f'<ows:Operation name="{name}"><ows:DCP><ows:HTTP>'
        f"<ows:Get xlink:href={quoteattr(url + '?')}/></ows:HTTP></ows:DCP>{values}"
        "</ows:Operation>"
    )


def _feature_type(spec: LayerSpec, bbox: Sequence[float]) -> str:
    other = "".join(
        f"<wfs:OtherCRS>urn:ogc:def:crs:EPSG::{s}</wfs:OtherCRS>"
        for s in SUPPORTED_SRIDS
        if s != spec.srid
    )
    formats = "".join(f"<wfs:Format>{escape(f)}</wfs:Format>" for f in OUTPUT_FORMATS)
    return (
        f"<wfs:FeatureType><wfs:Name>{PREFIX}:{spec.id}</wfs:Name>"
        f"<wfs:Title>{escape(spec.title)}</wfs:Title>"
        f"<wfs:DefaultCRS>urn:ogc:def:crs:EPSG::{spec.srid}</wfs:DefaultCRS>{other}"
        f"<wfs:OutputFormats>{formats}</wfs:OutputFormats>"
        "<ows:WGS84BoundingBox>"
        f"<ows:LowerCorner>{bbox[0]} {bbox[1]}</ows:LowerCorner>"
        f"<ows:UpperCorner>{bbox[2]} {bbox[3]}</ows:UpperCorner>"
        "</ows:WGS84BoundingBox></wfs:FeatureType>"
    )


def capabilities(url: str, title: str, layers: Sequence[tuple[LayerSpec, Sequence[float]]]) -> str:
    """The WFS 2.0 capabilities document."""
    names = [f"{PREFIX}:{spec.id}" for spec, _ in layers]
    ops = (
        _operation("GetCapabilities", url, {"AcceptVersions": ["2.0.0"]})
        + _operation("DescribeFeatureType", url, {"outputFormat": [OUTPUT_FORMATS[0]]})
        + _operation(
            "GetFeature", url, {"outputFormat": OUTPUT_FORMATS, "resultType": ["results", "hits"]}
        )
    )
    constraints = "".join(
        f'<ows:Constraint name="{k}"><ows:NoValues/><ows:DefaultValue>{v}</ows:DefaultValue>'
        "</ows:Constraint>"
        for k, v in CONSTRAINTS.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<wfs:WFS_Capabilities version="2.0.0" xmlns:wfs="{NS["wfs"]}" '
        'xmlns:ows="http://www.opengis.net/ows/1.1" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'xmlns:fes="http://www.opengis.net/fes/2.0" xmlns:gml="{NS["gml"]}" '
        f'xmlns:{PREFIX}="{NS[PREFIX]}">'
        f"<ows:ServiceIdentification><ows:Title>{escape(title)}</ows:Title>"
        "<ows:ServiceType>WFS</ows:ServiceType><ows:ServiceTypeVersion>2.0.0"
        "</ows:ServiceTypeVersion></ows:ServiceIdentification>"
        "<ows:ServiceProvider><ows:ProviderName>大丰区城市管理局</ows:ProviderName>"
        "</ows:ServiceProvider>"
        f"<ows:OperationsMetadata>{ops}{constraints}</ows:OperationsMetadata>"
        "<wfs:FeatureTypeList>"
        + "".join(_feature_type(s, b) for s, b in layers)
        + "</wfs:FeatureTypeList>"
        "<fes:Filter_Capabilities><fes:Conformance>"
        '<fes:Constraint name="ImplementsQuery"><ows:NoValues/><ows:DefaultValue>TRUE'
        "</ows:DefaultValue></fes:Constraint>"
        '<fes:Constraint name="ImplementsAdHocQuery"><ows:NoValues/><ows:DefaultValue>TRUE'
        "</ows:DefaultValue></fes:Constraint>"
        '<fes:Constraint name="ImplementsResourceId"><ows:NoValues/><ows:DefaultValue>TRUE'
        "</ows:DefaultValue></fes:Constraint>"
        "</fes:Conformance></fes:Filter_Capabilities>"
        f"<!-- {len(names)} feature types -->"
        "</wfs:WFS_Capabilities>"
    )
