"""Settings from `AMEND_*` environment variables (and a `.env` file).

Built once by the CLI or the app factory and passed down; nothing reads the environment at
import time, so tests can build as many independent apps as they like.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from dotenv import dotenv_values

log = logging.getLogger("amend.config")

MIN_SECRET_BYTES = 32
SECRET_FILE = ".amend-secret"


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which variable and why."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _int(name: str, raw: str, *, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///./amend.db"
    # PostgreSQL: a direct connection for LISTEN, when database_url goes through a pooler.
    database_listen_url: str | None = None
    secret_key: str = field(default="", repr=False)
    # Accepted for verifying tokens only, so a rotated key does not sign everyone out at once.
    previous_secret_key: str | None = field(default=None, repr=False)
    token_ttl_seconds: int = 3600
    cookie_name: str = "access_token"
    cookie_secure: bool = True
    introspection: bool = False
    dev: bool = False
    reauth_window_seconds: int = 600
    email_change: str = "immediate"
    mailer: str = field(default="log", repr=False)  # an SMTP URL may hold a password
    signin_max_failures: int = 5
    signin_max_failures_per_ip: int = 50
    signups_per_ip: int = 20
    throttle_window_seconds: int = 900
    credential_changes_per_window: int = 10
    trusted_proxies: frozenset[str] = frozenset()
    max_body_bytes: int = 1_048_576
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_pool_timeout: float = 2.0
    # PostgreSQL: a database that stops answering becomes a 503 within these (seconds).
    db_connect_timeout: float = 1.0
    db_statement_timeout: float = 1.5
    # PostgreSQL reached directly (no transaction pooler): keep prepared statements.
    db_server_prepared: bool = False
    log_level: str = "info"
    # argon2id parameters; the defaults are OWASP's (19 MiB, t=2, p=1). Lower them only for
    # test suites: every stored hash records its own parameters and is upgraded on sign-in.
    argon2_memory_kib: int = 19_456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    hash_threads: int = 2
    max_query_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2000
    issuer: str = "amend"

    @property
    def graphiql(self) -> bool:
        return self.dev

    @property
    def listen_url(self) -> str:
        """Where LISTEN connects: AMEND_DATABASE_LISTEN_URL, else the database URL."""
        return self.database_listen_url or self.database_url

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        dev: bool = False,
        env_file: str | Path | None = ".env",
        secret_file: str | Path = SECRET_FILE,
    ) -> Settings:
        """Read settings; `env` defaults to `.env` overlaid with the process environment."""
        if env is None:
            merged: dict[str, str] = {}
            if env_file is not None and Path(env_file).is_file():
                merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
            merged.update(os.environ)
            env = merged

        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value not in (None, "") else None

        dev = dev or _bool("AMEND_DEV", get("AMEND_DEV") or "false")
        kwargs: dict[str, object] = {"dev": dev}
        if (v := get("AMEND_DATABASE_URL")) is not None:
            kwargs["database_url"] = v
        ints = {
            "AMEND_TOKEN_TTL_SECONDS": ("token_ttl_seconds", 60),
            "AMEND_REAUTH_WINDOW_SECONDS": ("reauth_window_seconds", 0),
            "AMEND_SIGNIN_MAX_FAILURES": ("signin_max_failures", 1),
            "AMEND_SIGNIN_MAX_FAILURES_PER_IP": ("signin_max_failures_per_ip", 1),
            "AMEND_SIGNUPS_PER_IP": ("signups_per_ip", 1),
            "AMEND_THROTTLE_WINDOW_SECONDS": ("throttle_window_seconds", 1),
            "AMEND_CREDENTIAL_CHANGES_PER_WINDOW": ("credential_changes_per_window", 1),
            "AMEND_MAX_BODY_BYTES": ("max_body_bytes", 1024),
            "AMEND_ARGON2_MEMORY_KIB": ("argon2_memory_kib", 8),
            "AMEND_ARGON2_TIME_COST": ("argon2_time_cost", 1),
            "AMEND_ARGON2_PARALLELISM": ("argon2_parallelism", 1),
            "AMEND_HASH_THREADS": ("hash_threads", 1),
            "AMEND_DB_POOL_SIZE": ("db_pool_size", 1),
            "AMEND_DB_MAX_OVERFLOW": ("db_max_overflow", 0),
        }
        for name, (attr, minimum) in ints.items():
            if (v := get(name)) is not None:
                kwargs[attr] = _int(name, v, minimum=minimum)
        if (v := get("AMEND_DATABASE_LISTEN_URL")) is not None:
            kwargs["database_listen_url"] = v
        seconds = {
            "AMEND_DB_POOL_TIMEOUT": "db_pool_timeout",
            "AMEND_DB_CONNECT_TIMEOUT": "db_connect_timeout",
            "AMEND_DB_STATEMENT_TIMEOUT": "db_statement_timeout",
        }
        for name, attr in seconds.items():
            if (v := get(name)) is not None:
                try:
                    kwargs[attr] = float(v)
                except ValueError:
                    raise ConfigError(f"{name} must be a number of seconds") from None
        kwargs["db_server_prepared"] = _bool(
            "AMEND_DB_SERVER_PREPARED", get("AMEND_DB_SERVER_PREPARED") or "false"
        )
        if (v := get("AMEND_COOKIE_NAME")) is not None:
            kwargs["cookie_name"] = v
        kwargs["cookie_secure"] = _bool(
            "AMEND_COOKIE_SECURE", get("AMEND_COOKIE_SECURE") or str(not dev)
        )
        kwargs["introspection"] = _bool(
            "AMEND_INTROSPECTION", get("AMEND_INTROSPECTION") or str(dev)
        )
        email_change = get("AMEND_EMAIL_CHANGE") or "immediate"
        if email_change not in {"immediate", "verify"}:
            raise ConfigError("AMEND_EMAIL_CHANGE must be 'immediate' or 'verify'")
        kwargs["email_change"] = email_change
        mailer = get("AMEND_MAILER") or "log"
        if mailer != "log" and not mailer.startswith("smtp://"):
            raise ConfigError("AMEND_MAILER must be 'log' or an smtp://user:pass@host:port URL")
        kwargs["mailer"] = mailer
        if (v := get("AMEND_TRUSTED_PROXIES")) is not None:
            kwargs["trusted_proxies"] = frozenset(p.strip() for p in v.split(",") if p.strip())
        log_level = (get("AMEND_LOG_LEVEL") or "info").lower()
        if log_level not in {"debug", "info", "warning", "error", "critical"}:
            raise ConfigError("AMEND_LOG_LEVEL must be debug, info, warning, error or critical")
        kwargs["log_level"] = log_level
        kwargs["secret_key"] = get("AMEND_SECRET_KEY") or _secret_from_file(Path(secret_file))
        kwargs["previous_secret_key"] = get("AMEND_SECRET_KEY_PREVIOUS")
        settings = cls(**kwargs)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if len(self.secret_key.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"AMEND_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes")
        previous = self.previous_secret_key
        if previous is not None and len(previous.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"AMEND_SECRET_KEY_PREVIOUS must be at least {MIN_SECRET_BYTES} bytes"
            )
        if not self.cookie_name or any(c in self.cookie_name for c in " ;,=\t\r\n"):
            raise ConfigError("AMEND_COOKIE_NAME is not a valid cookie name")
        if self.cookie_name.startswith("__Host-") and not self.cookie_secure:
            raise ConfigError("a __Host- cookie needs AMEND_COOKIE_SECURE=true")
        if self.database_url.startswith("sqlite") and _in_memory(self.database_url):
            # Every connection to an in-memory database gets a database of its own: the
            # writer's changes would be invisible to the reader connections.
            raise ConfigError("AMEND_DATABASE_URL: an in-memory SQLite database cannot be shared")


def _in_memory(url: str) -> bool:
    """`sqlite+aiosqlite://`, `…///:memory:` or a `mode=memory` URI (SQLAlchemy's URL form:
    the database is the path after the third slash)."""
    parts = urlsplit(url)
    database = parts.path[1:]
    return database in ("", ":memory:") or "memory" in parse_qs(parts.query).get("mode", [])


def _secret_from_file(path: Path) -> str:
    """Read the signing secret, creating it (mode 0600) on first use."""
    if path.is_file():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting at once must not both write a different secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    log.warning(
        "AMEND_SECRET_KEY is not set: generated a signing key into %s (mode 0600); "
        "set AMEND_SECRET_KEY to share one key between instances",
        path,
    )
    return secret
