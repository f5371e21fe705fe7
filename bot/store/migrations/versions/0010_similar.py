"""similar incidents: one stored document per resolved incident, and how it ended

Revision ID: 0010_similar
Revises: 0009_outbox_priority
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_similar"
down_revision = "0009_outbox_priority"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "similar_docs",
        sa.Column(
            "incident_id",
            sa.Integer(),
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("rule_id", sa.String(length=200), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("outcome_json", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("similar_docs")
