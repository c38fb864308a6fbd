"""Open feedback: the form's answers with their redacted texts, and each text's themes.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", BigInt, primary_key=True, autoincrement=True),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("location", sa.Text()),
        sa.Column("received", BigInt, nullable=False),
        sa.Column("lang", sa.Text(), nullable=False),
        sa.Column("question", sa.Text()),
        sa.Column("scale", sa.Text()),
        sa.Column("answer", sa.Integer()),
        sa.Column("role", sa.Text()),
        sa.Column("text", sa.Text()),
        sa.Column("redactions", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("tone", sa.Text()),
        sa.Column("method", sa.Text()),
        sa.Column("corrected_by", sa.Text()),
        sa.Column("corrected_at", BigInt),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index("feedback_unit_received", "feedback", ["unit", "received"])
    op.create_table(
        "feedback_themes",
        sa.Column("feedback_id", BigInt, nullable=False),
        sa.Column("theme", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["feedback_id"], ["feedback.id"], name=op.f("fk_feedback_themes_feedback_id_feedback")),
        sa.PrimaryKeyConstraint("feedback_id", "theme", name=op.f("pk_feedback_themes")),
    )


def downgrade() -> None:
    op.drop_table("feedback_themes")
    op.drop_index("feedback_unit_received", table_name="feedback")
    op.drop_table("feedback")
