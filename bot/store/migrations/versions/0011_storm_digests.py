"""storm digests: each channel's digest in the database, so replicas share one

Revision ID: 0011_storm_digests
Revises: 0010_similar
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_storm_digests"
down_revision = "0010_similar"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storm_digests",
        sa.Column("lane", sa.String(length=300), primary_key=True),
        sa.Column("surface", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("ref_channel", sa.String(length=255), nullable=False),
        sa.Column("shown", sa.String(length=64), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=255), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("storm_digests")
