"""push ingest: the pushed alerts' own record (label set, time range, route, sender)

Revision ID: 0007_push_senders
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_push_senders"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("fingerprint", sa.String(length=40), nullable=False),
        sa.Column("rule_id", sa.String(length=200), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("route", sa.String(length=100), nullable=False),
        sa.Column("sender", sa.String(length=100), nullable=False),
        sa.Column("labels_json", sa.Text(), nullable=False),
        sa.Column("annotations_json", sa.Text(), nullable=False),
        sa.Column("generator_url", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("timeout", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("fingerprint"),
    )
    op.create_index("ix_push_alerts_group_key", "push_alerts", ["group_key"])
    op.create_index("ix_push_alerts_ends_at", "push_alerts", ["ends_at"])


def downgrade() -> None:
    op.drop_index("ix_push_alerts_ends_at", table_name="push_alerts")
    op.drop_index("ix_push_alerts_group_key", table_name="push_alerts")
    op.drop_table("push_alerts")
