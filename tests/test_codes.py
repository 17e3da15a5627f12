from __future__ import annotations

import pytest

from grids.codes import is_evaluation_grid, parse_part, parse_unit_grid


def test_unit_grid_code_splits() -> None:
    code = parse_unit_grid("320904002005017")
    assert (code.street_code, code.community_code, code.sequence) == (
        "320904002",
        "320904002005",
        "017",
    )


def test_part_code_splits() -> None:
    code = parse_part("3209040101000123")
    assert (code.class_code, code.major, code.minor, code.sequence) == (
        "3209040101",
        "01",
        "01",
        "000123",
    )
    assert not code.is_extension
    assert parse_part("3209040380000001").is_extension


@pytest.mark.parametrize("bad", ["", "32090400200501", "3209040020050170", "32090400200501x"])
def test_unit_grid_code_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="15 digits"):
        parse_unit_grid(bad)


@pytest.mark.parametrize("bad", ["320904010100012", "320904010100012a"])
def test_part_code_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="16 digits"):
        parse_part(bad)


def test_evaluation_grid_code() -> None:
    assert is_evaluation_grid("320904002001")
    assert not is_evaluation_grid("3209040020011")
