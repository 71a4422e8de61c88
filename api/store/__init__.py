"""Persistence: the only package that speaks SQL.

SQLModel declares the tables (and Alembic migrates them); the request paths run SQLAlchemy
Core statements on those tables without ORM sessions or objects, which keeps one update at a
couple of hundred microseconds instead of milliseconds.
"""

from api.store import (
    attempts,
    audit,
    email_changes,
    events,
    outbox,
    projects,
    recovery_tokens,
    sessions,
    users,
)
from api.store.engine import Database, Tx

__all__ = [
    "Database",
    "Tx",
    "attempts",
    "audit",
    "email_changes",
    "events",
    "outbox",
    "projects",
    "recovery_tokens",
    "sessions",
    "users",
]
