"""The fleet schema as the sqlite-utils releases left it (0001_initial + 0002_store_identity).

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

#: 64-bit, INTEGER on SQLite (as fleet.db.tables: a revision never imports the live table definitions).
BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clock_anchors",
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("boot", sa.Text(), nullable=False),
        sa.Column("wall", BigInt, nullable=False),
        sa.Column("mono", BigInt, nullable=False),
        sa.Column("applied_offset", BigInt, nullable=True),
        sa.PrimaryKeyConstraint("device", "boot", name=op.f("pk_clock_anchors")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "desired_configs",
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("version", BigInt, nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.Column("set_at", BigInt, nullable=False),
        sa.PrimaryKeyConstraint("device", name=op.f("pk_desired_configs")),
    )
    op.create_table(
        "rejection_counts",
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("count", BigInt, nullable=False),
        sa.Column("last_at", BigInt, nullable=False),
        sa.PrimaryKeyConstraint("reason", "device", name=op.f("pk_rejection_counts")),
    )
    op.create_table(
        "rejection_log",
        sa.Column("id", BigInt, autoincrement=True, nullable=False),
        sa.Column("at", BigInt, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("device", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejection_log")),
    )
    op.create_table(
        "terminals",
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=True),
        sa.Column("conn", BigInt, server_default="0", nullable=False),
        sa.Column("state_wall", BigInt, nullable=True),
        sa.Column("fw", sa.Text(), nullable=True),
        sa.Column("last_seen", BigInt, nullable=True),
        sa.Column("hb_wall", BigInt, nullable=True),
        sa.Column("hb_mono", BigInt, nullable=True),
        sa.Column("hb_boot", sa.Text(), nullable=True),
        sa.Column("hb_synced", sa.Boolean(), nullable=True),
        sa.Column("uptime", BigInt, nullable=True),
        sa.Column("queue", BigInt, nullable=True),
        sa.Column("oldest", BigInt, nullable=True),
        sa.Column("temp", sa.Float(), nullable=True),
        sa.Column("disk", BigInt, nullable=True),
        sa.Column("applied_version", BigInt, server_default="0", nullable=False),
        sa.Column("report_version", BigInt, nullable=True),
        sa.Column("report_status", sa.Text(), nullable=True),
        sa.Column("report_reason", sa.Text(), nullable=True),
        sa.Column("report_at", BigInt, nullable=True),
        sa.Column("refused", BigInt, nullable=True),
        sa.PrimaryKeyConstraint("device", name=op.f("pk_terminals")),
    )
    op.create_table(
        "votes",
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("store", sa.Text(), server_default="", nullable=False),
        sa.Column("seq", BigInt, nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("scale", sa.Text(), nullable=False),
        sa.Column("answer", sa.Integer(), nullable=False),
        sa.Column("lang", sa.Text(), nullable=False),
        sa.Column("wall", BigInt, nullable=False),
        sa.Column("mono", BigInt, nullable=False),
        sa.Column("boot", sa.Text(), nullable=False),
        sa.Column("synced", sa.Boolean(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.Column("cfg", BigInt, nullable=False),
        sa.Column("flags", sa.Text(), nullable=True),
        sa.Column("misuse", sa.Boolean(), nullable=False),
        sa.Column("role", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("received", BigInt, nullable=False),
        sa.Column("best", BigInt, nullable=False),
        sa.Column("time_status", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("device", "store", "seq", name=op.f("pk_votes")),
    )
    # Only unsynchronised votes are indexed (time correction finds them by boot).
    op.create_index(
        "votes_unsynced",
        "votes",
        ["device", "boot"],
        sqlite_where=sa.text("synced = 0"),
        postgresql_where=sa.text("synced = false"),
    )


def downgrade() -> None:
    op.drop_index("votes_unsynced", table_name="votes")
    op.drop_table("votes")
    op.drop_table("terminals")
    op.drop_table("rejection_log")
    op.drop_table("rejection_counts")
    op.drop_table("desired_configs")
    op.drop_table("clock_anchors")
