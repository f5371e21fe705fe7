"""push journal: pushed alerts wait here, durable, until the receiver applies them

On PostgreSQL the journal is a table of the database (replicas share it). SQLite keeps it in
a file of its own next to the database (``bot.db`` -> ``bot-push-journal.db``), created at start, so this
revision creates nothing there.

Revision ID: 0013_push_journal
Revises: 0012_teams_pressers
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_push_journal"
down_revision = "0012_teams_pressers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.create_table(
        "push_journal",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sender", sa.String(length=100), nullable=False),
        sa.Column("alerts", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.drop_table("push_journal")
