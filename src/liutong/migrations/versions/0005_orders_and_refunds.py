"""orders and refunds

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 12:38:59.826020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('orders',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_no', sa.String(length=64), nullable=False),
    sa.Column('terminal_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('merchant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('venue_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=True),
    sa.Column('program_version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('gross', sa.BigInteger(), nullable=False),
    sa.Column('discount', sa.BigInteger(), nullable=False),
    sa.Column('points_used', sa.BigInteger(), nullable=False),
    sa.Column('points_value', sa.BigInteger(), nullable=False),
    sa.Column('paid', sa.BigInteger(), nullable=False),
    sa.Column('payment_channel', sa.String(length=32), nullable=True),
    sa.Column('payment_ref', sa.String(length=64), nullable=True),
    sa.Column('points_earned', sa.BigInteger(), nullable=False),
    sa.Column('growth_earned', sa.BigInteger(), nullable=False),
    sa.Column('earn_explanation', sa.String(length=500), nullable=False),
    sa.Column('spend_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('earn_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('growth_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['earn_entry_id'], ['ledger_entries.id'], name=op.f('fk_orders_earn_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['growth_entry_id'], ['ledger_entries.id'], name=op.f('fk_orders_growth_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_orders_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_version_id'], ['program_versions.id'], name=op.f('fk_orders_program_version_id_program_versions')),
    sa.ForeignKeyConstraint(['spend_entry_id'], ['ledger_entries.id'], name=op.f('fk_orders_spend_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_orders_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['terminal_id'], ['terminals.id'], name=op.f('fk_orders_terminal_id_terminals')),
    sa.ForeignKeyConstraint(['venue_id'], ['venues.id'], name=op.f('fk_orders_venue_id_venues')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('tenant_id', 'order_no', name=op.f('uq_orders_tenant_id_order_no'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_tenant_member', ['tenant_id', 'member_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_orders_tenant_merchant', ['tenant_id', 'merchant_id', 'occurred_at'], unique=False)

    op.create_table('order_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('qty', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.BigInteger(), nullable=False),
    sa.Column('gross', sa.BigInteger(), nullable=False),
    sa.Column('discount', sa.BigInteger(), nullable=False),
    sa.Column('discount_benefit', sa.String(length=32), nullable=True),
    sa.Column('points_value', sa.BigInteger(), nullable=False),
    sa.Column('points_used', sa.BigInteger(), nullable=False),
    sa.Column('paid', sa.BigInteger(), nullable=False),
    sa.Column('points_earned', sa.BigInteger(), nullable=False),
    sa.Column('growth_earned', sa.BigInteger(), nullable=False),
    sa.Column('refunded_qty', sa.Integer(), nullable=False),
    sa.Column('refunded_paid', sa.BigInteger(), nullable=False),
    sa.Column('refunded_points', sa.BigInteger(), nullable=False),
    sa.Column('clawed_points', sa.BigInteger(), nullable=False),
    sa.Column('clawed_growth', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_lines_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_lines')),
    sa.UniqueConstraint('order_id', 'line_no', name=op.f('uq_order_lines_order_id_line_no'))
    )
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_lines_order_id'), ['order_id'], unique=False)

    op.create_table('refunds',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('refund_no', sa.String(length=64), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('paid_back', sa.BigInteger(), nullable=False),
    sa.Column('points_back', sa.BigInteger(), nullable=False),
    sa.Column('points_clawed', sa.BigInteger(), nullable=False),
    sa.Column('growth_clawed', sa.BigInteger(), nullable=False),
    sa.Column('restore_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('claw_back_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('growth_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['claw_back_entry_id'], ['ledger_entries.id'], name=op.f('fk_refunds_claw_back_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['growth_entry_id'], ['ledger_entries.id'], name=op.f('fk_refunds_growth_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_refunds_order_id_orders')),
    sa.ForeignKeyConstraint(['restore_entry_id'], ['ledger_entries.id'], name=op.f('fk_refunds_restore_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_refunds_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds')),
    sa.UniqueConstraint('tenant_id', 'refund_no', name=op.f('uq_refunds_tenant_id_refund_no'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_order_id'), ['order_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refunds_order_id'))

    op.drop_table('refunds')
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_lines_order_id'))

    op.drop_table('order_lines')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_tenant_merchant')
        batch_op.drop_index('ix_orders_tenant_member')

    op.drop_table('orders')
