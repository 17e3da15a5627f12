"""Read an input file: fiona for vector formats (sublayers, zipped shapefiles), else CSV."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fiona
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from spatial.errors import FieldIssue, InvalidInput
from spatial.importer.csvfile import CSV_SUFFIXES, read_csv
from spatial.importer.encoding import decode_shapefile, read_cpg
from spatial.importer.options import ImportOptions
from spatial.importer.records import Record, Source


def read_source(path: Path, options: ImportOptions) -> Source:
    """Read a vector file or CSV into decoded records (no CRS transform yet)."""
    if not path.exists():
        raise InvalidInput(
            f"{path}: file not found", errors=[FieldIssue(field="file", message="file not found")]
        )
    if path.suffix.lower() in CSV_SUFFIXES:
        return read_csv(path, options)
    return _read_vector(path, options)


def _unreadable(path: Path, exc: Exception | str) -> InvalidInput:
    """The error for a file fiona/GDAL cannot open."""
    message = f"cannot read {path.name}: {exc}"
    return InvalidInput(
        f"{message} (supported: Shapefile, zipped Shapefile, GeoJSON, GeoPackage, CSV)",
        errors=[FieldIssue(field="file", message=message)],
    )


def _fiona_target(path: Path) -> str:
    """The path fiona should open (``zip://`` for zipped shapefiles)."""
    return f"zip://{path.resolve()}" if path.suffix.lower() == ".zip" else str(path)


def _pick_sublayer(path: Path, target: str, options: ImportOptions) -> str | None:
    """Choose the layer of a multi-layer file (GPKG, zip, directory)."""
    try:
        names = fiona.listlayers(target)
    except Exception as exc:  # noqa: BLE001 - GDAL raises many types
        raise _unreadable(path, exc) from exc
    if options.sublayer:
        if options.sublayer not in names:
            raise InvalidInput(
                f"{path.name}: no layer {options.sublayer!r}; layers: {', '.join(names)}",
                errors=[FieldIssue(field="sublayer", message="unknown layer")],
            )
        return options.sublayer
    if len(names) <= 1:
        return names[0] if names else None
    spec_names = [n for n in names if n.lower() == options.layer.lower()]
    if spec_names:
        return spec_names[0]
    raise InvalidInput(
        f"{path.name} has several layers ({', '.join(names)}); choose one with --sublayer",
        errors=[FieldIssue(field="sublayer", message="required")],
    )


def _read_vector(path: Path, options: ImportOptions) -> Source:
    """Read a fiona-supported file; shapefile text is decoded here, not by GDAL."""
    target = _fiona_target(path)
    layer = _pick_sublayer(path, target, options)
    try:
        with fiona.open(target, layer=layer) as probe:
            driver = probe.driver
        shapefile = driver == "ESRI Shapefile"
        encoding = "latin1" if shapefile else None
        with fiona.open(target, layer=layer, encoding=encoding) as src:
            fields = list(src.schema["properties"])
            crs = _file_crs(src.crs_wkt)
            records = list(_fiona_records(src))
            name = src.name
    except Exception as exc:  # noqa: BLE001 - fiona/GDAL/decoding errors
        raise _unreadable(path, exc) from exc
    source = Source(driver=driver, fields=fields, records=records, crs=crs)
    if shapefile:
        decode_shapefile(source, read_cpg(path, name), options.encoding)
    elif options.encoding:
        source.warnings.append(f"--encoding ignored: {driver} text is always UTF-8")
    return source


def _fiona_records(src: Any) -> Iterator[Record]:
    """Yield records with shapely geometries; a malformed geometry becomes the record's error."""
    for number, feat in enumerate(src, start=1):
        record = Record(number=number, props=dict(feat.properties), geometry=None)
        try:
            if feat.geometry is not None:
                record.geometry = shapely.geometry.shape(feat.geometry)
        except (ValueError, TypeError, shapely.errors.GEOSException) as exc:
            message = f"malformed geometry: {exc}"
            record.error = FieldIssue(field="geometry", message=message, feature=number)
        yield record


def _file_crs(wkt: str | None) -> CRS | None:
    """The file's CRS from fiona's WKT (None when absent or unparsable)."""
    if not wkt:
        return None
    try:
        return CRS.from_wkt(wkt)
    except CRSError:
        return None
