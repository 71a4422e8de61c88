"""recovery tokens, sealed and failed outbox rows

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 12:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recovery_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("user_pk", sa.Integer(), nullable=True),
        sa.Column("identifier", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["endpoint_id"], ["endpoints.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_pk"], ["users.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    with op.batch_alter_table("recovery_tokens", schema=None) as batch_op:
        batch_op.create_index(
            "ix_recovery_identifier",
            ["endpoint_id", "purpose", "identifier", "created_at"],
            unique=False,
        )
        batch_op.create_index("ix_recovery_ip", ["purpose", "ip", "created_at"], unique=False)
        batch_op.create_index("ix_recovery_user", ["user_pk", "purpose"], unique=False)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sealed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("failed_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("failed_at")
        batch_op.drop_column("sealed")
    with op.batch_alter_table("recovery_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_recovery_user")
        batch_op.drop_index("ix_recovery_ip")
        batch_op.drop_index("ix_recovery_identifier")
    op.drop_table("recovery_tokens")
