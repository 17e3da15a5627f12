"""Map file fields to table columns; defaults, derivable and required columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from layers.registry import LayerSpec
from spatial.errors import FieldIssue, InvalidInput
from spatial.importer.records import Source
from spatial.importer.schema import Column
from spatial.models import Base

IMPORT_SOURCE: Final = "导入"


# GB/T field codes (and common Chinese headers) → column names; applied when the column exists.
FIELD_ALIASES: Final[dict[str, str]] = {
    "bsm": "code",
    "mc": "name",
    "zgbm": "department",
    "qsdw": "owner",
    "yhdw": "maintainer",
    "zt": "status",
    "dywg": "grid_code",
    "wzms": "location_desc",
    "bz": "note",
    "cssj": "initial_time",
    "bgsj": "change_time",
    "sjly": "data_source",
    "xsx": "currency_date",
    "blc": "scale_denominator",
    "zp": "photo_url",
    "bm": "alias",
    "cym": "old_name",
    "lb": "category",
    "lx": "kind",
    "dj": "grade",
    "cs": "floors",
    "标识码": "code",
    "编码": "code",
    "代码": "code",
    "名称": "name",
    "类别": "category",
    "主管部门": "department",
    "权属单位": "owner",
    "养护单位": "maintainer",
    "状态": "status",
    "单元网格": "grid_code",
    "位置描述": "location_desc",
    "备注": "note",
    "数据来源": "data_source",
    "类型": "kind",
    "等级": "grade",
    "层数": "floors",
    "别名": "alias",
    "曾用名": "old_name",
}


LAYER_DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "addresses": {"kind": "门牌", "suffix": "号"},
    "compounds": {"kind": "居民小区"},
}


PART_DERIVED: Final = (
    "class_code",
    "county_code",
    "major_code",
    "minor_code",
    "department",
    "initial_time",
)


def map_fields(
    source: Source, spec: LayerSpec, columns: dict[str, Column], warnings: list[str]
) -> dict[str, str]:
    """Map file fields to columns (case-insensitive, GB aliases, truncated .dbf names)."""
    mapping: dict[str, str] = {}
    ignored: list[str] = []
    computed = {spec.geom, "h3"}
    usable = set(columns) - computed
    for name in source.fields:
        if name in source.geometry_fields:
            continue
        if name.strip().lower() in computed:
            warnings.append(f"field {name!r} ignored: computed by the importer")
            continue
        column = _match_field(name, usable, source.driver == "ESRI Shapefile")
        if column is None:
            ignored.append(name)
        elif column in mapping.values():
            warnings.append(
                f"field {name!r} ignored: column {column} already filled from "
                f"{_key_of(mapping, column)!r}"
            )
        else:
            mapping[name] = column
    if ignored:
        warnings.append(f"fields not in {spec.qualified_table} ignored: {', '.join(ignored)}")
    return mapping


def _key_of(mapping: dict[str, str], column: str) -> str:
    """The file field mapped to ``column``."""
    return next(k for k, v in mapping.items() if v == column)


def _match_field(name: str, columns: set[str], shapefile: bool) -> str | None:
    """The column a file field fills, or None."""
    key = name.strip().lower()
    if key in columns:
        return key
    alias = FIELD_ALIASES.get(key)
    if alias in columns:
        return alias
    if shapefile and len(key) == 10:  # .dbf names are cut to 10 characters
        hits = [c for c in columns if c.startswith(key)]
        return hits[0] if len(hits) == 1 else None
    return None


def model_defaults(spec: LayerSpec) -> dict[str, Any]:
    """Scalar Python-side defaults of the ORM model (e.g. parts.status = 完好)."""
    table = Base.metadata.tables.get(spec.qualified_table)
    if table is None:
        return {}
    return {
        c.name: c.default.arg
        for c in table.columns
        if c.default is not None and getattr(c.default, "is_scalar", False)
    }


def layer_defaults(spec: LayerSpec, columns: dict[str, Column]) -> dict[str, Any]:
    """Values for columns a file may omit."""
    defaults = model_defaults(spec) | LAYER_DEFAULTS.get(spec.table, {})
    defaults["data_source"] = IMPORT_SOURCE
    return {k: v for k, v in defaults.items() if k in columns}


def derivable(spec: LayerSpec, columns: dict[str, Column]) -> set[str]:
    """Columns the importer computes when the file lacks them."""
    out: set[str] = {spec.geom, "h3", "length_m", "area_m2"}
    if spec.locate_grid:
        out |= {"grid_code", "community_code", "street_code", "standard_address"}
    elif not spec.is_point:
        out |= {"community_code", "street_code"}
    if spec.table == "parts":
        out |= set(PART_DERIVED)
    return out & set(columns)


def needed_columns(spec: LayerSpec, columns: dict[str, Column]) -> list[str]:
    """Required layer fields plus NOT NULL columns without a database default."""
    needed = list(spec.required)
    needed += [
        c.name
        for c in columns.values()
        if not c.nullable and not c.has_default and c.name not in needed
    ]
    return [c for c in needed if c in columns]


def check_required_columns(
    spec: LayerSpec,
    columns: dict[str, Column],
    mapping: dict[str, str],
    defaults: dict[str, Any],
    source: Source,
    path: Path,
) -> None:
    """Fail once per column the file lacks entirely and the importer cannot fill."""
    have = set(mapping.values()) | set(defaults) | derivable(spec, columns)
    missing = [c for c in needed_columns(spec, columns) if c not in have]
    if not missing:
        return
    found = ", ".join(f for f in source.fields if f not in source.geometry_fields) or "none"
    issues = [
        FieldIssue(
            field=c, message=f"required column {c} is missing from the file (fields found: {found})"
        )
        for c in missing
    ]
    raise InvalidInput(
        f"{path.name}: missing required column(s) {', '.join(missing)} for layer "
        f"{spec.id}; nothing was imported",
        errors=issues,
    )
