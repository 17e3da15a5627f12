"""The ``cityops`` command line against a real database."""

from __future__ import annotations

import json

import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from api.cli import app
from spatial.migrate import alembic_config

runner = CliRunner()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from spatial.migrate import alembic_config

    return ScriptDirectory.from_config(
        alembic_config("postgresql://x@localhost/x")
    ).get_current_head()


def test_db_status_json(db_url: str) -> None:
    result = runner.invoke(app, ["db", "status", "--json"], env={"DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["layers"]["unit_grids"] > 1000
    assert status["layers"]["parts"] == sum(status["parts_by_major"].values())
    assert set(status["parts_by_major"]) == {"01", "02", "03", "04", "05", "ext"}
    assert (
        status["migration"]
        == ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    )


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


def _poi_geojson(path, lon: float, lat: float) -> None:
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {
                            "code": "PCLI0001",
                            "name": "测试便利店",
                            "category": "商业",
                        },
                        "geometry": {"type": "Point", "coordinates": [lon, lat]},
                    }
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )


def test_import_reports_json(scratch_url: str, tmp_path) -> None:
    src = tmp_path / "pois.geojson"
    _poi_geojson(src, 120.478, 33.198)
    result = runner.invoke(
        app, ["import", str(src), "--layer", "pois", "--json"], env={"DATABASE_URL": scratch_url}
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["features_loaded"] == 1 and report["layer"] == "pois"


def test_import_bad_feature_exits_2_naming_it(scratch_url: str, tmp_path) -> None:
    src = tmp_path / "pois.geojson"
    _poi_geojson(src, 116.39, 39.91)  # Beijing: outside the district
    result = runner.invoke(
        app, ["import", str(src), "--layer", "pois"], env={"DATABASE_URL": scratch_url}
    )
    assert result.exit_code == 2
    assert "feature 1" in result.output and "320904" in result.output
