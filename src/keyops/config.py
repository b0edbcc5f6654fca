"""Settings, read from ``KEYOPS_*`` environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the service can be configured with."""

    model_config = SettingsConfigDict(env_prefix="KEYOPS_", extra="ignore")

    data_dir: Path = Field(default=Path("./keyops-data"))
    database_url: str | None = None
    admin_password: SecretStr | None = None
    token_ttl_seconds: int = Field(default=3600, ge=60, le=60 * 60 * 24 * 30)
    # The web console (/console/): a session idle this long must log in again.
    console_idle_seconds: float = Field(default=900.0, gt=0)
    max_request_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_upload_bytes: int = Field(default=1024 * 1024, ge=1)
    # How long a deployment waits for an environment (and its gateway nodes) to apply it.
    deploy_timeout_seconds: float = Field(default=5.0, gt=0)
    # A gateway node not heard from for this long no longer counts as connected: it is
    # silent, and deployments report it as not applied until it is back, says goodbye,
    # is removed by an admin, or has been silent for ``gateway_node_forget_seconds``.
    gateway_node_ttl_seconds: float = Field(default=30.0, gt=0)
    gateway_node_forget_seconds: float = Field(default=86400.0, gt=0)
    # How often unconfirmed roll-outs (cut short by a crash, or failed) are resumed.
    reconcile_seconds: float = Field(default=30.0, gt=0)
    # Versions of a certificate, key or keystore kept for history and rollback.
    history_keep: int = Field(default=10, ge=1, le=1000)
    # Deployment attempts kept per environment; older ones are trimmed by the reconciler.
    attempts_keep: int = Field(default=1000, ge=1)
    # Expiry alerts: how often the watcher looks, and the days-left thresholds it alerts
    # at (each once per resource, environment and material).
    expiry_check_seconds: float = Field(default=3600.0, gt=0)
    expiry_thresholds_days: str = "30,14,7,1,0"
    # Webhook deliveries: per-attempt timeout, attempts before giving up, and the first
    # retry delay (doubling after each failure, at most an hour).
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_max_attempts: int = Field(default=8, ge=1, le=100)
    webhook_retry_seconds: float = Field(default=30.0, gt=0)
    # Processes serving one SQLite file (``serve --workers``): they then watch it for
    # each other's commits.
    workers: int = Field(default=1, ge=1, le=64)
    # How long a node's long-poll may wait for a change.
    gateway_poll_seconds: float = Field(default=20.0, gt=0, le=120)
    # How long opening a database connection may take (PostgreSQL; libpq counts whole
    # seconds, at least 2).
    database_connect_timeout_seconds: int = Field(default=5, ge=2, le=300)
    # How long one statement may run (PostgreSQL statement_timeout, and how long keyops
    # waits for any answer from the server); SQLite: how long a writer waits for the lock.
    database_statement_timeout_seconds: float = Field(default=15.0, gt=0, le=3600)
    # "name=package.module:Class" pairs registering extra deployment target kinds.
    extra_targets: str = ""
    log_level: str = "INFO"
    # Base64 of 32 bytes. Unset: a key file ``master.key`` (mode 0600) in the data dir.
    master_key: SecretStr | None = None
    # Comma-separated earlier master keys that may still open values (during a rollout).
    previous_master_keys: SecretStr | None = None
    # Networks a JWK URL may resolve to although private, loopback or link-local.
    url_allow_list: str = ""
    # Who may scrape /metrics: loopback clients only, a bearer token (KEYOPS_METRICS_TOKEN
    # or an admin's personal token), anyone, or nobody (no /metrics at all).
    metrics_access: Literal["loopback", "token", "open", "off"] = "loopback"
    metrics_token: SecretStr | None = Field(default=None, min_length=16)

    @field_validator("database_url")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("expiry_thresholds_days")
    @classmethod
    def _thresholds(cls, value: str) -> str:
        parse_thresholds(value)
        return value

    @property
    def expiry_thresholds(self) -> tuple[int, ...]:
        """The expiry thresholds in days, largest first."""
        return parse_thresholds(self.expiry_thresholds_days)

    @cached_property
    def async_database_url(self) -> str:
        """The URL for the async engine, with the driver keyops uses for that database."""
        return to_async_url(self.database_url or self.default_sqlite_url())

    def default_sqlite_url(self) -> str:
        """The embedded default: a SQLite file in the data directory."""
        return f"sqlite+aiosqlite:///{(self.data_dir / 'keyops.db').resolve()}"


def parse_thresholds(text: str) -> tuple[int, ...]:
    """``"30,14,7,1,0"`` as distinct whole days, largest first."""
    try:
        days = {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise ValueError(
            f"expiry thresholds must be whole days, comma-separated: {text!r}"
        ) from None
    if any(d < 0 or d > 3650 for d in days):
        raise ValueError(f"expiry thresholds must be between 0 and 3650 days: {text!r}")
    return tuple(sorted(days, reverse=True))


def to_async_url(url: str) -> str:
    """Map a user-given URL onto the async driver of its database."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    dialect = scheme.split("+", 1)[0]
    if dialect == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if dialect in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    raise ValueError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")


def to_sync_url(url: str) -> str:
    """Map an async URL onto the synchronous driver Alembic runs on."""
    scheme, _, rest = url.partition("://")
    dialect = scheme.split("+", 1)[0]
    if dialect == "sqlite":
        return f"sqlite://{rest}"
    return f"postgresql+psycopg://{rest}"
