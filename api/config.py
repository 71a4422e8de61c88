"""Settings from `AMEND_*` environment variables (and a `.env` file).

Built once by the CLI or the app factory and passed down; nothing reads the environment at
import time, so tests can build as many independent apps as they like.

Each setting is declared once, as a field of `Settings` made by `setting()`: the variable's
name, the default, and its rules (`minimum`, `choices`, `check`/`expect`, `dev_default`). The
field's type decides how the text is parsed (int, float, bool, str, `str | None`, a
comma-separated `frozenset[str]`); `from_env` reads every declared field, and
tests/unit/test_config.py holds the README configuration table to the same declarations.
Adding one is one line here plus its README row, e.g.:

    reset_ttl_seconds: int = setting("AMEND_PASSWORD_RESET_TTL_SECONDS", 3600, minimum=60)

Rules that relate several settings live in `Settings.validate`.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, get_type_hints
from urllib.parse import parse_qs, urlsplit

from dotenv import dotenv_values

log = logging.getLogger("amend.config")

MIN_SECRET_BYTES = 32
SECRET_FILE = ".amend-secret"
T = TypeVar("T")
SAME: Any = object()  # `dev_default`: the same default under --dev


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which variable and why."""


@dataclass(frozen=True, slots=True)
class Env:
    """How one setting is read: kept in its dataclass field's metadata."""

    name: str
    minimum: float = 0
    choices: tuple[str, ...] = ()
    lower: bool = False  # compare (and keep) the value in lowercase
    check: Callable[[Any], bool] | None = None
    expect: str = ""  # what `check` wants, for the error message
    dev_default: Any = SAME  # the default under --dev, when it differs


def setting(name: str, default: T, *, secret: bool = False, **rules: Any) -> T:
    """A field read from the variable `name`; a `secret` one is left out of `repr`."""
    how = Env(name, **rules)
    return field(default=default, repr=not secret, metadata={"env": how})


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _number(kind: type[int] | type[float], name: str, raw: str, minimum: float) -> float:
    try:
        value = kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name} must be {what}, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}")
    return value


def _parse(kind: Any, how: Env, raw: str) -> object:
    """The value of a variable's text, for a field of type `kind`, checked against its rules."""
    name = how.name
    value: Any
    if kind is bool:
        value = _bool(name, raw)
    elif kind is int or kind is float:
        value = _number(kind, name, raw, how.minimum)
    elif kind == frozenset[str]:
        value = frozenset(p.strip() for p in raw.split(",") if p.strip())
    else:
        value = raw.lower() if how.lower else raw
    if how.choices and value not in how.choices:
        raise ConfigError(f"{name} must be one of {', '.join(how.choices)}, not {raw!r}")
    if how.check is not None and not how.check(value):
        raise ConfigError(f"{name} must be {how.expect}")
    return value


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_LINK = "a URL template containing {token}"


def _link_template(value: str) -> bool:
    return "{token}" in value


