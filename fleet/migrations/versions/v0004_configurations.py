"""Configuration sets, their versions and their assignments to the organisation and terminals.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "config_sets",
        sa.Column("id", BigInt, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", BigInt, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_sets")),
        sa.UniqueConstraint("name", name=op.f("uq_config_sets_name")),
    )
    op.create_table(
        "config_versions",
        sa.Column("set_id", BigInt, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.Column("saved_at", BigInt, nullable=False),
        sa.Column("saved_by", sa.Text(), nullable=False),
        sa.Column("published_at", BigInt),
        sa.Column("published_by", sa.Text()),
        sa.ForeignKeyConstraint(["set_id"], ["config_sets.id"], name=op.f("fk_config_versions_set_id_config_sets")),
        sa.PrimaryKeyConstraint("set_id", "version", name=op.f("pk_config_versions")),
    )
    op.create_table(
        "config_assignments",
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("set_id", BigInt, nullable=False),
        sa.Column("assigned_at", BigInt, nullable=False),
        sa.ForeignKeyConstraint(["set_id"], ["config_sets.id"], name=op.f("fk_config_assignments_set_id_config_sets")),
        sa.PrimaryKeyConstraint("target", name=op.f("pk_config_assignments")),
    )


def downgrade() -> None:
    op.drop_table("config_assignments")
    op.drop_table("config_versions")
    op.drop_table("config_sets")
