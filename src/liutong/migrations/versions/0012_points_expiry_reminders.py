"""points expiry reminders

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 09:00:00

One row per member, local expiry date and number of days ahead that a ``points_expiring``
event was written for, so that the daily reminder run never tells a member twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('points_expiry_reminders',
    sa.Column('tenant_id', sa.BigInteger(), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=False),
    sa.Column('days_before', sa.Integer(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'member_id', 'expires_on', 'days_before',
                            name=op.f('pk_points_expiry_reminders'))
    )


def downgrade() -> None:
    op.drop_table('points_expiry_reminders')