@dataclass(frozen=True)
class Settings:
    database_url: str = setting("AMEND_DATABASE_URL", "sqlite+aiosqlite:///./amend.db")
    # PostgreSQL: a direct connection for LISTEN, when database_url goes through a pooler.
    database_listen_url: str | None = setting("AMEND_DATABASE_LISTEN_URL", None, secret=True)
    # Missing: generated once into the secret file (`from_env`).
    secret_key: str = setting("AMEND_SECRET_KEY", "", secret=True)
    # Accepted for verifying tokens only, so a rotated key does not sign everyone out at once.
    previous_secret_key: str | None = setting("AMEND_SECRET_KEY_PREVIOUS", None, secret=True)
    token_ttl_seconds: int = setting("AMEND_TOKEN_TTL_SECONDS", 3600, minimum=60)
    cookie_name: str = setting("AMEND_COOKIE_NAME", "access_token")
    cookie_secure: bool = setting("AMEND_COOKIE_SECURE", True, dev_default=False)
    introspection: bool = setting("AMEND_INTROSPECTION", False, dev_default=True)
    dev: bool = setting("AMEND_DEV", False)
    reauth_window_seconds: int = setting("AMEND_REAUTH_WINDOW_SECONDS", 600)
    email_change: str = setting("AMEND_EMAIL_CHANGE", "immediate", choices=("immediate", "verify"))
    # An SMTP URL may hold a password.
    mailer: str = setting(
        "AMEND_MAILER",
        "log",
        secret=True,
        check=lambda v: v == "log" or v.startswith("smtp://"),
        expect="'log' or an smtp://user:pass@host:port URL",
    )
    signin_max_failures: int = setting("AMEND_SIGNIN_MAX_FAILURES", 5, minimum=1)
    signin_max_failures_per_ip: int = setting("AMEND_SIGNIN_MAX_FAILURES_PER_IP", 50, minimum=1)
    signups_per_ip: int = setting("AMEND_SIGNUPS_PER_IP", 20, minimum=1)
    throttle_window_seconds: int = setting("AMEND_THROTTLE_WINDOW_SECONDS", 900, minimum=1)
    credential_changes_per_window: int = setting(
        "AMEND_CREDENTIAL_CHANGES_PER_WINDOW", 10, minimum=1
    )
    trusted_proxies: frozenset[str] = setting("AMEND_TRUSTED_PROXIES", frozenset())
    max_body_bytes: int = setting("AMEND_MAX_BODY_BYTES", 1_048_576, minimum=1024)
    body_timeout_seconds: int = setting("AMEND_BODY_TIMEOUT_SECONDS", 10, minimum=1)
    password_reset_ttl_seconds: int = setting("AMEND_PASSWORD_RESET_TTL_SECONDS", 1800, minimum=60)
    email_revert_ttl_seconds: int = setting("AMEND_EMAIL_REVERT_TTL_SECONDS", 604_800, minimum=60)
    # Link templates for the recovery mails, holding `{token}`; empty: the mail holds the token.
    password_reset_url: str = setting(
        "AMEND_PASSWORD_RESET_URL", "", check=_link_template, expect=_LINK
    )
    email_revert_url: str = setting(
        "AMEND_EMAIL_REVERT_URL", "", check=_link_template, expect=_LINK
    )
    email_verify_url: str = setting(
        "AMEND_EMAIL_VERIFY_URL", "", check=_link_template, expect=_LINK
    )
    db_pool_size: int = setting("AMEND_DB_POOL_SIZE", 10, minimum=1)
    db_max_overflow: int = setting("AMEND_DB_MAX_OVERFLOW", 10)
    db_pool_timeout: float = setting("AMEND_DB_POOL_TIMEOUT", 2.0)
    # PostgreSQL: a database that stops answering becomes a 503 within these (seconds).
    db_connect_timeout: float = setting("AMEND_DB_CONNECT_TIMEOUT", 1.0, minimum=0.05)
    db_statement_timeout: float = setting("AMEND_DB_STATEMENT_TIMEOUT", 1.5, minimum=0.05)
    # PostgreSQL reached directly (no transaction pooler): keep prepared statements.
    db_server_prepared: bool = setting("AMEND_DB_SERVER_PREPARED", False)
    log_level: str = setting("AMEND_LOG_LEVEL", "info", choices=LOG_LEVELS, lower=True)
    # argon2id parameters; the defaults are OWASP's (19 MiB, t=2, p=1). Lower them only for
    # test suites: every stored hash records its own parameters and is upgraded on sign-in.
    argon2_memory_kib: int = setting("AMEND_ARGON2_MEMORY_KIB", 19_456, minimum=8)
    argon2_time_cost: int = setting("AMEND_ARGON2_TIME_COST", 2, minimum=1)
    argon2_parallelism: int = setting("AMEND_ARGON2_PARALLELISM", 1, minimum=1)
    hash_threads: int = setting("AMEND_HASH_THREADS", 2, minimum=1)
    # Fixed limits, not read from the environment.
    max_query_depth: int = (
        15  # introspection fields count; the standard introspection query needs 14
    )
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
        """Read settings; `env` defaults to `.env` overlaid with the process environment.
        An empty variable counts as unset."""
        if env is None:
            merged: dict[str, str] = {}
            if env_file is not None and Path(env_file).is_file():
                merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
            merged.update(os.environ)
            env = merged
        kinds = get_type_hints(cls)
        values: dict[str, Any] = {}
        dev_defaults: dict[str, Any] = {}
        for f in fields(cls):
            how: Env | None = f.metadata.get("env")
            if how is None:
                continue
            raw = env.get(how.name)
            if raw:
                values[f.name] = _parse(kinds[f.name], how, raw)
            elif how.dev_default is not SAME:
                dev_defaults[f.name] = how.dev_default
        values["dev"] = dev or values.get("dev", False)
        if values["dev"]:
            values = {**dev_defaults, **values}
        if "secret_key" not in values:
            values["secret_key"] = _secret_from_file(Path(secret_file))
        settings = cls(**values)
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
