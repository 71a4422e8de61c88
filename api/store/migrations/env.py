"""Alembic environment. Migrations always run on a connection handed in by `api.store.migrate`
(see there), so the same code serves the CLI, the server start-up and the tests."""

from __future__ import annotations

from alembic import context

from api.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `amend migrate`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
