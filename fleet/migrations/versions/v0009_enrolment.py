"""Enrolment secrets and the requests of terminals that enrolled with them.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrolment_secrets",
        sa.Column("id", BigInt, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", BigInt, nullable=False),
        sa.Column("expires_at", BigInt, nullable=False),
        sa.Column("max_uses", sa.Integer()),
        sa.Column("uses", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("require_approval", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("replaces", sa.Text()),
        sa.Column("revoked_at", BigInt),
        sa.Column("revoked_by", sa.Text()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolment_secrets")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_enrolment_secrets_secret_hash")),
    )
    op.create_table(
        "enrolment_requests",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("secret_id", BigInt, nullable=False),
        sa.Column("hardware", sa.Text(), nullable=False),
        sa.Column("fw", sa.Text()),
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("requested_at", BigInt, nullable=False),
        sa.Column("decided_by", sa.Text()),
        sa.Column("decided_at", BigInt),
        sa.ForeignKeyConstraint(
            ["secret_id"], ["enrolment_secrets.id"], name=op.f("fk_enrolment_requests_secret_id_enrolment_secrets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolment_requests")),
    )
    op.create_index("enrolment_requests_device", "enrolment_requests", ["device"])


def downgrade() -> None:
    op.drop_index("enrolment_requests_device", table_name="enrolment_requests")
    op.drop_table("enrolment_requests")
    op.drop_table("enrolment_secrets")
