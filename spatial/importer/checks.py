"""Per-feature value checks: defaults, NOT NULL, text lengths, code patterns, choices."""

from __future__ import annotations

import re
from typing import Any, Final

from spatial.errors import FieldIssue
from spatial.importer.context import Context
from spatial.models.parts import PART_STATUSES

CODE_PATTERNS: Final[dict[str, str]] = {
    "districts": r"[0-9]{6}",
    "streets": r"[0-9]{9}",
    "communities": r"[0-9]{12}",
    "unit_grids": r"[0-9]{15}",
    "responsibility_grids": r"[0-9]{14}",
    "evaluation_grids": r"[0-9]{12}",
    "parts": r"[0-9]{16}",
}


CHOICES: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("parts", "status"): PART_STATUSES,
    ("addresses", "kind"): ("门牌", "楼牌"),
    ("cases", "category"): ("事件", "部件"),
    ("evaluation_grids", "grid_type"): ("A", "B", "C"),
}


def complete(row: dict[str, Any], n: int, ctx: Context, skip: set[str]) -> list[FieldIssue]:
    """Apply defaults, then check NOT NULL, lengths, codes and allowed values.

    ``skip`` holds derived columns not to report as missing (their cause is already reported).
    """
    for column, value in ctx.defaults.items():
        if row.get(column) is None:
            row[column] = value
    issues: list[FieldIssue] = []
    for column in ctx.needed:
        if row.get(column) is None and column != ctx.spec.geom and column not in skip:
            issues.append(FieldIssue(field=column, feature=n, message=f"{column} is missing"))
    issues += _check_values(row, n, ctx)
    return issues


def _check_values(row: dict[str, Any], n: int, ctx: Context) -> list[FieldIssue]:
    """Text lengths, code patterns and enumerated values the table's constraints enforce."""
    issues = []
    for column, value in row.items():
        spec = ctx.columns.get(column)
        if isinstance(value, str) and spec and spec.max_length and len(value) > spec.max_length:
            issues.append(
                FieldIssue(
                    field=column,
                    feature=n,
                    message=(f"{value!r} is longer than {spec.max_length} characters"),
                )
            )
        choices = CHOICES.get((ctx.spec.table, column))
        if choices and value is not None and value not in choices:
            issues.append(
                FieldIssue(
                    field=column,
                    feature=n,
                    message=(f"{value!r} is not one of {', '.join(choices)}"),
                )
            )
    pattern = CODE_PATTERNS.get(ctx.spec.table)
    code = row.get(ctx.spec.pk)
    if pattern and isinstance(code, str) and not re.fullmatch(pattern, code):
        digits = pattern.split("{")[1].rstrip("}")
        issues.append(
            FieldIssue(
                field=ctx.spec.pk,
                feature=n,
                message=(f"{ctx.spec.pk} {code!r} must be {digits} digits"),
            )
        )
    return issues
