"""The hour rollup: votes per unit, month, weekday and local hour (the dashboards' heat map).

Revision ID: 0005
Revises: 0004

Filled from the votes by revision 0008 (the last that changes the rollups' shape).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

KEY = ["unit", "device", "question", "scale", "month", "weekday", "hour", "grade", "role", "misuse", "after_hours"]


def upgrade() -> None:
    op.create_table(
        "hour_rollup",
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("scale", sa.Text(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("misuse", sa.Boolean(), nullable=False),
        sa.Column("after_hours", sa.Boolean(), nullable=False),
        sa.Column("count", BigInt, nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name=op.f("pk_hour_rollup")),
        sqlite_with_rowid=False,
    )
    # Filled from the votes by revision 0008, the last that changes the rollups' shape.


def downgrade() -> None:
    op.drop_table("hour_rollup")
