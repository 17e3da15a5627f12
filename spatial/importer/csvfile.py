"""CSV input: delimiter, lon/lat or WKT geometry columns, one record per row."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any, Final

import shapely
from shapely import Geometry

from spatial.errors import FieldIssue, InvalidInput
from spatial.importer.encoding import decode_text
from spatial.importer.options import ImportOptions
from spatial.importer.records import Record, Source

CSV_LON: Final = ("lon", "lng", "long", "longitude", "x", "经度")


CSV_LAT: Final = ("lat", "latitude", "y", "纬度")


CSV_GEOMETRY: Final = ("wkt", "geometry", "geom", "the_geom", "shape")


CSV_SUFFIXES: Final = (".csv", ".txt", ".tsv")


def read_csv(path: Path, options: ImportOptions) -> Source:
    """Read a CSV with lon/lat columns or a WKT column."""
    text, encoding = decode_text(path.read_bytes(), options.encoding)
    reader = csv.DictReader(io.StringIO(text), delimiter=_delimiter(text))
    fields = [(f or "").strip() for f in reader.fieldnames or []]
    reader.fieldnames = fields
    geometry_fields = _csv_geometry_fields(path, fields)
    records = [
        _csv_record(n, row, geometry_fields)
        for n, row in enumerate(reader, start=1)
        if any((v or "").strip() for v in row.values())
    ]
    return Source(
        driver="CSV",
        fields=fields,
        records=records,
        encoding=encoding,
        geometry_fields=geometry_fields,
    )


def _delimiter(text: str) -> str:
    """The delimiter used most in the header line (comma, semicolon, tab or bar)."""
    header = text.split("\n", 1)[0]
    return max(",;\t|", key=lambda d: (header.count(d), d == ","))


def _csv_geometry_fields(path: Path, fields: list[str]) -> tuple[str, ...]:
    """``(lon, lat)`` or ``(wkt,)`` column names of a CSV."""
    lower = {f.lower(): f for f in fields}
    lon = next((lower[n] for n in CSV_LON if n in lower), None)
    lat = next((lower[n] for n in CSV_LAT if n in lower), None)
    if lon and lat:
        return (lon, lat)
    wkt = next((lower[n] for n in CSV_GEOMETRY if n in lower), None)
    if wkt:
        return (wkt,)
    message = (
        f"no coordinate columns; expected lon/lat ({', '.join(CSV_LON)} / "
        f"{', '.join(CSV_LAT)}) or a WKT column ({', '.join(CSV_GEOMETRY)})"
    )
    raise InvalidInput(
        f"{path.name}: {message}", errors=[FieldIssue(field="geometry", message=message)]
    )


def _csv_record(number: int, row: dict[str, Any], geometry_fields: tuple[str, ...]) -> Record:
    """One CSV row as a record; a bad coordinate becomes the record's error."""
    props = {k: v for k, v in row.items() if k is not None and k not in geometry_fields}
    try:
        geom = _csv_geometry(row, geometry_fields)
    except ValueError as exc:
        issue = FieldIssue(field=str(exc.args[0]), message=str(exc.args[1]), feature=number)
        return Record(number=number, props=props, geometry=None, error=issue)
    return Record(number=number, props=props, geometry=geom)


def _csv_geometry(row: dict[str, Any], geometry_fields: tuple[str, ...]) -> Geometry | None:
    """Build the geometry of a CSV row; ``ValueError(field, message)`` when unparsable."""
    values = [(row.get(f) or "").strip() for f in geometry_fields]
    if not any(values):
        return None
    if not all(values):
        missing = geometry_fields[values.index("")]
        raise ValueError(missing, f"{missing} is empty")
    if len(values) == 1:
        return _parse_geometry_text(geometry_fields[0], values[0])
    coords = []
    for name, value in zip(geometry_fields, values, strict=True):
        try:
            coords.append(float(value))
        except ValueError:
            raise ValueError(name, f"not a number: {value!r}") from None
    return shapely.Point(coords)


def _parse_geometry_text(name: str, value: str) -> Geometry:
    """Parse WKT, EWKT or hex WKB."""
    try:
        if re.fullmatch(r"[0-9A-Fa-f]+", value):
            return shapely.from_wkb(value)
        return shapely.from_wkt(value.split(";", 1)[-1])
    except shapely.errors.GEOSException as exc:
        raise ValueError(name, f"cannot parse geometry: {exc}") from None
