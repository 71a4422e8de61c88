from __future__ import annotations

import os
import stat
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
