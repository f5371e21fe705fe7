"""teams pressers: who last pressed each incident's Teams card, for every replica's refresh

Revision ID: 0012_teams_pressers
Revises: 0011_storm_digests
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_teams_pressers"
down_revision = "0011_storm_digests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams_pressers",
        sa.Column(
            "incident_id",
            sa.Integer(),
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("pressed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("teams_pressers")
