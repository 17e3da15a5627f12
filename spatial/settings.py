"""Settings, built explicitly by callers (``create_app``, the CLI), never at import."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_CLUSTER_DIR = PROJECT_ROOT / "var" / "pg"
LOCAL_URL_FILE = PROJECT_ROOT / "var" / "database_url"


def local_database_url() -> str | None:
    """Return the URL of the project-local cluster written by ``cityops db up``."""
    if LOCAL_URL_FILE.exists():
        return LOCAL_URL_FILE.read_text().strip() or None
    return None


class DatabaseSettings(BaseSettings):
    """Where the PostGIS database is (``DATABASE_URL`` or ``CITY_DB_URL``)."""

    model_config = SettingsConfigDict(env_prefix="CITY_DB_", extra="ignore", populate_by_name=True)

    url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "CITY_DB_URL")
    )
    pool_size: int = 10
    statement_timeout_ms: int = 30_000
    connect_timeout_s: float = 5.0

    def resolved_url(self) -> str:
        """Return the configured URL, the local cluster's, or raise."""
        url = self.url or local_database_url()
        if not url:
            from spatial.errors import ConfigurationError

            raise ConfigurationError(
                "No database: set DATABASE_URL or run `cityops db up` to start the local cluster."
            )
        return url


class BasemapSettings(BaseSettings):
    """Where the basemap COGs live (``CITY_BASEMAP_DIR``) and their resolution in degrees."""

    model_config = SettingsConfigDict(env_prefix="CITY_BASEMAP_", extra="ignore")

    dir: Path = PROJECT_ROOT / "var" / "basemaps"
    resolution: float = Field(default=0.00002, gt=0, le=0.01)


class OgcSettings(BaseSettings):
    """OGC API – Features at ``/ogc`` (``CITY_OGC_`` prefix)."""

    model_config = SettingsConfigDict(env_prefix="CITY_OGC_", extra="ignore")

    public_url: str | None = None  # e.g. https://gis.example.org/ogc behind a proxy
    default_limit: int = 10
    max_limit: int = 10_000
    count_cap: int = 10_000  # ``count: estimate`` layers count exactly up to this many
    workdir: Path | None = None  # keep the generated pygeoapi config/OpenAPI here
    # XYZ template for the HTML maps: our own light basemap through WMTS REST (no CDN).
    basemap_url: str = "/wmts/1.0.0/dafeng-light/default/WebMercatorQuad/{z}/{y}/{x}.png"
    basemap_attribution: str = "大丰区底图 (本地 WMTS)"
    extent: tuple[float, float, float, float] = (120.25, 32.95, 120.95, 33.45)


class Settings(BaseSettings):
    """Application settings (``CITY_`` prefix)."""

    model_config = SettingsConfigDict(env_prefix="CITY_", extra="ignore")

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    ogc: OgcSettings = Field(default_factory=OgcSettings)
    basemap: BasemapSettings = Field(default_factory=BasemapSettings)
    county_code: str = "320904"
    county_name: str = "大丰区"
    title: str = "大丰区城市运行管理服务平台"
