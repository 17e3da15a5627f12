"""Import vector files (Shapefile, GeoJSON, GeoPackage, CSV) into a layer, all or nothing.

Pipeline: read the file (fiona, or the csv module for CSV) → decode text (.cpg, UTF-8 or
GB18030) → find the source CRS → per feature: geometry (transform to EPSG:4490, check the
type, repair or reject invalid shapes, check the district) and attributes (map fields to
columns, coerce types, derive codes and cells, fill defaults) → collect every problem →
write with COPY in one transaction. Nothing is written when any feature fails.

Modules, in pipeline order: ``options`` (flags, report), ``records``/``sources``/``csvfile``/
``encoding`` (reading), ``crs`` (source CRS), ``schema``/``reference``/``fields``/``context``
(table, reference data, field mapping), ``geometry``/``convert``/``derived``/``checks``/
``features`` (per feature), ``writer`` (key checks, COPY) and ``run`` (``import_file``).
"""

from spatial.importer.context import Context
from spatial.importer.convert import coerce
from spatial.importer.crs import SourceCRS, crs_label, parse_source_crs
from spatial.importer.derived import derive_part
from spatial.importer.encoding import codec_name
from spatial.importer.features import Outcome, Row, process_feature
from spatial.importer.fields import derivable, layer_defaults, map_fields, model_defaults
from spatial.importer.geometry import check_geometry, conform, repair
from spatial.importer.options import STORAGE_SRID, ImportOptions, ImportReport
from spatial.importer.records import Record, Source
from spatial.importer.reference import AreaIndex, Reference, buffer_metres, load_reference
from spatial.importer.run import import_file
from spatial.importer.schema import Column, table_columns
from spatial.importer.sources import read_source
from spatial.importer.writer import database_issue, ewkb_hex

__all__ = [
    "STORAGE_SRID",
    "AreaIndex",
    "Column",
    "Context",
    "ImportOptions",
    "ImportReport",
    "Outcome",
    "Record",
    "Reference",
    "Row",
    "Source",
    "SourceCRS",
    "buffer_metres",
    "check_geometry",
    "codec_name",
    "coerce",
    "conform",
    "crs_label",
    "database_issue",
    "derivable",
    "derive_part",
    "ewkb_hex",
    "import_file",
    "layer_defaults",
    "load_reference",
    "map_fields",
    "model_defaults",
    "parse_source_crs",
    "process_feature",
    "read_source",
    "repair",
    "table_columns",
]
