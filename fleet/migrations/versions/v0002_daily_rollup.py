"""Units with their time zones, and the daily and monthly rollups every figure reads; filled from the votes.

Revision ID: 0002
Revises: 0001

The tables are filled from the votes by revision 0008 (the last that changes the rollups' shape).
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
    # No data step here: the rollups are derived data, filled from the votes by the live rollup code in
    # the last revision that changes their shape (0008), which needs every column that code writes.


def downgrade() -> None:
    op.drop_index("daily_rollup_day", table_name="daily_rollup")
    op.drop_table("monthly_rollup")
    op.drop_table("daily_rollup")
    op.drop_table("units")
