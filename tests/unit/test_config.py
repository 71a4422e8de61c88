from __future__ import annotations

import os
import re
import stat
from dataclasses import fields
from pathlib import Path

import pytest

from api.config import ConfigError, Settings

SECRET = "k" * 32


def test_defaults_follow_the_spec(tmp_path: Path) -> None:
    s = Settings.from_env({"AMEND_SECRET_KEY": SECRET}, env_file=None)
    assert s.database_url == "sqlite+aiosqlite:///./amend.db"
    assert s.token_ttl_seconds == 3600
    assert s.cookie_name == "access_token"
    assert s.cookie_secure is True
    assert s.introspection is False
    assert s.reauth_window_seconds == 600
    assert (s.signin_max_failures, s.signin_max_failures_per_ip) == (5, 50)
    assert s.throttle_window_seconds == 900
    assert s.max_body_bytes == 1_048_576
    assert (s.argon2_memory_kib, s.argon2_time_cost, s.argon2_parallelism) == (19_456, 2, 1)
    assert (s.password_reset_ttl_seconds, s.email_revert_ttl_seconds) == (1800, 604_800)
    assert (s.password_reset_url, s.email_revert_url, s.email_verify_url) == ("", "", "")


def test_dev_mode_drops_secure_and_enables_introspection() -> None:
    s = Settings.from_env({"AMEND_SECRET_KEY": SECRET}, dev=True, env_file=None)
    assert s.cookie_secure is False
    assert s.introspection is True
    assert s.graphiql is True


def test_explicit_values_win_over_dev_defaults() -> None:
    env = {"AMEND_SECRET_KEY": SECRET, "AMEND_COOKIE_SECURE": "true", "AMEND_INTROSPECTION": "0"}
    s = Settings.from_env(env, dev=True, env_file=None)
    assert s.cookie_secure is True
    assert s.introspection is False


def test_short_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="AMEND_SECRET_KEY"):
        Settings.from_env({"AMEND_SECRET_KEY": "short"}, env_file=None)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AMEND_TOKEN_TTL_SECONDS", "soon"),
        ("AMEND_COOKIE_SECURE", "maybe"),
        ("AMEND_EMAIL_CHANGE", "later"),
        ("AMEND_LOG_LEVEL", "loud"),
        ("AMEND_MAX_BODY_BYTES", "10"),
        ("AMEND_SIGNUPS_PER_IP", "0"),
        ("AMEND_PASSWORD_RESET_TTL_SECONDS", "10"),
        ("AMEND_EMAIL_REVERT_TTL_SECONDS", "week"),
        ("AMEND_PASSWORD_RESET_URL", "https://app.example.com/reset"),
        ("AMEND_EMAIL_REVERT_URL", "https://app.example.com/revert?t=token"),
        ("AMEND_EMAIL_VERIFY_URL", "https://app.example.com/verify"),
    ],
)
def test_invalid_values_are_refused_with_the_variable_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({"AMEND_SECRET_KEY": SECRET, name: value}, env_file=None)


def test_missing_secret_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    secret_file = tmp_path / ".amend-secret"
    first = Settings.from_env({}, env_file=None, secret_file=secret_file)
    second = Settings.from_env({}, env_file=None, secret_file=secret_file)
    assert first.secret_key == second.secret_key
    assert len(first.secret_key) >= 32
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600


def test_env_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"AMEND_SECRET_KEY={SECRET}\nAMEND_TOKEN_TTL_SECONDS=120\n")
    for key in list(os.environ):
        if key.startswith("AMEND_"):
            monkeypatch.delenv(key)
    s = Settings.from_env(env_file=env_file, secret_file=tmp_path / "unused")
    assert s.token_ttl_seconds == 120
    assert s.secret_key == SECRET


def test_host_prefixed_cookie_requires_secure() -> None:
    env = {"AMEND_SECRET_KEY": SECRET, "AMEND_COOKIE_NAME": "__Host-session"}
    assert Settings.from_env(env, env_file=None).cookie_name == "__Host-session"
    with pytest.raises(ConfigError):
        Settings.from_env({**env, "AMEND_COOKIE_SECURE": "false"}, env_file=None)


def test_previous_secret_is_read_and_must_be_long_enough() -> None:
    env = {"AMEND_SECRET_KEY": SECRET, "AMEND_SECRET_KEY_PREVIOUS": "p" * 32}
    assert Settings.from_env(env, env_file=None).previous_secret_key == "p" * 32
    with pytest.raises(ConfigError, match="AMEND_SECRET_KEY_PREVIOUS"):
        Settings.from_env({**env, "AMEND_SECRET_KEY_PREVIOUS": "short"}, env_file=None)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///:memory:",
        "sqlite+aiosqlite:///file:amend?mode=memory&cache=shared&uri=true",
    ],
)
def test_an_in_memory_sqlite_database_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="AMEND_DATABASE_URL"):
        Settings.from_env({"AMEND_SECRET_KEY": SECRET, "AMEND_DATABASE_URL": url}, env_file=None)


