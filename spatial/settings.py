"""Settings, built explicitly by callers (``create_app``, the CLI), never at import."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_CLUSTER_DIR = PROJECT_ROOT / "var" / "pg"
LOCAL_URL_FILE = PROJECT_ROOT / "var" / "database_url"
LOCAL_REDIS_DIR = PROJECT_ROOT / "var" / "redis"
LOCAL_REDIS_URL_FILE = PROJECT_ROOT / "var" / "redis_url"


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


class SecuritySettings(BaseSettings):
    """Identity and crypto (``CITY_SECURITY_`` prefix); key material lives in ``key_dir``."""

    model_config = SettingsConfigDict(env_prefix="CITY_SECURITY_", extra="ignore")

    key_dir: Path = PROJECT_ROOT / "var" / "keys"  # SM2 key pair, SM4 keyring, token key
    access_token_minutes: int = Field(default=15, gt=0, le=240)
    refresh_token_hours: float = Field(default=12, gt=0, le=24 * 30)
    refresh_idle_minutes: int = Field(default=30, gt=0)  # 等保: idle sessions end
    password_iterations: int = Field(default=60_000, ge=1_000)  # PBKDF2-HMAC-SM3
    password_min_length: int = Field(default=10, ge=6)
    password_min_classes: int = Field(default=3, ge=1, le=4)  # upper/lower/digit/symbol
    lockout_threshold: int = Field(default=5, ge=1)
    lockout_minutes: int = Field(default=15, ge=1)
    require_sm2_login: bool = False  # refuse plaintext passwords at /auth/token
    login_max_age_s: int = Field(default=300, ge=10)  # SM2 login envelopes older are replays
    basic_cache_s: int = Field(default=60, ge=0)  # HTTP Basic / API key verification cache
    audit_sensitive_reads: bool = True


class LimitSettings(BaseSettings):
    """Abuse limits (``CITY_LIMITS_`` prefix): rate limits in Redis, body size, CORS."""

    model_config = SettingsConfigDict(env_prefix="CITY_LIMITS_", extra="ignore")

    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "CITY_LIMITS_REDIS_URL")
    )
    anonymous_per_minute: int = Field(default=1200, ge=1)  # per client IP
    user_per_minute: int = Field(default=3000, ge=1)
    api_key_per_minute: int = Field(default=12000, ge=1)
    login_per_minute: int = Field(default=20, ge=1)  # per IP and per user name
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    cors_origins: list[str] = Field(default_factory=list)
    enabled: bool = True

    def resolved_redis_url(self) -> str | None:
        """The configured Redis, or the project-local one written by ``cityops redis up``."""
        if self.redis_url:
            return self.redis_url
        if LOCAL_REDIS_URL_FILE.exists():
            return LOCAL_REDIS_URL_FILE.read_text().strip() or None
        return None


class Settings(BaseSettings):
    """Application settings (``CITY_`` prefix)."""

    model_config = SettingsConfigDict(env_prefix="CITY_", extra="ignore")

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    ogc: OgcSettings = Field(default_factory=OgcSettings)
    basemap: BasemapSettings = Field(default_factory=BasemapSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    fleet_background: bool = False  # MQTT consumer + fleet scans (``cityops serve`` sets it)
    media_dir: Path = PROJECT_ROOT / "var" / "media"  # case photos and recordings by SHA-256
    county_code: str = "320904"
    county_name: str = "大丰区"
    title: str = "大丰区城市运行管理服务平台"
