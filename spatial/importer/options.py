"""Import options (the CLI's flags), the report of what was loaded, and option checks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from spatial.errors import FieldIssue, InvalidInput

STORAGE_SRID: Final = 4490


@dataclass(frozen=True)
class ImportOptions:
    """What to import and how (the CLI's ``cityops import`` flags)."""

    layer: str
    source_crs: str | None = None
    encoding: str | None = None
    invalid: Literal["repair", "reject"] = "repair"
    mode: Literal["append", "replace"] = "append"
    sublayer: str | None = None


@dataclass
class ImportReport:
    """What an import loaded."""

    layer: str
    file: str
    driver: str
    features_read: int = 0
    features_loaded: int = 0
    repaired: list[int] = field(default_factory=list)
    source_crs: str = ""
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)
    mode: str = "append"
    deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    def summary(self) -> str:
        """Short bilingual text, one fact per line."""
        lines = [
            f"导入完成 Imported {self.features_loaded} of {self.features_read} features "
            f"from {self.file} ({self.driver}) into layer {self.layer}",
            f"坐标系 Source CRS: {self.source_crs} → EPSG:{STORAGE_SRID}",
        ]
        if self.encoding:
            lines.append(f"编码 Encoding: {self.encoding}")
        if self.mode == "replace":
            lines.append(f"替换 Replaced: {self.deleted} existing rows deleted first")
        if self.repaired:
            shown = ", ".join(map(str, self.repaired[:20]))
            more = " …" if len(self.repaired) > 20 else ""
            lines.append(f"修复 Repaired geometries ({len(self.repaired)}): features {shown}{more}")
        lines += [f"警告 Warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def check_options(options: ImportOptions) -> None:
    """Reject unknown ``invalid``/``mode`` values."""
    issues = []
    if options.invalid not in ("repair", "reject"):
        issues.append(FieldIssue(field="invalid", message="must be 'repair' or 'reject'"))
    if options.mode not in ("append", "replace"):
        issues.append(FieldIssue(field="mode", message="must be 'append' or 'replace'"))
    if issues:
        raise InvalidInput("invalid import options", errors=issues)