def test_a_sqlite_file_and_a_postgresql_url_are_accepted() -> None:
    for url in ("sqlite+aiosqlite:///./amend.db", "postgresql+asyncpg://a:b@db:5432/amend"):
        env = {"AMEND_SECRET_KEY": SECRET, "AMEND_DATABASE_URL": url}
        assert Settings.from_env(env, env_file=None).database_url == url


README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `(AMEND_[A-Z0-9_]+)` \| ([^|]*) \|")


def _declared() -> dict[str, object]:
    """Each declared variable and its default."""
    return {f.metadata["env"].name: f.default for f in fields(Settings) if "env" in f.metadata}


def _documented_default(value: object) -> str | None:
    """How the README's default column spells a default (None: described in words)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return value if isinstance(value, str) and value else None


def test_the_readme_table_lists_every_setting_with_its_default() -> None:
    rows = dict(m.groups() for m in map(ROW.match, README.read_text().splitlines()) if m)
    declared = _declared()
    assert set(rows) == set(declared)
    for name, default in declared.items():
        spelled = _documented_default(default)
        if spelled is not None:
            assert rows[name].startswith(f"`{spelled}`"), name


def test_every_declared_setting_is_read_from_its_variable() -> None:
    # A value other than the default for each declared variable: parsing follows the field.
    env = {
        "AMEND_SECRET_KEY": SECRET,
        "AMEND_SECRET_KEY_PREVIOUS": "p" * 32,
        "AMEND_DATABASE_URL": "postgresql+asyncpg://a:b@db/amend",
        "AMEND_TOKEN_TTL_SECONDS": "120",
        "AMEND_COOKIE_NAME": "sid",
        "AMEND_COOKIE_SECURE": "false",
        "AMEND_INTROSPECTION": "yes",
        "AMEND_DEV": "on",
        "AMEND_REAUTH_WINDOW_SECONDS": "0",
        "AMEND_EMAIL_CHANGE": "verify",
        "AMEND_MAILER": "smtp://u:p@mail:25",
        "AMEND_SIGNIN_MAX_FAILURES": "3",
        "AMEND_SIGNIN_MAX_FAILURES_PER_IP": "30",
        "AMEND_SIGNUPS_PER_IP": "2",
        "AMEND_THROTTLE_WINDOW_SECONDS": "60",
        "AMEND_CREDENTIAL_CHANGES_PER_WINDOW": "4",
        "AMEND_TRUSTED_PROXIES": " 10.0.0.1, ,10.0.0.2",
        "AMEND_MAX_BODY_BYTES": "4096",
        "AMEND_BODY_TIMEOUT_SECONDS": "3",
        "AMEND_PASSWORD_RESET_TTL_SECONDS": "600",
        "AMEND_EMAIL_REVERT_TTL_SECONDS": "3600",
        "AMEND_PASSWORD_RESET_URL": "https://app.example/reset?t={token}",
        "AMEND_EMAIL_REVERT_URL": "https://app.example/revert?t={token}",
        "AMEND_EMAIL_VERIFY_URL": "https://app.example/verify?t={token}",
        "AMEND_DB_POOL_SIZE": "3",
        "AMEND_DB_MAX_OVERFLOW": "0",
        "AMEND_DB_POOL_TIMEOUT": "0.5",
        "AMEND_DATABASE_LISTEN_URL": "postgresql+asyncpg://a:b@db-direct/amend",
        "AMEND_DB_CONNECT_TIMEOUT": "0.5",
        "AMEND_DB_STATEMENT_TIMEOUT": "0.75",
        "AMEND_DB_SERVER_PREPARED": "true",
        "AMEND_LOG_LEVEL": "DEBUG",
        "AMEND_ARGON2_MEMORY_KIB": "64",
        "AMEND_ARGON2_TIME_COST": "3",
        "AMEND_ARGON2_PARALLELISM": "2",
        "AMEND_HASH_THREADS": "1",
    }
    assert set(env) == set(_declared())
    s = Settings.from_env(env, env_file=None)
    defaults = Settings()
    for f in fields(Settings):
        if "env" in f.metadata:
            assert getattr(s, f.name) != getattr(defaults, f.name), f.name
    assert s.trusted_proxies == frozenset({"10.0.0.1", "10.0.0.2"})
    assert (s.log_level, s.db_pool_timeout) == ("debug", 0.5)


def test_an_empty_variable_counts_as_unset() -> None:
    s = Settings.from_env(
        {"AMEND_SECRET_KEY": SECRET, "AMEND_TOKEN_TTL_SECONDS": ""}, env_file=None
    )
    assert s.token_ttl_seconds == 3600


def test_secrets_stay_out_of_the_settings_repr() -> None:
    env = {"AMEND_SECRET_KEY": SECRET, "AMEND_MAILER": "smtp://user:hunter2@mail:25"}
    text = repr(Settings.from_env(env, env_file=None))
    assert SECRET not in text and "hunter2" not in text
