"""Units with their time zones, and the daily and monthly rollups every figure reads; filled from the votes.

Revision ID: 0002
Revises: 0001

Filling the rollup reads every vote once (about a minute at 10 million on a laptop), inside the
migration's transaction and lock: other fleet processes starting meanwhile wait for it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

KEY = ["unit", "device", "question", "scale", "day", "answer", "role", "reason", "misuse", "after_hours", "uncertain"]


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("tz", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("unit", name=op.f("pk_units")),
    )
    for name in ("daily_rollup", "monthly_rollup"):
        op.create_table(
            name,
            sa.Column("unit", sa.Text(), nullable=False),
            sa.Column("device", sa.Text(), nullable=False),
            sa.Column("question", sa.Text(), nullable=False),
            sa.Column("scale", sa.Text(), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("answer", sa.Integer(), nullable=False),
            sa.Column("role", sa.Text(), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("misuse", sa.Boolean(), nullable=False),
            sa.Column("after_hours", sa.Boolean(), nullable=False),
            sa.Column("uncertain", sa.Boolean(), nullable=False),
            sa.Column("count", BigInt, nullable=False),
            sa.PrimaryKeyConstraint(*KEY, name=op.f(f"pk_{name}")),
            sqlite_with_rowid=False,
        )
    op.create_index("daily_rollup_day", "daily_rollup", ["day"])
    # The data step uses the live rollup code: the rollup is derived data, rebuilt the way the
    # store rebuilds it (``hymy fleet rollup --rebuild``), never a copy of an old formula.
    from fleet.db.rollup import Rollup

    conn = op.get_bind()
    Rollup(conn, conn.dialect).rebuild(conn, hours=False)  # the hour rollup comes in 0005


def downgrade() -> None:
    op.drop_index("daily_rollup_day", table_name="daily_rollup")
    op.drop_table("monthly_rollup")
    op.drop_table("daily_rollup")
    op.drop_table("units")
