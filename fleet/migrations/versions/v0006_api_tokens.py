"""Bearer tokens of reporting systems for the read-only API.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", BigInt, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("scope_id", BigInt),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", BigInt, nullable=False),
        sa.Column("revoked_at", BigInt),
        sa.Column("last_used_at", BigInt),
        sa.ForeignKeyConstraint(["scope_id"], ["org_nodes.id"], name=op.f("fk_api_tokens_scope_id_org_nodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
