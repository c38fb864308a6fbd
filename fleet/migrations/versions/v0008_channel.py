"""A channel for every vote ("terminal" for all stored so far) and in the rollups' keys, so that
results can be filtered by where the answers were given; the rollups are rebuilt from the votes.

Revision ID: 0008
Revises: 0007

The rollups are derived data, so this revision drops and recreates them with the new key and fills
them with the live rollup code (as 0002 and 0005 did before them; those now leave the filling to the
last revision that changes the rollups' shape). About a minute per 10 million votes; other fleet
processes starting meanwhile wait. Downgrading leaves the older rollup tables empty: the older
release's ``hymy fleet rollup --rebuild`` fills them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

DAY_KEY = [
    "unit",
    "device",
    "question",
    "scale",
    "day",
    "answer",
    "role",
    "reason",
    "misuse",
    "after_hours",
    "uncertain",
]
HOUR_KEY = ["unit", "device", "question", "scale", "month", "weekday", "hour", "grade", "role", "misuse", "after_hours"]


def _day_tables(channel: bool) -> None:
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
            *((sa.Column("channel", sa.Text(), nullable=False),) if channel else ()),
            sa.Column("count", BigInt, nullable=False),
            sa.PrimaryKeyConstraint(*DAY_KEY, *(["channel"] if channel else []), name=op.f(f"pk_{name}")),
            sqlite_with_rowid=False,
        )
    op.create_index("daily_rollup_day", "daily_rollup", ["day"])


def _hour_table(channel: bool) -> None:
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
        *((sa.Column("channel", sa.Text(), nullable=False),) if channel else ()),
        sa.Column("count", BigInt, nullable=False),
        sa.PrimaryKeyConstraint(*HOUR_KEY, *(["channel"] if channel else []), name=op.f("pk_hour_rollup")),
        sqlite_with_rowid=False,
    )


def _drop_rollups() -> None:
    op.drop_index("daily_rollup_day", table_name="daily_rollup")
    for name in ("daily_rollup", "monthly_rollup", "hour_rollup"):
        op.drop_table(name)


def upgrade() -> None:
    op.add_column("votes", sa.Column("channel", sa.Text(), nullable=False, server_default="terminal"))
    _drop_rollups()
    _day_tables(channel=True)
    _hour_table(channel=True)
    from fleet.db.rollup import Rollup

    conn = op.get_bind()
    if conn.execute(sa.text("SELECT 1 FROM votes LIMIT 1")).first() is not None:
        Rollup(conn, conn.dialect).rebuild(conn)


def downgrade() -> None:
    _drop_rollups()
    _day_tables(channel=False)
    _hour_table(channel=False)
    with op.batch_alter_table("votes") as batch:
        batch.drop_column("channel")
