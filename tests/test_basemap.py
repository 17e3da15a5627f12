"""The basemap COGs rendered by ``data_samples/basemap.py`` and ``cityops samples basemaps``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from api.cli import app
from data_samples.basemap import (
    DEFAULT_RESOLUTION,
    PALETTES,
    Cls,
    build_basemaps,
    missing_basemaps,
    snapped_grid,
)
from layers.basemaps import BASEMAPS, basemap_ids, get_basemap
from spatial.errors import NotFound
from tests.conftest import TEST_BASEMAP_RESOLUTION

runner = CliRunner()
STYLES = [b.id for b in BASEMAPS]


def _colours(path: Path) -> set[tuple[int, int, int]]:
    with rasterio.open(path) as src:
        r, g, b = src.read().astype(np.uint32)
    packed = np.unique((r << 16) | (g << 8) | b)
    return {(int(v >> 16), int(v >> 8 & 255), int(v & 255)) for v in packed}


def test_registered_basemaps() -> None:
    assert basemap_ids() == ["dafeng-light", "dafeng-dark"]
    assert {b.style for b in BASEMAPS} == {"light", "dark"}


def test_unknown_basemap_is_not_found() -> None:
    with pytest.raises(NotFound, match="dafeng-light"):
        get_basemap("osm")


@pytest.mark.parametrize("basemap", STYLES)
def test_cog_layout(basemap_dir: Path, basemap: str) -> None:
    with rasterio.open(get_basemap(basemap).path(basemap_dir)) as src:
        assert src.crs.to_epsg() == 4490
        assert (src.count, src.dtypes[0]) == (3, "uint8")
        assert src.profile["tiled"] and src.block_shapes[0] == (512, 512)
        assert src.overviews(1), "a COG needs internal overviews"
        structure = src.tags(ns="IMAGE_STRUCTURE")
        assert structure["LAYOUT"] == "COG" and structure["COMPRESSION"] == "DEFLATE"
        assert src.tags()["basemap"] == basemap
        assert src.res == pytest.approx((TEST_BASEMAP_RESOLUTION,) * 2)


@pytest.mark.parametrize("basemap", STYLES)
def test_basemap_covers_the_district(basemap_dir: Path, basemap: str) -> None:
    with rasterio.open(get_basemap(basemap).path(basemap_dir)) as src:
        left, bottom, right, top = src.bounds
    assert left < 120.44 and right > 120.52 and bottom < 33.17 and top > 33.23


@pytest.mark.parametrize("basemap", STYLES)
def test_basemap_draws_the_base_layers(basemap_dir: Path, basemap: str) -> None:
    spec = get_basemap(basemap)
    colours = _colours(spec.path(basemap_dir))
    palette = PALETTES[spec.style]
    for cls in (Cls.BACKGROUND, Cls.DISTRICT, Cls.COMPOUND, Cls.BUILDING, Cls.ROAD_MAIN):
        assert tuple(int(v) for v in palette[cls]) in colours, cls.name


def test_palettes_differ(basemap_dir: Path) -> None:
    light, dark = (rasterio.open(get_basemap(b).path(basemap_dir)) for b in STYLES)
    with light, dark:
        assert light.read().mean() > 200 > 60 > dark.read().mean()


def test_rendering_is_deterministic(db_url: str, basemap_dir: Path, tmp_path: Path) -> None:
    build_basemaps(db_url, tmp_path, TEST_BASEMAP_RESOLUTION, progress=lambda _m: None)
    for spec in BASEMAPS:
        again = hashlib.sha256(spec.path(tmp_path).read_bytes()).hexdigest()
        assert again == hashlib.sha256(spec.path(basemap_dir).read_bytes()).hexdigest()


def test_grid_is_snapped_to_the_resolution() -> None:
    bounds, res = (120.43218, 33.16, 120.52839, 33.23308), 0.00002
    grid = snapped_grid(bounds, res)
    left, top = grid.transform.c, grid.transform.f
    assert round(left / res, 6) == round(left / res) and round(top / res, 6) == round(top / res)
    right, bottom = left + grid.width * res, top - grid.height * res
    assert left < bounds[0] and bottom < bounds[1] and right > bounds[2] and top > bounds[3]


def test_default_resolution_renders_full_size(db_url: str, tmp_path: Path) -> None:
    paths = build_basemaps(db_url, tmp_path, DEFAULT_RESOLUTION, progress=lambda _m: None)
    with rasterio.open(paths[0]) as src:
        assert src.width > 4000 and src.height > 3000
    assert all(p.stat().st_size < 20_000_000 for p in paths)


def test_missing_basemaps(basemap_dir: Path, tmp_path: Path) -> None:
    assert missing_basemaps(basemap_dir) == []
    assert missing_basemaps(tmp_path) == STYLES


def test_cli_builds_then_skips(db_url: str, tmp_path: Path) -> None:
    args = ["samples", "basemaps", "--dir", str(tmp_path), "--resolution", "0.0004"]
    env = {"DATABASE_URL": db_url}
    built = runner.invoke(app, args, env=env)
    assert built.exit_code == 0, built.output
    assert missing_basemaps(tmp_path) == []
    skipped = runner.invoke(app, [*args, "--if-missing"], env=env)
    assert skipped.exit_code == 0 and "skipping" in skipped.output


def test_cli_uses_the_configured_directory(db_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": db_url, "CITY_BASEMAP_DIR": str(tmp_path / "bm")}
    result = runner.invoke(app, ["samples", "basemaps", "--resolution", "0.0004"], env=env)
    assert result.exit_code == 0, result.output
    assert missing_basemaps(tmp_path / "bm") == []


@pytest.mark.parametrize("resolution", ["0", "-1", "0.5"])
def test_cli_rejects_bad_resolution(db_url: str, tmp_path: Path, resolution: str) -> None:
    args = ["samples", "basemaps", "--dir", str(tmp_path), "--resolution", resolution]
    result = runner.invoke(app, args, env={"DATABASE_URL": db_url})
    assert result.exit_code == 2
