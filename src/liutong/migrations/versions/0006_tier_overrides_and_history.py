"""tier overrides and history

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 12:59:52.659669
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('member_tier_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_tier', sa.String(length=32), nullable=True),
    sa.Column('to_tier', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('program_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_tier_history_member_id_members')),
    sa.ForeignKeyConstraint(['program_version_id'], ['program_versions.id'], name=op.f('fk_member_tier_history_program_version_id_program_versions')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_member_tier_history_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_tier_history'))
    )
    with op.batch_alter_table('member_tier_history', schema=None) as batch_op:
        batch_op.create_index('ix_member_tier_history_member', ['tenant_id', 'member_id', 'id'], unique=False)

    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tier_floor', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('tier_locked', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('tier_override_expires_at', sa.DateTime(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_column('tier_override_expires_at')
        batch_op.drop_column('tier_locked')
        batch_op.drop_column('tier_floor')

    with op.batch_alter_table('member_tier_history', schema=None) as batch_op:
        batch_op.drop_index('ix_member_tier_history_member')

    op.drop_table('member_tier_history')
