"""The source CRS: parse ``--crs``, resolve it for a file, transform to EPSG:4490."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely import Geometry

from spatial.crs import ClientCRS, parse_client_crs, to_storage, transformer
from spatial.errors import FieldIssue, InvalidInput
from spatial.importer.options import STORAGE_SRID, ImportOptions
from spatial.importer.records import Source

Coords = np.ndarray


CoordFn = Callable[[Coords], Coords]


@dataclass(frozen=True)
class SourceCRS:
    """How to bring source coordinates to EPSG:4490."""

    label: str
    convert: CoordFn | None = None


def _pyproj_convert(crs: CRS) -> CoordFn | None:
    """A (N, 2) → (N, 2) converter to EPSG:4490, None when it is the identity."""
    epsg = crs.to_epsg()
    if epsg in (STORAGE_SRID, 4326):
        return None
    tr = (
        transformer(epsg, STORAGE_SRID)
        if epsg
        else Transformer.from_crs(crs, STORAGE_SRID, always_xy=True)
    )

    def convert(coords: Coords) -> Coords:
        return np.column_stack(tr.transform(coords[:, 0], coords[:, 1]))

    return convert


def _client_convert(crs: ClientCRS) -> CoordFn | None:
    """Converter for GCJ-02 / BD-09 lon/lat; None for CGCS2000 and WGS84."""
    if crs in (ClientCRS.CGCS2000, ClientCRS.WGS84):
        return None

    def convert(coords: Coords) -> Coords:
        return np.column_stack(to_storage(coords[:, 0], coords[:, 1], crs))

    return convert


def crs_label(crs: CRS) -> str:
    """``EPSG:n`` when known, else the CRS name."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def parse_source_crs(value: str) -> SourceCRS:
    """Parse ``--crs``: gcj02, bd09, wgs84, cgcs2000, EPSG codes, URIs, WKT or PROJ strings."""
    try:
        client = parse_client_crs(value)
    except ValueError:
        client = None
    if client is not None:
        label = {"cgcs2000": "EPSG:4490", "wgs84": "EPSG:4326"}.get(client.value, client.value)
        return SourceCRS(label=label, convert=_client_convert(client))
    text = value.strip()
    try:
        crs = CRS.from_user_input(f"EPSG:{text}" if text.isdigit() else text)
    except CRSError as exc:
        message = f"unknown CRS {value!r}: use e.g. EPSG:4528, gcj02, bd09, wgs84, cgcs2000"
        raise InvalidInput(message, errors=[FieldIssue(field="crs", message=message)]) from exc
    return SourceCRS(label=crs_label(crs), convert=_pyproj_convert(crs))


def resolve_crs(
    source: Source, options: ImportOptions, path: Path, warnings: list[str]
) -> SourceCRS:
    """The override, else the file's CRS, else EPSG:4490 when coordinates look like lon/lat."""
    if options.source_crs:
        chosen = parse_source_crs(options.source_crs)
        if source.crs is not None and crs_label(source.crs) != chosen.label:
            warnings.append(f"file declares {crs_label(source.crs)}; using --crs {chosen.label}")
        return chosen
    if source.crs is not None:
        return SourceCRS(label=crs_label(source.crs), convert=_pyproj_convert(source.crs))
    coords = shapely.get_coordinates([r.geometry for r in source.records])
    if len(coords) and np.all(np.abs(coords[:, 0]) <= 180) and np.all(np.abs(coords[:, 1]) <= 90):
        warnings.append("no CRS in the file; coordinates look like lon/lat, assumed EPSG:4490")
        return SourceCRS(label="EPSG:4490 (assumed)")
    sample = f" (e.g. x={coords[0, 0]:.1f}, y={coords[0, 1]:.1f})" if len(coords) else ""
    message = (
        f"no coordinate reference system in the file and the coordinates are not "
        f"longitude/latitude{sample}; pass the source CRS with --crs "
        "(e.g. --crs EPSG:4528 for CGCS2000 Gauss-Krüger zone 40)"
    )
    raise InvalidInput(f"{path.name}: {message}", errors=[FieldIssue(field="crs", message=message)])


def geoms_to_storage(geoms: list[Geometry | None], crs: SourceCRS) -> list[Geometry | None]:
    """Transform geometries to EPSG:4490 lon/lat and drop Z."""
    arr = np.asarray(geoms, dtype=object)
    if crs.convert is None:
        return list(shapely.force_2d(arr))
    with np.errstate(all="ignore"):
        return list(shapely.transform(arr, crs.convert))
