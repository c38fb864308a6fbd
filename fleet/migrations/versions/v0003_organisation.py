"""The organisation hierarchy, accounts, placements, retirements, the audit log and ingest counters (fleet web).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_nodes",
        sa.Column("id", BigInt, primary_key=True, autoincrement=True),
        sa.Column("parent_id", BigInt),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name_fi", sa.Text(), nullable=False),
        sa.Column("name_sv", sa.Text(), nullable=False, server_default=""),
        sa.Column("name_en", sa.Text(), nullable=False, server_default=""),
        sa.Column("oid", sa.Text()),
        sa.Column("service_type", sa.Text()),
        sa.Column("hours", sa.Text()),
        sa.Column("misuse_interval_s", sa.Float()),
        sa.Column("target", sa.Integer()),
        sa.Column("archived", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", BigInt, nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["org_nodes.id"], name=op.f("fk_org_nodes_parent_id_org_nodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_nodes")),
        sa.UniqueConstraint("code", name=op.f("uq_org_nodes_code")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", BigInt, primary_key=True, autoincrement=True),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("scope_id", BigInt),
        sa.Column("lang", sa.Text(), nullable=False, server_default="fi"),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", BigInt, nullable=False),
        sa.Column("last_login", BigInt),
        sa.ForeignKeyConstraint(["scope_id"], ["org_nodes.id"], name=op.f("fk_accounts_scope_id_org_nodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("username", name=op.f("uq_accounts_username")),
    )
    op.create_table(
        "placements",
        sa.Column("id", BigInt, primary_key=True, autoincrement=True),
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("unit", sa.Text()),
        sa.Column("location_id", BigInt),
        sa.Column("since_ms", BigInt, nullable=False),
        sa.Column("until_ms", BigInt),
        sa.Column("by", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["location_id"], ["org_nodes.id"], name=op.f("fk_placements_location_id_org_nodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placements")),
    )
    op.create_index("placements_device", "placements", ["device", "since_ms"])
    op.create_table(
        "audit_log",
        sa.Column("id", BigInt, primary_key=True, autoincrement=True),
        sa.Column("at", BigInt, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("object", sa.Text(), nullable=False),
        sa.Column("before", sa.Text()),
        sa.Column("after", sa.Text()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_table(
        "retired_terminals",
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("at", BigInt, nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("device", name=op.f("pk_retired_terminals")),
    )
    op.create_table(
        "ingest_stats",
        sa.Column("worker", sa.Text(), nullable=False),
        sa.Column("started_at", BigInt, nullable=False),
        sa.Column("at", BigInt, nullable=False),
        sa.Column("messages", BigInt, nullable=False),
        sa.Column("votes", BigInt, nullable=False),
        sa.Column("duplicates", BigInt, nullable=False),
        sa.Column("rejected", BigInt, nullable=False),
        sa.Column("prev_at", BigInt),
        sa.Column("prev_votes", BigInt),
        sa.PrimaryKeyConstraint("worker", name=op.f("pk_ingest_stats")),
    )


def downgrade() -> None:
    op.drop_table("ingest_stats")
    op.drop_table("retired_terminals")
    op.drop_table("audit_log")
    op.drop_index("placements_device", table_name="placements")
    op.drop_table("placements")
    op.drop_table("accounts")
    op.drop_table("org_nodes")
