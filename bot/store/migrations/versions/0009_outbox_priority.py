"""outbox priority: a person's action (0) goes before the bot's own backlog (1)

Revision ID: 0009_outbox_priority
Revises: 0008_maintenance
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_outbox_priority"
down_revision = "0008_maintenance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("priority")
