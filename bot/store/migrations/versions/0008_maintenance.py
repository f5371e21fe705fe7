"""maintenance windows: recurring silences (weekly or cron, a time zone, label matchers)

Revision ID: 0008_maintenance
Revises: 0007_push_senders
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_maintenance"
down_revision = "0007_push_senders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("days", sa.String(length=64), nullable=False),
        sa.Column("start", sa.String(length=5), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("matchers_json", sa.Text(), nullable=False),
        sa.Column("include_critical", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("maintenance_windows")
