"""Settings, read once at start-up from the environment (prefix ``LIUTONG_``) or ``.env``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIUTONG_", env_file=".env", extra="ignore")

    data_dir: Path = Path("var")
    #: SQLAlchemy URL. The embedded default is an SQLite file under ``data_dir``;
    #: production uses ``postgresql+psycopg://user@host/db``.
    database_url: str | None = None
    #: Master secret (hex or any string of ≥ 32 characters) from which the keys for
    #: personal-data encryption, blind indexes and member codes are derived. When unset,
    #: a random one is created once in ``data_dir/secret.key``.
    secret_key: str | None = None
    timezone: str = "Asia/Shanghai"
    #: How long a member QR code stays valid, in seconds.
    member_code_ttl_seconds: int = Field(default=60, ge=10, le=600)
    host: str = "127.0.0.1"
    port: int = 8000
    db_pool_size: int = 10

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'liutong.db').as_posix()}"
