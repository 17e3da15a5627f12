"""The ``cityops`` command line against a real database."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()


def test_db_status_json(db_url: str) -> None:
    result = runner.invoke(app, ["db", "status", "--json"], env={"DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["layers"]["unit_grids"] > 1000
    assert status["layers"]["parts"] == sum(status["parts_by_major"].values())
    assert set(status["parts_by_major"]) == {"01", "02", "03", "04", "05", "ext"}
    assert status["migration"] == "0001"


def test_samples_load_if_empty_skips(db_url: str) -> None:
    result = runner.invoke(
        app, ["samples", "load", "--size", "small", "--if-empty"], env={"DATABASE_URL": db_url}
    )
    assert result.exit_code == 0 and "skipping" in result.output


def test_samples_load_rejects_unknown_size(db_url: str) -> None:
    result = runner.invoke(app, ["samples", "load", "--size", "huge"], env={"DATABASE_URL": db_url})
    assert result.exit_code == 2


@pytest.mark.parametrize("command", [["db", "migrate"]])
def test_migrate_is_idempotent(db_url: str, command: list[str]) -> None:
    result = runner.invoke(app, command, env={"DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
