"""Alerts, where they are delivered, and the outbox of deliveries.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", BigInt, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("node_id", BigInt),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("opened_at", BigInt, nullable=False),
        sa.Column("last_seen_at", BigInt, nullable=False),
        sa.Column("resolved_at", BigInt),
        sa.Column("acked_at", BigInt),
        sa.Column("acked_by", sa.Text()),
        sa.Column("ack_comment", sa.Text()),
        sa.ForeignKeyConstraint(["node_id"], ["org_nodes.id"], name=op.f("fk_alerts_node_id_org_nodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index("alerts_open", "alerts", ["kind", "subject", "resolved_at"])
    op.create_table(
        "alert_routes",
        sa.Column("id", BigInt, primary_key=True, autoincrement=True),
        sa.Column("node_id", BigInt),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", BigInt, nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["org_nodes.id"], name=op.f("fk_alert_routes_node_id_org_nodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_routes")),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", BigInt, primary_key=True, autoincrement=True),
        sa.Column("alert_id", BigInt, nullable=False),
        sa.Column("route_id", BigInt, nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_at", BigInt, nullable=False),
        sa.Column("sent_at", BigInt),
        sa.Column("failed_at", BigInt),
        sa.Column("last_error", sa.Text()),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_alert_deliveries_alert_id_alerts")),
        sa.ForeignKeyConstraint(
            ["route_id"], ["alert_routes.id"], name=op.f("fk_alert_deliveries_route_id_alert_routes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
    )
    op.create_index("alert_deliveries_due", "alert_deliveries", ["sent_at", "failed_at", "next_at"])


def downgrade() -> None:
    op.drop_index("alert_deliveries_due", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_table("alert_routes")
    op.drop_index("alerts_open", table_name="alerts")
    op.drop_table("alerts")
