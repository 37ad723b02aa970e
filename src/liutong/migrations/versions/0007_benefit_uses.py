"""benefit uses

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 13:05:23.485056
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('benefit_uses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('benefit_code', sa.String(length=32), nullable=False),
    sa.Column('period_key', sa.String(length=16), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('used_at', sa.DateTime(), nullable=False),
    sa.Column('returned_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_benefit_uses_order_id_orders')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_benefit_uses_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_benefit_uses'))
    )
    with op.batch_alter_table('benefit_uses', schema=None) as batch_op:
        batch_op.create_index('ix_benefit_uses_member_period', ['tenant_id', 'member_id', 'benefit_code', 'period_key'], unique=False)
        batch_op.create_index('ix_benefit_uses_tenant_used', ['tenant_id', 'benefit_code', 'used_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('benefit_uses', schema=None) as batch_op:
        batch_op.drop_index('ix_benefit_uses_tenant_used')
        batch_op.drop_index('ix_benefit_uses_member_period')

    op.drop_table('benefit_uses')
